"""The flow's wiring with test doubles for the plain steps (no stack, no model).

Each task calls one function of ``flows.pipeline``; the tests replace those with
doubles and check what the flow does with their results: the final state and its
message, retries where they are safe and none where they are not, the artifacts,
and the failure notification reaching a real webhook receiver on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.gate import Breach, GateResult, Verdict
from flows import cluster_eval as flow_module
from flows import pipeline
from flows.errors import ConfigurationError, InfrastructureFailure

INVALID_MESSAGE = ("INVALID: run r cannot be judged, its measurement is not trustworthy: "
                   "the replay fell behind its schedule: p99 send lag 5000 ms.")
BREACH = ("FAIL: run r failed the gate: replica_skew: replica 'rep-b' mean quality 0.21 is 0.30 "
          "below the cohort median 0.51 (allowed 0.02).")

CHECK_ROWS = {
    "replica_skew": [
        {"bucket": "rep-a", "n": 32, "insufficient": False, "mean_quality": 0.81,
         "p05_quality": 0.5, "delta_mean": 0.3, "p50_latency_ms": 400.0,
         "p99_latency_ms": 900.0, "error_rate": 0.0},
        {"bucket": "rep-b", "n": 32, "insufficient": False, "mean_quality": 0.21,
         "p05_quality": 0.0, "delta_mean": -0.3, "p50_latency_ms": 90.0,
         "p99_latency_ms": 150.0, "error_rate": 0.0},
    ],
    "autoscaling_lag": [], "kv_cache_eviction": [], "traffic_pattern_drift": [],
    "tenant_fairness": [],
}


class Calls:
    def __init__(self) -> None:
        self.names: list[str] = []

    def count(self, name: str) -> int:
        return self.names.count(name)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Calls:
    """Replace every plain step with a double that records its call."""
    calls = Calls()
    monkeypatch.setattr(flow_module.deploy_or_reconfigure, "retry_delay_seconds", [0])

    def record(name, result=None):
        def double(*args, **kwargs):
            calls.names.append(name)
            return result(*args, **kwargs) if callable(result) else result
        monkeypatch.setattr(pipeline, name, double)

    record("deploy", pipeline.DeployOutcome(
        action="unchanged", seconds_to_healthy=0.1, replica_ids=["rep-a", "rep-b"], app="llm",
        deployments=["LLMReplica"], config={"applications": [{"name": "llm"}]}))
    record("check_endpoint")
    record("prepare_traffic", 10)
    record("run_baseline", {"ok": 16})
    spans = tmp_path / "replay-spans.parquet"
    record("run_replay", pipeline.ReplayOutcome(
        spans_path=spans, telemetry_path=tmp_path / "telemetry.parquet",
        counts={"replay": 10, "pinned": 64, "tenant_burst": 0}, statuses={"ok": 74},
        wall_s=1.0, lag_p99_ms=0.5, telemetry_samples=3))
    record("merge_spans", 90)
    record("score", 450)
    record("load_warehouse")
    record("evaluate", GateResult(verdict=Verdict.PASS,
                                  message="PASS: run r passed every judged check.",
                                  breaches=[], insufficient=[]))

    def fake_report(db, run_id, out_dir, thresholds=None):
        page = Path(out_dir) / "report.html"
        page.write_text("<html></html>")
        return page, {"checks": CHECK_ROWS}

    record("report", fake_report)
    record("teardown")
    return calls


def _run(tmp_path: Path, **params):
    return flow_module.cluster_eval(
        warehouse=str(tmp_path / "wh.duckdb"), out_dir=str(tmp_path / "runs"),
        return_state=True, **params)


def _breach_gate() -> GateResult:
    breach = Breach(check="replica_skew", bucket="rep-b", metric="delta_mean", observed=-0.3,
                    threshold=-0.02, message="replica_skew: replica 'rep-b' …")
    return GateResult(verdict=Verdict.FAIL, message=BREACH, breaches=[breach], insufficient=[])


def _invalid_gate() -> GateResult:
    problem = Breach(check="measurement", bucket="schedule_lag", metric="lag_p99_ms",
                     observed=5000.0, threshold=1000.0,
                     message="measurement: the replay fell behind its schedule")
    return GateResult(verdict=Verdict.INVALID, message=INVALID_MESSAGE, breaches=[problem],
                      insufficient=[])


def _artifacts(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a.type for a in found}


def test_a_passing_run_completes_with_artifacts(prefect_server, steps, tmp_path):
    state = _run(tmp_path)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["passed"] is True
    assert Path(summary["report"]).name == "report.html"
    assert steps.names[:2] == ["deploy", "check_endpoint"]
    assert "teardown" not in steps.names
    artifacts = _artifacts(state.state_details.flow_run_id)
    assert artifacts["cluster-eval-verdict"] == "markdown"
    assert artifacts["check-replica-skew"] == "table"
    assert artifacts["check-tenant-fairness"] == "table"
    assert "cluster-eval-report" in artifacts  # a link artifact (stored as markdown)


def test_a_breach_fails_with_the_gate_paragraph_and_notifies(
    prefect_server, steps, tmp_path, monkeypatch, webhook, notification_block
):
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: _breach_gate())
    state = _run(tmp_path, notification_block=notification_block)
    assert state.is_failed()
    assert state.message == BREACH
    assert webhook.arrived.wait(30), "no notification reached the webhook"
    sent = webhook.received[0]
    assert "failed" in sent["subject"]
    assert "replica_skew" in sent["body"] and "rep-b" in sent["body"]
    flow_run_id = str(state.state_details.flow_run_id)
    assert f"/runs/flow-run/{flow_run_id}" in sent["body"]
    assert "report.html" in sent["body"]
    # the report and artifacts are written before the run fails
    assert "check-replica-skew" in _artifacts(state.state_details.flow_run_id)


def test_an_unhealthy_stack_is_retried_then_fails_as_infrastructure(
    prefect_server, steps, tmp_path, monkeypatch
):
    def never_healthy(*args, **kwargs):
        steps.names.append("deploy")
        raise InfrastructureFailure("stack never became healthy: deployment 'LLMReplica'")

    monkeypatch.setattr(pipeline, "deploy", never_healthy)
    state = _run(tmp_path, teardown=True)
    assert state.is_failed()
    assert state.message.startswith("infrastructure: stack never became healthy")
    assert steps.count("deploy") == 3  # retries=2: re-applying a config is safe
    assert "run_replay" not in steps.names
    assert steps.count("teardown") == 1  # teardown even on failure


def test_a_bad_config_is_not_retried(prefect_server, steps, tmp_path, monkeypatch):
    def bad(*args, **kwargs):
        steps.names.append("deploy")
        raise ConfigurationError("x.yaml: applications[0].import_path is missing")

    monkeypatch.setattr(pipeline, "deploy", bad)
    state = _run(tmp_path)
    assert state.is_failed()
    assert state.message.startswith("configuration:")
    assert steps.count("deploy") == 1


def test_replay_is_never_retried(prefect_server, steps, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        steps.names.append("run_replay")
        raise RuntimeError("engine crashed mid-run")

    monkeypatch.setattr(pipeline, "run_replay", broken)
    state = _run(tmp_path)
    assert state.is_failed()
    assert steps.count("run_replay") == 1  # a retry would send and count traffic twice
    assert "score" not in steps.names


def test_an_unreachable_endpoint_is_infrastructure(prefect_server, steps, tmp_path,
                                                   monkeypatch):
    # the real check against a port nothing listens on
    monkeypatch.setattr(pipeline, "check_endpoint", _real_check_endpoint)
    monkeypatch.setenv("CLUSTER_EVAL_SERVE_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(flow_module.deploy_or_reconfigure, "retries", 0)
    state = _run(tmp_path)
    assert state.is_failed()
    assert state.message.startswith("infrastructure: serving endpoint http://127.0.0.1:9")


_real_check_endpoint = pipeline.check_endpoint


def test_the_run_command_exits_0_on_pass_1_on_a_breach_3_when_invalid(
    prefect_server, steps, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from cluster_eval.cli import app

    args = ["run", "--warehouse", str(tmp_path / "wh.duckdb"), "--out-dir",
            str(tmp_path / "runs"), "--burst", '{"enabled": false}']
    passed = CliRunner().invoke(app, args)
    assert passed.exit_code == 0, passed.output
    assert "report:" in passed.output
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: _breach_gate())
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1
    assert "replica_skew" in failed.output
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: _invalid_gate())
    invalid = CliRunner().invoke(app, args)
    assert invalid.exit_code == 3
    assert "Invalid: INVALID: run r cannot be judged" in invalid.output


def test_an_invalid_run_ends_in_its_own_state_and_notifies(
    prefect_server, steps, tmp_path, monkeypatch, webhook, notification_block
):
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: _invalid_gate())
    state = _run(tmp_path, notification_block=notification_block)
    assert state.is_failed() and state.name == "Invalid"
    assert state.message == INVALID_MESSAGE
    assert webhook.arrived.wait(30), "no notification reached the webhook"
    sent = webhook.received[0]
    assert sent["subject"].endswith(" invalid")
    assert "fell behind its schedule" in sent["body"]
