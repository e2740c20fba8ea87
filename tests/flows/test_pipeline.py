"""The plain steps against real local things: files, a 127.0.0.1 OpenAI-style server."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster_eval.settings import PROJECT_ROOT, Settings
from flows import pipeline
from flows.errors import ConfigurationError, InfrastructureFailure
from traffic.builders import GOLDEN_PATH
from traffic.spans import Span, write_spans

SMALL_SPEC = Path(__file__).parent / "data" / "e2e-small.yaml"


def test_a_spec_is_built_into_a_traffic_file(tmp_path):
    out = tmp_path / "traffic.jsonl"
    n = pipeline.prepare_traffic(SMALL_SPEC, out)
    lines = out.read_text().splitlines()
    assert n == len(lines) > 10
    assert {json.loads(line)["tenant_id"] for line in lines} == {"acme", "globex"}


def test_a_traffic_file_is_loaded_and_a_missing_one_is_a_configuration_error(tmp_path):
    out = tmp_path / "traffic.jsonl"
    assert pipeline.prepare_traffic(GOLDEN_PATH, out) == 16
    with pytest.raises(ConfigurationError, match="^configuration: traffic"):
        pipeline.prepare_traffic(tmp_path / "nope.jsonl", out)


def test_baseline_sends_the_golden_set_one_at_a_time_to_one_replica(fake_openai, tmp_path):
    out = tmp_path / "baseline.parquet"
    statuses = pipeline.run_baseline(GOLDEN_PATH, "rep-z", fake_openai.url, out, timeout_s=10)
    assert statuses == {"ok": 16}
    assert {r["pin"] for r in fake_openai.requests} == {"rep-z"}
    spans = pq.read_table(out).to_pylist()
    assert {s["mode"] for s in spans} == {"baseline"}
    assert {s["replica_id"] for s in spans} == {"rep-z"}
    assert all(s["output_text"] == "42" for s in spans)
    # the golden round's least length: the baseline's latencies, one request at a time
    assert pipeline.golden_round_s(out) == pytest.approx(
        sum(s["latency_ms"] for s in spans) / 1000.0)
    assert pipeline.golden_round_s(tmp_path / "no-baseline.parquet") == 0.0


def _baseline_spans(path, outcomes):
    spans = [Span(span_id=f"b{i}", request_id=f"g{i}", mode="baseline", tenant_id="golden",
                  endpoint="/v1/chat/completions", intended_at=0.0, sent_at=0.0,
                  schedule_lag_ms=0.0, latency_ms=latency_ms, status=status, request_body="{}")
             for i, (status, latency_ms) in enumerate(outcomes)]
    return write_spans(spans, path)


def test_a_golden_round_lasts_as_long_as_the_baseline_took_to_answer(tmp_path):
    answered = _baseline_spans(tmp_path / "a.parquet", [("ok", 2000.0), ("ok", 4000.0)])
    assert pipeline.golden_round_s(answered) == pytest.approx(6.0)
    # a timed-out request counts the answered mean, never its timeout: a cluster that
    # answers nothing must not pace its probes at 120 s a request
    timed_out = _baseline_spans(tmp_path / "t.parquet",
                                [("ok", 2000.0), ("ok", 4000.0), ("timeout", 120_000.0)])
    assert pipeline.golden_round_s(timed_out) == pytest.approx(9.0)
    nothing = _baseline_spans(tmp_path / "n.parquet", [("timeout", 120_000.0)])
    assert pipeline.golden_round_s(nothing) == 0.0


def test_a_dead_endpoint_is_an_infrastructure_failure(tmp_path):
    with pytest.raises(InfrastructureFailure, match="^infrastructure: serving endpoint"):
        pipeline.check_endpoint("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(InfrastructureFailure, match="refused all 16 requests"):
        pipeline.run_baseline(GOLDEN_PATH, "r", "http://127.0.0.1:9", tmp_path / "b.parquet",
                              timeout_s=2)


def test_a_live_endpoint_passes_the_check(fake_openai):
    pipeline.check_endpoint(fake_openai.url)


def test_deploy_maps_stack_errors(monkeypatch, tmp_path):
    from serving import stack
    from serving.errors import DashboardUnreachable, StackNotHealthy

    config = PROJECT_ROOT / "serving" / "configs" / "embedded-cpu.yaml"
    settings = Settings(home=tmp_path)

    def unhealthy(*args, **kwargs):
        raise StackNotHealthy("not healthy after 5 s: deployment 'LLMReplica' is UPDATING",
                              deployment="LLMReplica")

    monkeypatch.setattr(stack, "up", unhealthy)
    with pytest.raises(InfrastructureFailure, match="^infrastructure: stack never became"):
        pipeline.deploy(config, settings, timeout_s=5)

    def unreachable(*args, **kwargs):
        raise DashboardUnreachable("no Ray dashboard answered at http://127.0.0.1:1")

    monkeypatch.setattr(stack, "up", unreachable)
    with pytest.raises(InfrastructureFailure, match="DashboardUnreachable"):
        pipeline.deploy(config, settings, timeout_s=5)

    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: [{name: llm}]\n")
    with pytest.raises(ConfigurationError, match="import_path"):
        pipeline.deploy(bad, settings, timeout_s=5)


def test_run_files_follow_the_parameters(tmp_path):
    settings = Settings(home=tmp_path / "home")
    default = pipeline.run_files({}, "abc", settings)
    assert default["report"] == tmp_path / "home" / "runs" / "abc" / "report.html"
    assert default["warehouse"] == tmp_path / "home" / "warehouse.duckdb"
    chosen = pipeline.run_files({"out_dir": str(tmp_path / "o"),
                                 "warehouse": str(tmp_path / "w.duckdb")}, "abc", settings)
    assert chosen["data_docs"] == tmp_path / "o" / "abc" / "data-docs" / "index.html"
    assert chosen["warehouse"] == tmp_path / "w.duckdb"


def test_most_requests_refused_is_an_outage_not_a_verdict():
    pipeline._refuse_if_unreachable({"ok": 60, "connection_error": 40}, "http://x")
    with pytest.raises(InfrastructureFailure, match="^infrastructure: 70 of 100 requests"):
        pipeline._refuse_if_unreachable({"ok": 30, "connection_error": 70}, "http://x")
