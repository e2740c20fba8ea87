"""prefect.yaml, the automation file, the scripts and the rendering helpers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from checks.gate import Breach, GateResult
from cluster_eval.settings import PROJECT_ROOT
from flows.artifacts import artifact_key, check_rows, verdict_markdown
from flows.cli import exit_code
from flows.notify import failure_message, run_url

PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
AUTOMATION = PROJECT_ROOT / "flows" / "automations" / "notify-on-failure.yaml"


def _deployments() -> dict[str, dict]:
    return {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}


def test_the_nightly_deployment_runs_the_flow_at_two_on_a_process_pool():
    nightly = _deployments()["nightly-cluster-eval"]
    assert nightly["entrypoint"] == "flows/cluster_eval.py:cluster_eval"
    assert nightly["schedules"][0]["cron"] == "0 2 * * *"
    assert nightly["schedules"][0]["timezone"] == "UTC"
    assert nightly["work_pool"]["name"] == "cluster-eval-pool"


@pytest.mark.parametrize("name", ["nightly-cluster-eval", "cluster-eval-canary"])
def test_deployment_parameters_validate_against_the_flow(name):
    from flows.cluster_eval import cluster_eval

    parameters = _deployments()[name]["parameters"]
    validated = cluster_eval.validate_parameters(parameters)
    assert set(parameters) <= set(validated)
    for key in ("serve_config", "traffic", "golden", "thresholds"):
        assert (PROJECT_ROOT / parameters[key]).is_file(), parameters[key]


def test_the_pull_step_needs_no_git():
    (step,) = yaml.safe_load(PREFECT_YAML.read_text())["pull"]
    assert list(step) == ["prefect.deployments.steps.set_working_directory"]


def test_the_automation_file_is_a_valid_automation():
    from prefect.events.schemas.automations import AutomationCore

    (automation,) = yaml.safe_load(AUTOMATION.read_text())["automations"]
    parsed = AutomationCore.model_validate(automation)
    assert parsed.actions[0].type == "send-notification"
    assert set(parsed.trigger.expect) == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                                          "prefect.flow-run.Invalid", "prefect.flow-run.Errored"}


@pytest.mark.parametrize("script", ["nightly-demo.sh", "stop-all.sh"])
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(PROJECT_ROOT / "scripts" / script)], check=True)


def test_run_is_a_top_level_command():
    from typer.main import get_command

    from cluster_eval.cli import app

    assert "run" in get_command(app).commands  # type: ignore[attr-defined]


def test_exit_codes():
    """From the state's type and name, never from its message."""
    assert exit_code("COMPLETED", "Completed") == 0
    assert exit_code("FAILED", "Failed") == 1
    assert exit_code("FAILED", "Invalid") == 3
    assert exit_code("FAILED", "Errored") == 2
    assert exit_code("CRASHED", "Crashed") == 2


def _gate(passed: bool) -> GateResult:
    breaches = [] if passed else [Breach(
        check="replica_skew", bucket="rep-b", metric="delta_mean", observed=-0.3,
        threshold=-0.02, message="m")]
    return GateResult(verdict="PASS" if passed else "FAIL",
                      message="FAIL: run r failed the gate: …", breaches=breaches,
                      insufficient=[])


ROWS = [{"bucket": "rep-a", "n": 32, "insufficient": False, "mean_quality": 0.8123456},
        {"bucket": "rep-b", "n": 32, "insufficient": False, "mean_quality": 0.2}]


def test_check_rows_mark_breached_buckets():
    rows = check_rows("replica_skew", ROWS, _gate(False))
    assert [r["breach"] for r in rows] == ["", "BREACH"]
    assert rows[0]["mean_quality"] == 0.8123
    assert rows[0]["p99_latency_ms"] is None


def test_verdict_markdown_has_the_message_and_a_table_per_check():
    text = verdict_markdown("r", _gate(False), {"replica_skew": ROWS, "tenant_fairness": []},
                            {"report": Path("/x/report.html")})
    assert text.startswith("# cluster-eval run `r`: FAIL")
    assert "FAIL: run r failed the gate" in text
    assert "## replica_skew" in text and "## tenant_fairness" in text
    assert "| **rep-b** |" in text
    assert "No buckets for this run." in text
    assert "`/x/report.html`" in text


def test_artifact_keys_are_lowercase_dashes():
    assert artifact_key("check", "replica_skew") == "check-replica-skew"


def test_run_url_prefers_the_ui_address_and_falls_back_to_the_api():
    assert run_url("i", "http://ui:4200/", None) == "http://ui:4200/runs/flow-run/i"
    assert run_url("i", None, "http://127.0.0.1:4200/api") == (
        "http://127.0.0.1:4200/runs/flow-run/i")
    assert run_url("i", None, None) is None


def test_the_failure_message_names_run_checks_link_and_report(tmp_path):
    report = tmp_path / "report.html"
    report.write_text("x")
    subject, body = failure_message(
        run_name="brave-fox", flow_run_id="i", state_name="Failed",
        message="Run i failed the gate: replica_skew: replica 'rep-b' …",
        url="http://ui/runs/flow-run/i", report=report)
    assert subject == "cluster-eval run brave-fox failed"
    assert "replica_skew" in body and "http://ui/runs/flow-run/i" in body
    assert str(report) in body
    _, body = failure_message(run_name="x", flow_run_id="i", state_name="Failed",
                              message="infrastructure: down", url=None,
                              report=tmp_path / "missing.html")
    assert "not written" in body
