"""Workload specs, build_workload, the CLI and the golden set."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster_eval.cli import app
from traffic.builders import GOLDEN_PATH, WorkloadSpec, build_golden, build_workload, load_spec
from traffic.errors import TrafficFormatError, WorkloadError
from traffic.loader import load_traffic
from traffic.writer import write_traffic

SPECS = Path(__file__).resolve().parents[2] / "traffic" / "specs"


def poisson(**changes) -> WorkloadSpec:
    raw = {"arrivals": {"process": "poisson", "rate": 2.0}, "duration_s": 60, "seed": 1}
    return WorkloadSpec.model_validate({**raw, **changes})


def test_records_are_valid_and_mix_tasks_and_tenants():
    spec = poisson(tenants=[{"id": "acme", "weight": 3}, {"id": "initech", "tasks": ["qa"]}])
    records = build_workload(spec)
    assert 90 < len(records) < 160
    assert len({r.request_id for r in records}) == len(records)
    assert all(r.arrival < 60 for r in records)
    assert [r.arrival for r in records] == sorted(r.arrival for r in records)
    assert {r.tags["task"] for r in records if r.tenant_id == "acme"} == {
        "json",
        "tool",
        "qa",
        "math",
    }
    assert {r.tags["task"] for r in records if r.tenant_id == "initech"} == {"qa"}
    assert all(
        r.body["model"] == "smollm2-135m-instruct" and r.body["temperature"] == 0 for r in records
    )


def test_task_weights_shape_the_mix():
    records = build_workload(poisson(task_weights={"math": 0, "json": 3}))
    counts = Counter(r.tags["task"] for r in records)
    assert counts["math"] == 0 and counts["json"] > counts["qa"]
    with pytest.raises(ValueError, match="no task kind"):
        poisson(task_weights={k: 0 for k in ("json", "tool", "qa", "math")})


def test_write_traffic_refuses_unknown_suffix(tmp_path):
    with pytest.raises(TrafficFormatError, match="suffix"):
        write_traffic(build_workload(poisson(max_requests=1)), tmp_path / "t.csv")


def test_same_seed_identical_file_other_seed_differs(tmp_path):
    first = write_traffic(build_workload(poisson()), tmp_path / "a.jsonl").read_bytes()
    again = write_traffic(build_workload(poisson()), tmp_path / "b.jsonl").read_bytes()
    other = write_traffic(build_workload(poisson(seed=2)), tmp_path / "c.jsonl").read_bytes()
    assert first == again and first != other


def test_speedup_divides_offsets_and_limits_apply():
    slow = build_workload(poisson())
    fast = build_workload(poisson(speedup=10))
    assert [r.arrival for r in fast] == pytest.approx([r.arrival / 10 for r in slow], abs=1e-5)
    assert [r.body for r in fast] == [r.body for r in slow]
    assert len(build_workload(poisson(max_requests=7))) == 7


def test_azure_trace_prompts_follow_context_tokens():
    records = build_workload(
        WorkloadSpec(
            arrivals={"process": "azure-trace"}, duration_s=120, tasks=["qa", "math", "json"]
        )
    )
    short = [r for r in records if int(r.tags["trace_context_tokens"]) < 150]
    long = [r for r in records if int(r.tags["trace_context_tokens"]) > 2000]
    assert short and long

    def chars(r) -> float:
        return sum(len(m["content"]) for m in r.body["messages"])

    assert sum(map(chars, long)) / len(long) > 2 * sum(map(chars, short)) / len(short)


def test_spec_errors_are_clear():
    with pytest.raises(ValueError, match="never ends"):
        WorkloadSpec(arrivals={"process": "poisson", "rate": 1})
    with pytest.raises(ValueError, match="unknown arrival process 'steady'"):
        WorkloadSpec(arrivals={"process": "steady"}, duration_s=1)
    with pytest.raises(ValueError, match="unknown task kinds"):
        poisson(tasks=["poetry"])
    with pytest.raises(ValueError, match="extra"):
        poisson(burst=True)
    with pytest.raises(ValueError, match="extra"):
        WorkloadSpec(arrivals={"process": "poisson", "rate": 1, "cv": 2}, duration_s=1)


@pytest.mark.parametrize("spec_file", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_specs_build(spec_file):
    records = build_workload(load_spec(spec_file))
    assert records and all(r.body["max_tokens"] <= 128 for r in records)


def test_embedded_nightly_is_sized_for_the_demo_stack():
    records = build_workload(load_spec(SPECS / "embedded-nightly.yaml"))
    # a healthy operating point: ~0.5 req/s on average against a measured 1.4-2.2 req/s
    assert 100 <= len(records) <= 200
    span = records[-1].arrival - records[0].arrival
    assert 240 <= span <= 600  # a 4-10 minute replay: the nightly stays under 15 minutes
    assert len(records) / span < 0.7
    tenants = Counter(r.tenant_id for r in records)
    assert tenants["acme"] > tenants["globex"] > tenants["initech"] > 0
    offsets = [r.arrival for r in records if r.tenant_id == "acme"]
    busiest = max(sum(1 for o in offsets if t <= o < t + 5) for t in offsets)
    assert busiest / 5 > 2.2  # a burst beyond the demo stack's 1.4-2.2 req/s


def test_load_spec_overrides_and_errors(tmp_path):
    spec = load_spec(SPECS / "poisson-smoke.yaml", seed=9, arrivals={"rate": 5.0})
    assert spec.seed == 9 and spec.arrivals.rate == 5.0
    switched = load_spec(SPECS / "poisson-smoke.yaml", arrivals={"process": "gamma", "rate": 1.0})
    assert switched.arrivals.process == "gamma"
    bad = tmp_path / "bad.yaml"
    bad.write_text("arrivals: {process: poisson}\nduration_s: 5\n")
    with pytest.raises(WorkloadError, match="bad.yaml"):
        load_spec(bad)


def test_golden_set_is_reproducible_and_committed():
    golden = build_golden()
    assert 12 <= len(golden) <= 20
    assert Counter(r.tags["task"] for r in golden) == {"json": 4, "tool": 4, "qa": 4, "math": 4}
    assert all(r.body["temperature"] == 0 and r.expect is not None for r in golden)
    assert {r.expect.answerable for r in golden if r.tags["task"] == "qa"} == {True, False}
    committed = load_traffic(GOLDEN_PATH)
    assert [r.model_dump() for r in committed.records] == [r.model_dump() for r in golden]


runner = CliRunner()


def test_cli_build_from_flags_is_reproducible(tmp_path):
    args = [
        "traffic", "build", "--arrivals", "poisson", "--rate", "2", "--duration", "60",
        "--tasks", "json,tool,qa,math", "--tenants", "acme:3,globex:1", "--seed", "1",
        "--speedup", "10",
    ]  # fmt: skip
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a.jsonl")])
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b.jsonl")])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    loaded = load_traffic(tmp_path / "a.jsonl")
    assert loaded.records[-1].arrival <= 6.0
    assert {r.tenant_id for r in loaded.records} == {"acme", "globex"}


def test_cli_build_spec_parquet_and_golden(tmp_path):
    out = tmp_path / "nightly.parquet"
    result = runner.invoke(
        app, ["traffic", "build", "--spec", str(SPECS / "embedded-nightly.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert load_traffic(out).n_good > 100
    result = runner.invoke(
        app, ["traffic", "build", "--golden", "--out", str(tmp_path / "g.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.jsonl").read_bytes() == GOLDEN_PATH.read_bytes()


def test_cli_reports_errors_without_traceback(tmp_path):
    result = runner.invoke(
        app,
        [
            "traffic",
            "build",
            "--arrivals",
            "steady",
            "--count",
            "3",
            "--out",
            str(tmp_path / "x.jsonl"),
        ],
    )
    assert result.exit_code == 2
    assert "unknown arrival process" in result.output
    assert "Traceback" not in result.output
