"""flows/automations/crash-unresponsive-runs.yaml: a run whose process died is Crashed.

Its live behaviour (a worker SIGKILLed mid-run → Crashed → notified) is shown by
scripts/chaos_worker.py; these say the file can never crash a healthy run."""

from __future__ import annotations

import yaml

from cluster_eval.settings import PROJECT_ROOT
from flows.cluster_eval import ERRORED, INVALID

AUTOMATION = PROJECT_ROOT / "flows" / "automations" / "crash-unresponsive-runs.yaml"


def _automation():
    from prefect.events.schemas.automations import AutomationCore

    (spec,) = yaml.safe_load(AUTOMATION.read_text())["automations"]
    return AutomationCore.model_validate(spec)


def test_it_crashes_a_cluster_eval_run_whose_heartbeats_stopped():
    automation = _automation()
    assert automation.trigger.posture == "Proactive"
    assert automation.trigger.after == {"prefect.flow-run.heartbeat"}
    assert automation.trigger.for_each == {"prefect.resource.id"}
    assert automation.trigger.match_related.get("prefect.resource.name") == ["cluster-eval"]
    (action,) = automation.actions
    assert action.type == "change-flow-run-state" and action.state.value == "CRASHED"


def test_every_end_state_of_the_flow_stops_the_wait():
    """A run that ended (under any of the flow's state names) is never marked Crashed."""
    ends = {"Completed", "Failed", INVALID, ERRORED, "Cancelled", "Crashed"}
    assert {f"prefect.flow-run.{name}" for name in ends} | {"prefect.flow-run.heartbeat"} \
        == _automation().trigger.expect


def test_the_window_outlasts_three_default_heartbeats():
    """With Prefect's default heartbeat interval a healthy run beats three times in it."""
    from prefect.settings.models.flows import FlowsSettings

    default = FlowsSettings.model_fields["heartbeat_frequency"].default
    assert _automation().trigger.within.total_seconds() >= 3 * default
