"""``traffic import``: public traces become traffic files the loader and replay accept.

Azure on the real trace shipped in traffic/data (CC-BY-4.0); BurstGPT and ShareGPT on
small fixtures in tests/traffic/data with the real column names and JSON shape.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cluster_eval.cli import app
from traffic.builders.sources import AZURE_TRACE, SHIPPED_DATA_DIR
from traffic.errors import TrafficFormatError, WorkloadError
from traffic.importers import ImportOptions, import_trace
from traffic.importers.truncate import CUT_MARKER, prompt_tokens, truncate_middle
from traffic.loader import load_traffic
from traffic.writer import write_traffic

AZURE = SHIPPED_DATA_DIR / AZURE_TRACE
DATA = Path(__file__).resolve().parent / "data"
BURSTGPT = DATA / "burstgpt_sample.csv"
SHAREGPT = DATA / "sharegpt_sample.json"
DOC = Path(__file__).resolve().parents[2] / "docs" / "traffic-format.md"


def run(path: Path, tmp_path: Path, **options):
    return import_trace(path, ImportOptions(**options), quarantine_path=tmp_path / "q.jsonl")


def written_and_loaded(records, tmp_path: Path, suffix: str = ".jsonl"):
    """Write with the project's writer, load back with the project's loader."""
    path = write_traffic(records, tmp_path / f"imported{suffix}")
    loaded = load_traffic(path)
    assert loaded.n_bad == 0 and loaded.n_good == len(records)
    return loaded


def azure_times() -> dict[int, float]:
    """The trace's own timestamps by CSV line, read independently of the importer."""
    with AZURE.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return {
        number: datetime.fromisoformat(row[0]).replace(tzinfo=UTC).timestamp()
        for number, row in enumerate(rows[1:], start=2)
    }


# --- Azure, the real trace -------------------------------------------------------------


def test_azure_window_keeps_exactly_the_trace_rows_inside_it(tmp_path):
    times = azure_times()
    zero = min(times.values())
    expected = {n for n, t in times.items() if 600 <= t - zero < 1800}
    result = run(AZURE, tmp_path, format="azure", since=600, until=1800)
    lines = {int(r.tags["trace_line"]) for r in result.records}
    assert lines == expected and len(expected) > 1000
    assert result.window_s == 1200 and result.trace_rate == pytest.approx(len(expected) / 1200)
    # arrivals: seconds from the window start, the trace's own gaps kept
    for record in result.records:
        original = times[int(record.tags["trace_line"])]
        assert record.arrival == pytest.approx(original - zero - 600, abs=1e-5)
    arrivals = [r.arrival for r in result.records]
    assert arrivals == sorted(arrivals) and 0 <= arrivals[0] < 5 and arrivals[-1] < 1200
    written_and_loaded(result.records, tmp_path)


def test_azure_thinning_reaches_the_target_rate_without_replacement(tmp_path):
    result = run(AZURE, tmp_path, format="azure", since=600, until=1800, rate=0.5, seed=7)
    assert len(result.records) == 600  # 0.5 req/s over the 1,200 s window
    lines = [r.tags["trace_line"] for r in result.records]
    assert len(set(lines)) == len(lines)  # no trace row drawn twice
    arrivals = [float(r.arrival) for r in result.records]
    assert arrivals == sorted(arrivals)
    measured = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert measured == pytest.approx(0.5, rel=0.05)
    # spread over the whole window, not the first 600 rows: each 300 s quarter near 150
    quarters = [sum(1 for a in arrivals if q * 300 <= a < (q + 1) * 300) for q in range(4)]
    assert all(100 < n < 200 for n in quarters), quarters
    loaded = written_and_loaded(result.records, tmp_path, ".parquet")
    assert loaded.n_good == 600


def test_azure_thinning_is_deterministic_by_seed(tmp_path):
    def lines(seed: int) -> list[str]:
        records = run(AZURE, tmp_path, format="azure", until=900, rate=0.2, seed=seed).records
        return [r.tags["trace_line"] for r in records]

    assert lines(1) == lines(1)
    assert lines(1) != lines(2)


def test_azure_window_by_timestamps_matches_the_window_by_offsets(tmp_path):
    by_offset = run(AZURE, tmp_path, format="azure", since=600, until=1800).records
    # the trace starts at 2023-11-16 18:17:03.97996 (UTC, naive in the file)
    since = datetime(2023, 11, 16, 18, 27, 3, 979960)
    until = datetime(2023, 11, 16, 18, 47, 3, 979960)
    by_time = run(AZURE, tmp_path, format="azure", since=since, until=until).records
    assert [r.tags["trace_line"] for r in by_time] == [r.tags["trace_line"] for r in by_offset]


def test_azure_rate_above_the_trace_keeps_everything(tmp_path):
    result = run(AZURE, tmp_path, format="azure", until=300, rate=1000)
    assert len(result.records) == result.n_in_window


def test_azure_prompts_follow_the_recorded_length_and_max_tokens_the_generated_one(tmp_path):
    result = run(AZURE, tmp_path, format="azure", until=120, max_tokens=64)
    for record in result.records:
        generated = int(record.tags["trace_generated_tokens"])
        assert record.body["max_tokens"] == max(1, min(generated, 64))
        assert record.tags["task"] and record.tags["session_id"]
    short = [r for r in result.records if int(r.tags["trace_context_tokens"]) < 200]
    long = [r for r in result.records if int(r.tags["trace_context_tokens"]) > 2000]
    mean = lambda rs: sum(prompt_tokens(r.body["messages"]) for r in rs) / len(rs)  # noqa: E731
    assert short and long and mean(long) > 2 * mean(short)


# --- BurstGPT ----------------------------------------------------------------------------


def test_burstgpt_rows_become_requests_at_their_offsets(tmp_path):
    result = run(BURSTGPT, tmp_path, format="burstgpt", tenant_column="Model")
    assert [r.arrival for r in result.records] == [0, 40, 41, 113, 155, 156, 225, 226, 282, 294]
    assert {r.tenant_id for r in result.records} == {"ChatGPT", "GPT-4"}
    failed = next(r for r in result.records if r.tags["trace_line"] == "5")
    assert failed.body["max_tokens"] == 1  # a failed request (0 response tokens)
    assert result.records[1].body["max_tokens"] == 253
    written_and_loaded(result.records, tmp_path)


def test_burstgpt_window_and_rate(tmp_path):
    # offsets count from the first request (Timestamp 5): the window is Timestamp 45 to 245
    result = run(BURSTGPT, tmp_path, format="burstgpt", since=40, until=240, rate=0.02, seed=3)
    assert result.n_in_window == 7
    assert len(result.records) == 4  # 0.02 req/s over 200 s
    assert all(0 <= r.arrival < 200 for r in result.records)
    assert {int(r.tags["trace_line"]) for r in result.records} <= set(range(3, 10))


def test_burstgpt_has_no_timestamps_to_window_by(tmp_path):
    with pytest.raises(WorkloadError, match="no timestamps"):
        run(BURSTGPT, tmp_path, format="burstgpt", since=datetime(2024, 1, 1))


def test_more_than_the_loader_accepts_needs_a_window(tmp_path):
    path = tmp_path / "long.csv"
    header = BURSTGPT.read_text().splitlines()[0]
    rows = [f"{day * 86_400},ChatGPT,10,5,15,API log" for day in range(10)]
    path.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(WorkloadError, match="span 9.0 days"):
        run(path, tmp_path, format="burstgpt")
    records = run(path, tmp_path, format="burstgpt", until=7 * 86_400).records
    assert len(records) == 7
    written_and_loaded(records, tmp_path)


def test_a_constant_tenant(tmp_path):
    result = run(BURSTGPT, tmp_path, format="burstgpt", tenant="acme")
    assert {r.tenant_id for r in result.records} == {"acme"}
    assert {r.tenant_id for r in run(BURSTGPT, tmp_path, format="burstgpt").records} == {"burstgpt"}
    with pytest.raises(ValueError, match="not both"):
        ImportOptions(format="burstgpt", tenant="a", tenant_column="Model")


# --- ShareGPT ----------------------------------------------------------------------------


def test_sharegpt_turns_carry_the_recorded_earlier_turns_in_one_session(tmp_path):
    result = run(SHAREGPT, tmp_path, format="sharegpt", rate=1.0, think_time_s=5, seed=1)
    by_session: dict[str, list] = {}
    for record in result.records:
        by_session.setdefault(record.tags["session_id"], []).append(record)
    assert sorted(len(v) for v in by_session.values()) == [1, 1, 2, 3]
    turns = sorted(by_session["conv_a_0"], key=lambda r: int(r.tags["turn"]))
    assert [len(r.body["messages"]) for r in turns] == [1, 3, 5]
    assert turns[2].body["messages"][:3] == turns[1].body["messages"]  # earlier turns verbatim
    assert turns[2].body["messages"][1]["role"] == "assistant"
    assert turns[2].body["messages"][1]["content"].startswith("A prefix cache keeps")
    assert [r.arrival - turns[0].arrival for r in turns] == pytest.approx([0, 5, 10])
    system = sorted(by_session["conv_c_1"], key=lambda r: int(r.tags["turn"]))
    assert system[0].body["messages"][0] == {
        "role": "system",
        "content": "You are a terse assistant.",
    }
    assert system[1].body["max_tokens"] == 128  # no recorded answer after the last turn
    written_and_loaded(result.records, tmp_path)


def test_sharegpt_needs_a_rate(tmp_path):
    with pytest.raises(WorkloadError, match="give --rate"):
        run(SHAREGPT, tmp_path, format="sharegpt")


def test_sharegpt_window_keeps_or_drops_whole_conversations(tmp_path):
    full = run(SHAREGPT, tmp_path, format="sharegpt", rate=0.05, seed=4, think_time_s=30)
    starts = sorted(
        {r.tags["session_id"]: r.arrival for r in full.records if r.tags["turn"] == "1"}.values()
    )
    until = (starts[1] + starts[2]) / 2  # after the second conversation starts
    cut = run(
        SHAREGPT, tmp_path, format="sharegpt", rate=0.05, seed=4, think_time_s=30, until=until
    )
    sessions = {r.tags["session_id"] for r in cut.records}
    assert len(sessions) == 2
    for session in sessions:  # whole: every turn, even past the window's end
        assert [r for r in cut.records if r.tags["session_id"] == session] == [
            r for r in full.records if r.tags["session_id"] == session
        ]


def test_sharegpt_rate_lays_requests_out_at_about_that_rate(tmp_path):
    conversations = [
        {"id": f"c{i}", "conversations": [{"from": "human", "value": f"question {i}"}]}
        for i in range(400)
    ]
    path = tmp_path / "many.json"
    path.write_text(json.dumps(conversations))
    records = run(path, tmp_path, format="sharegpt", rate=4.0, seed=2).records
    assert len(records) == 400 and len({r.tags["session_id"] for r in records}) == 400
    arrivals = [float(r.arrival) for r in records]
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) == pytest.approx(4.0, rel=0.15)


def test_sharegpt_tenant_from_a_key(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [
        {"id": "a", "model": "vicuna", "conversations": [{"from": "human", "value": "hi"}]},
        {"id": "b", "model": "llama", "conversations": [{"from": "human", "value": "yo"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")  # JSON Lines works too
    result = run(path, tmp_path, format="sharegpt", rate=1, tenant_column="model")
    assert sorted(r.tenant_id for r in result.records) == ["llama", "vicuna"]


# --- length caps -----------------------------------------------------------------------


def test_truncate_middle_keeps_head_and_tail_with_a_marker():
    text = "HEAD " + "x" * 4000 + " TAIL"
    [cut] = truncate_middle([{"role": "user", "content": text}], 100)
    assert cut["content"].startswith("HEAD ") and cut["content"].endswith(" TAIL")
    assert CUT_MARKER in cut["content"] and len(cut["content"]) <= 400
    short = [{"role": "user", "content": "short"}]
    assert truncate_middle(short, 100) == short


def test_truncate_middle_across_turns_keeps_the_first_and_the_newest():
    messages = [
        {"role": "system", "content": "S" * 300},
        {"role": "user", "content": "u" * 1000},
        {"role": "assistant", "content": "a" * 1000},
        {"role": "user", "content": "newest question?"},
    ]
    cut = truncate_middle(messages, 150)
    assert cut[0]["content"].startswith("S" * 250)
    assert cut[-1] == messages[-1]
    assert sum(len(m["content"]) for m in cut) <= 600
    assert sum(CUT_MARKER in m["content"] for m in cut) == 1


def test_max_prompt_tokens_caps_every_imported_prompt(tmp_path):
    long_turn = "word " * 3000
    path = tmp_path / "long.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "l",
                    "conversations": [{"from": "human", "value": "start " + long_turn + " end?"}],
                }
            ]
        )
    )
    [record] = run(path, tmp_path, format="sharegpt", rate=1, max_prompt_tokens=256).records
    content = record.body["messages"][0]["content"]
    assert prompt_tokens(record.body["messages"]) <= 256 and record.tags["truncated"] == "middle"
    assert content.startswith("start word") and content.endswith("end?")
    azure = run(AZURE, tmp_path, format="azure", until=300, max_prompt_tokens=200).records
    assert max(prompt_tokens(r.body["messages"]) for r in azure) <= 200


# --- bad input ---------------------------------------------------------------------------


def write_csv(tmp_path: Path, rows: list[bytes]) -> Path:
    path = tmp_path / "trace.csv"
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


AZURE_HEADER = b"TIMESTAMP,ContextTokens,GeneratedTokens"


def good_rows(n: int) -> list[bytes]:
    return [f"2023-11-16 18:17:{i:02d}.0000000,{100 + i},{10 + i}".encode() for i in range(n)]


def test_bad_rows_are_quarantined_with_line_and_field_and_the_rest_kept(tmp_path):
    rows = [AZURE_HEADER, *good_rows(40)]
    rows[5] = b"2023-11-16 99:99:99,100,10"  # line 6: bad timestamp
    rows[9] = b"2023-11-16 18:17:09.0000000,1\xe900,10"  # line 10: not UTF-8
    rows[20] = b"2023-11-16 18:17:20.0000000,100"  # line 21: a missing cell
    path = write_csv(tmp_path, rows)
    result = import_trace(
        path, ImportOptions(format="azure", max_bad_share=0.1), quarantine_path=tmp_path / "q.jsonl"
    )
    assert len(result.records) == 37
    entries = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [(e["line"], e["field"]) for e in entries] == [
        (6, "TIMESTAMP"),
        (10, "ContextTokens"),
        (21, "GeneratedTokens"),
    ]
    assert entries[0]["reason"].startswith("not a timestamp")
    assert entries[1]["reason"] == "not UTF-8: byte 0xe9 at byte 30"
    assert entries[2]["reason"].startswith("missing")
    assert all(e["file"] == str(path) for e in entries)


def test_too_many_bad_rows_fail_naming_the_first(tmp_path):
    rows = [AZURE_HEADER, *good_rows(10)]
    rows[3] = b"yesterday,100,10"
    with pytest.raises(TrafficFormatError) as caught:
        run(write_csv(tmp_path, rows), tmp_path, format="azure")
    assert (caught.value.line, caught.value.field) == (4, "TIMESTAMP")
    assert "1 of 10 rows are malformed" in str(caught.value)


def test_a_missing_column_fails_the_file(tmp_path):
    path = write_csv(tmp_path, [b"TIMESTAMP,ContextTokens", b"2023-11-16 18:17:00,1"])
    with pytest.raises(TrafficFormatError) as caught:
        run(path, tmp_path, format="azure")
    assert (caught.value.line, caught.value.field) == (1, "GeneratedTokens")


def test_sharegpt_bad_conversations_are_quarantined(tmp_path):
    good = [{"id": f"g{i}", "conversations": [{"from": "human", "value": "hi"}]} for i in range(30)]
    text = json.dumps(good, indent=1).encode()
    bad_byte = b'{"id": "bb", "conversations": [{"from": "human", "value": "caf\xe9"}]}'
    unknown = b'{"id": "uu", "conversations": [{"from": "robot", "value": "beep"}]}'
    path = tmp_path / "s.json"
    path.write_bytes(text[:-2] + b",\n" + bad_byte + b",\n" + unknown + b"\n]")
    result = import_trace(
        path,
        ImportOptions(format="sharegpt", rate=1, max_bad_share=0.1),
        quarantine_path=tmp_path / "q.jsonl",
    )
    assert len(result.records) == 30
    lines = text.count(b"\n") + 1
    assert [(b.line, b.field) for b in result.bad] == [
        (lines, "conversations.0.value"),
        (lines + 1, "conversations.0.from"),
    ]
    assert result.bad[0].reason == "not UTF-8: byte 0xe9"


def test_sharegpt_broken_json_names_line_and_column(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('[\n {"id": "a", "conversations": []},\n {"id": oops}\n]')
    with pytest.raises(TrafficFormatError) as caught:
        run(path, tmp_path, format="sharegpt", rate=1)
    assert caught.value.line == 3 and "bad JSON" in str(caught.value)


def test_imported_files_become_replay_schedules(tmp_path):
    from traffic.schedule import build_schedule

    for trace, options in [
        (AZURE, {"format": "azure", "until": 120}),
        (BURSTGPT, {"format": "burstgpt"}),
        (SHAREGPT, {"format": "sharegpt", "rate": 2}),
    ]:
        loaded = written_and_loaded(run(trace, tmp_path, **options).records, tmp_path)
        schedule = build_schedule("replay", loaded.records)
        assert len(schedule) == loaded.n_good and schedule[0].offset_s == 0


# --- the command -------------------------------------------------------------------------


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_cli_imports_and_reports_what_it_kept(tmp_path):
    out = tmp_path / "az.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "traffic",
            "import",
            str(AZURE),
            "--format",
            "azure",
            "--out",
            str(out),
            "--since",
            "600",
            "--until",
            "1800",
            "--rate",
            "0.5",
            "--tenant",
            "acme",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "600 requests" in result.output and "(acme: 600)" in result.output
    assert load_traffic(out).n_good == 600


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--format", "azure", "--tenant-column", "Region"], "field 'Region'"),
        (["--format", "bailian"], "unknown trace format 'bailian'"),
        (["--format", "azure", "--since", "soon"], "neither seconds nor an ISO timestamp"),
        (["--format", "azure", "--rate", "-1"], "rate"),
        (["--format", "sharegpt"], "line 1: bad JSON"),
    ],
)
def test_cli_bad_input_is_one_error_line_and_exit_2(tmp_path, args, expected):
    result = CliRunner().invoke(
        app, ["traffic", "import", str(AZURE), "--out", str(tmp_path / "o.jsonl"), *args]
    )
    assert result.exit_code == 2
    assert expected in one_error_line(result)
    assert not (tmp_path / "o.jsonl").exists()


def test_every_import_flag_is_documented():
    root = typer.main.get_command(app)
    command = root.commands["traffic"].commands["import"]  # type: ignore[attr-defined]
    flags = [opt for param in command.params for opt in param.opts if opt.startswith("--")]
    text = DOC.read_text()
    assert [flag for flag in flags if f"`{flag}" not in text] == []


@pytest.mark.parametrize(
    "name",
    [
        "traffic.importers",
        "traffic.importers.csv_traces",
        "traffic.importers.block_text",
        "traffic.importers.importer",
        "traffic.importers.mooncake",
        "traffic.importers.options",
        "traffic.importers.sharegpt",
        "traffic.importers.shaping",
        "traffic.importers.truncate",
        "traffic.import_cli",
    ],
)
def test_public_names_exist(name):
    import importlib

    module = importlib.import_module(name)
    assert module.__all__ and all(hasattr(module, exported) for exported in module.__all__)
