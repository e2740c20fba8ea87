"""``cluster-eval traffic inspect FILE``: what a traffic file holds, read-only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cluster_eval.cli import app
from traffic.format import TrafficRecord
from traffic.inspect import TrafficSummary, inspect_traffic
from traffic.writer import write_traffic

DOC = Path(__file__).resolve().parents[2] / "docs" / "traffic-format.md"
LONG_SYSTEM = "policy " * 200  # 1,400 characters ≈ 350 tokens: a followed context


def record(i: int, arrival: float, tenant: str, *, system: str | None = None,
           session: str | None = None, max_tokens: int = 64) -> TrafficRecord:
    messages = [{"role": "user", "content": f"question {i}"}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    tags = {"session_id": session, "turn": "1"} if session else {}
    return TrafficRecord(request_id=f"r{i}", arrival=arrival, tenant_id=tenant,
                         body={"model": "m", "messages": messages, "max_tokens": max_tokens},
                         tags=tags)


@pytest.fixture
def traffic_file(tmp_path) -> Path:
    records = [
        # a burst of 6 in the first minute, then one request a minute for 3 minutes
        *[record(i, i * 5.0, "big", system=LONG_SYSTEM, session=f"s{i % 2}") for i in range(6)],
        *[record(10 + k, 60.0 * (k + 1) + 1, "small", max_tokens=512) for k in range(3)],
    ]
    return write_traffic(records, tmp_path / "traffic.jsonl")


def test_counts_rate_over_time_tenants_and_sessions(traffic_file):
    summary = inspect_traffic(traffic_file, window_s=60)
    assert summary.requests == 9 and summary.bad_lines == 0
    assert summary.span_s == pytest.approx(181.0)
    assert summary.peak_window_rate == pytest.approx(6 / 60) and summary.peak_window_start_s == 0
    assert summary.quiet_window_rate == pytest.approx(1 / 60)
    assert summary.tenants == {"big": 6, "small": 3}
    assert (summary.sessions, summary.turns_max) == (2, 3)
    assert (summary.max_tokens.p50, summary.max_tokens.max) == (64, 512)


def test_a_context_sent_again_is_a_reuse(traffic_file):
    summary = inspect_traffic(traffic_file)
    assert summary.followed_contexts == 6  # the six with the long system prompt
    assert summary.reused_contexts == 5 and summary.distinct_contexts == 1
    assert 0.5 < summary.reused_token_share < 1
    assert inspect_traffic(traffic_file, min_shared_tokens=400).followed_contexts == 0


def test_prompt_sizes_and_histogram(traffic_file):
    summary = inspect_traffic(traffic_file)
    assert summary.prompt_histogram["≤128"] == 3 and summary.prompt_histogram["≤512"] == 6
    assert summary.prompt_tokens.max == pytest.approx(352, abs=3)


def test_bad_lines_are_summarised_and_nothing_is_written(traffic_file):
    with traffic_file.open("a") as handle:
        handle.write('{"request_id": "x", "arrival": "soon", "tenant_id": "t", "body": {}}\n')
        handle.write("not json\n")
    before = sorted(p.name for p in traffic_file.parent.iterdir())
    summary = inspect_traffic(traffic_file)
    assert summary.requests == 9 and summary.bad_lines == 2
    assert "line 10" in summary.bad_examples[0] and "arrival" in summary.bad_examples[0]
    assert sorted(p.name for p in traffic_file.parent.iterdir()) == before


def test_cli_prints_the_summary_and_json(traffic_file):
    text = CliRunner().invoke(app, ["traffic", "inspect", str(traffic_file)])
    assert text.exit_code == 0, text.output
    assert "9 requests, 0 bad lines" in text.output and "big 6 (67%)" in text.output
    as_json = CliRunner().invoke(app, ["traffic", "inspect", str(traffic_file), "--json"])
    assert TrafficSummary.model_validate(json.loads(as_json.output)).requests == 9


def test_cli_names_a_missing_file_without_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["traffic", "inspect", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "none.jsonl" in result.output
    assert "Traceback" not in result.output


def test_every_inspect_flag_is_documented():
    root = typer.main.get_command(app)
    command = root.commands["traffic"].commands["inspect"]  # type: ignore[attr-defined]
    flags = [opt for param in command.params for opt in param.opts if opt.startswith("--")]
    assert [flag for flag in flags if f"`{flag}" not in DOC.read_text()] == []
