"""``traffic import --format mooncake``: block hashes become prompts that share exactly
the tokens the trace says they share, in the served model's tokenizer.

On 17 real lines of Mooncake's conversation trace (tests/traffic/data/README.md) and the
tokenizer ``cluster-eval model prepare`` writes (``make setup``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster_eval.cli import app
from traffic.errors import TrafficFormatError, WorkloadError
from traffic.importers import ImportOptions, import_trace
from traffic.importers.block_text import BlockText, default_tokenizer_path
from traffic.importers.mooncake import trace_reuse
from traffic.loader import load_traffic
from traffic.writer import write_traffic

SAMPLE = Path(__file__).resolve().parent / "data" / "mooncake_sample.jsonl"
TRACE_BLOCK = 512


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer

    path = default_tokenizer_path()
    assert path.is_file(), f"{path} missing: run `make setup` (cluster-eval model prepare)"
    return Tokenizer.from_file(str(path))


def trace_rows(path: Path = SAMPLE) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(tmp_path: Path, path: Path = SAMPLE, **options):
    return import_trace(path, ImportOptions(format="mooncake", **options),
                        quarantine_path=tmp_path / "q.jsonl")


def prompt_ids(record, tokenizer) -> list[int]:
    return [token for message in record.body["messages"]
            for token in tokenizer.encode(message["content"], add_special_tokens=False).ids]


def imported_reuse(records, tokenizer) -> float:
    """The share of prompt tokens that an earlier prompt already began with, measured on
    the token ids the served tokenizer gives the imported text."""
    earlier: list[list[int]] = []
    reused = total = 0
    for record in records:
        ids = prompt_ids(record, tokenizer)
        longest = 0
        for other in earlier:
            common = 0
            for a, b in zip(ids, other, strict=False):
                if a != b:
                    break
                common += 1
            longest = max(longest, common)
        reused += longest
        total += len(ids)
        earlier.append(ids)
    return reused / total


def test_every_prompt_has_the_recorded_length_in_the_served_tokenizer(tmp_path, tokenizer):
    result = run(tmp_path)
    rows = trace_rows()
    assert len(result.records) == len(rows) == 17
    assert [len(prompt_ids(r, tokenizer)) for r in result.records] == \
        [row["input_length"] for row in rows]
    assert [r.body["max_tokens"] for r in result.records] == [row["output_length"] for row in rows]
    assert [r.arrival for r in result.records] == [row["timestamp"] / 1000 for row in rows]


@pytest.mark.parametrize("block_tokens", [None, 16])
def test_the_trace_prefix_reuse_is_reproduced_within_5_percent(tmp_path, tokenizer, block_tokens):
    expected = trace_reuse(trace_rows(), TRACE_BLOCK)
    assert expected > 0.3  # the sample is chosen for its conversations
    got = imported_reuse(run(tmp_path, block_tokens=block_tokens).records, tokenizer)
    assert abs(got - expected) <= 0.05 * expected, (got, expected)


def test_a_smaller_block_shrinks_every_prompt_by_the_same_factor(tmp_path, tokenizer):
    records = run(tmp_path, block_tokens=16).records
    for record, row in zip(records, trace_rows(), strict=True):
        blocks = len(row["hash_ids"])
        assert len(prompt_ids(record, tokenizer)) == pytest.approx(
            row["input_length"] / 32, abs=1) and int(record.tags["trace_blocks"]) == blocks


def test_conversations_are_sessions_and_shared_beginnings_are_not(tmp_path):
    records = run(tmp_path).records
    by_line = {int(r.tags["trace_line"]): r.tags for r in records}
    # sample lines 3, 14, 16, 17 (trace lines 4, 1586, 1901, 2200): each prompt extends
    # the one before
    assert [by_line[n]["session_id"] for n in (3, 14, 16, 17)] == ["line-3"] * 4
    assert [by_line[n]["turn"] for n in (3, 14, 16, 17)] == ["1", "2", "3", "4"]
    # lines 1 and 2 share only the trace's first block (its system prompt)
    assert by_line[1]["session_id"] != by_line[2]["session_id"]
    assert len({tags["session_id"] for tags in by_line.values()}) == 6


def test_a_repeated_beginning_is_the_same_system_message(tmp_path):
    records = {int(r.tags["trace_line"]): r for r in run(tmp_path).records}
    # sample lines 5 and 8 (trace lines 41 and 262): the same four hash ids
    first, again = records[5].body["messages"], records[8].body["messages"]
    assert [m["role"] for m in first] == ["system", "user"]
    assert first == again


def test_thinning_keeps_conversations_whole(tmp_path):
    records = run(tmp_path, rate=0.01, seed=3).records
    kept = {}
    for record in records:
        kept.setdefault(record.tags["session_id"], []).append(int(record.tags["turn"]))
    everything = {}
    for record in run(tmp_path).records:
        everything.setdefault(record.tags["session_id"], []).append(int(record.tags["turn"]))
    assert kept and len(records) < 17
    assert all(turns == everything[session] for session, turns in kept.items())


def test_a_cap_cuts_whole_blocks_from_the_middle(tmp_path, tokenizer):
    capped = {int(r.tags["trace_line"]): r for r in run(tmp_path, max_prompt_tokens=2000).records}
    whole = {int(r.tags["trace_line"]): r for r in run(tmp_path).records}
    for line, record in capped.items():
        assert len(prompt_ids(record, tokenizer)) <= 2000
        if len(prompt_ids(whole[line], tokenizer)) > 2000:
            assert record.tags["truncated"] == "middle"
            system, user = (m["content"] for m in record.body["messages"])
            # the leading blocks and the newest (last) block stay
            assert whole[line].body["messages"][0]["content"].startswith(system)
            assert user == whole[line].body["messages"][1]["content"]
        else:
            assert "truncated" not in record.tags


def test_the_same_seed_gives_the_same_text_and_another_seed_other_text(tmp_path):
    one, same, other = (run(tmp_path, seed=s).records for s in (0, 0, 1))
    assert [r.body for r in one] == [r.body for r in same]
    assert one[0].body["messages"] != other[0].body["messages"]


def test_imported_files_load(tmp_path):
    records = run(tmp_path, block_tokens=16).records
    path = write_traffic(records, tmp_path / "mooncake.jsonl")
    assert load_traffic(path).n_good == 17


def test_bad_lines_are_quarantined_with_line_and_field_and_the_rest_kept(tmp_path):
    good = SAMPLE.read_text().splitlines()
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join([
        good[0],
        "{not json",
        '{"timestamp": 5, "input_length": 10, "output_length": 2}',
        '{"timestamp": -1, "input_length": 10, "output_length": 2, "hash_ids": [1]}',
        '{"timestamp": 5, "input_length": 0, "output_length": 2, "hash_ids": [1]}',
        '{"timestamp": 5, "input_length": 10, "output_length": 2, "hash_ids": ["a"]}',
        good[1],
    ]) + "\n")
    result = run(tmp_path, path=path, max_bad_share=1.0, block_tokens=16)
    assert len(result.records) == 2
    assert [(b.line, b.field) for b in result.bad] == [
        (2, None), (3, "hash_ids"), (4, "timestamp"), (5, "input_length"), (6, "hash_ids")]
    quarantined = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [q["line"] for q in quarantined] == [2, 3, 4, 5, 6]


def test_too_many_bad_lines_fail_naming_the_first(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text('{"timestamp": 5}\n' + SAMPLE.read_text().splitlines()[0] + "\n")
    with pytest.raises(TrafficFormatError, match="input_length") as caught:
        run(tmp_path, path=path)
    assert caught.value.line == 1


def test_a_missing_tokenizer_is_named(tmp_path):
    with pytest.raises(WorkloadError, match="no tokenizer at .*nowhere"):
        run(tmp_path, tokenizer=tmp_path / "nowhere")


def test_the_block_words_are_single_tokens_that_do_not_merge(tokenizer):
    text = BlockText.load(None, block_size=512, block_tokens=64)
    assert len(text.words) > 10_000
    joined = text.block(7, 64) + text.block(8, 64)
    assert len(tokenizer.encode(joined, add_special_tokens=False).ids) == 128
    assert text.block(7, 64).startswith(text.block(7, 10))


def test_cli_imports_a_mooncake_trace(tmp_path):
    out = tmp_path / "m.jsonl"
    result = CliRunner().invoke(app, [
        "traffic", "import", str(SAMPLE), "--format", "mooncake", "--out", str(out),
        "--block-tokens", "16", "--tenant", "kimi"])
    assert result.exit_code == 0, result.output
    assert "17 requests" in result.output and "(kimi: 17)" in result.output


def test_cli_names_a_missing_tokenizer_without_a_traceback(tmp_path):
    result = CliRunner().invoke(app, [
        "traffic", "import", str(SAMPLE), "--format", "mooncake",
        "--out", str(tmp_path / "m.jsonl"), "--tokenizer", str(tmp_path / "none.json")])
    assert result.exit_code == 2
    assert result.output.startswith("error: no tokenizer at") and "Traceback" not in result.output
