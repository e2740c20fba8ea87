"""The scenario matrix's CI slice on the real stack: the healthy baseline passes every
check it judges, a drifted replica is caught by replica_skew and nothing else, and a
drift on every replica at once (a bad rollout) by the SLOs' golden-quality floor."""

from __future__ import annotations

import pytest
import yaml

from scenarios import targets
from scenarios.model import catalog
from scenarios.runner import record, run_scenario
from serving import stack as stack_control
from warehouse import opened

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def scenario_runs(stack, tmp_path_factory):
    out = tmp_path_factory.mktemp("scenarios")
    db = out / "wh.duckdb"
    runs = {s.name: run_scenario(s, 1, db=db, out_dir=out)
            for s in catalog(["healthy", "drifted-replica", "cluster-wide-drift"])}
    record(db, list(runs.values()))
    # Leave the session stack as the other tests expect it (no fault).
    stack_control.apply(stack.config_path, stack.settings, timeout_s=300)
    return runs, db, out


def test_the_healthy_scenario_passes_every_check(scenario_runs):
    runs, _, _ = scenario_runs
    healthy = runs["healthy"]
    assert healthy.state == "COMPLETED", healthy.message
    assert healthy.verdict == "PASS"
    statuses = {v.check: v.status for v in healthy.verdicts}
    # a scenario run has no baseline: history is not judged, and says so
    assert statuses.pop("history") == "insufficient"
    assert set(statuses.values()) == {"pass"}, healthy.message


def test_a_drifted_replica_fails_replica_skew_and_only_that(scenario_runs, stack):
    runs, db, out = scenario_runs
    drifted = runs["drifted-replica"]
    statuses = {v.check: v.status for v in drifted.verdicts}
    assert statuses.pop("replica_skew") == "fail", drifted.message
    assert statuses.pop("history") == "insufficient"
    assert set(statuses.values()) == {"pass"}, drifted.message
    assert drifted.state == "FAILED" and drifted.verdict == "FAIL"
    assert drifted.message.startswith("FAIL: ") and "replica_skew" in drifted.message
    # rank 1 was aimed by id at a replica that runs, and the drift answered from it alone
    aimed = yaml.safe_load((out / "drifted-replica-1" / "serve-config.yaml").read_text())
    (target,) = [f["replica_id"] for f in targets.faults(aimed)]
    with opened(db) as con:
        rows = con.execute(
            "SELECT scenario, \"check\", status, expected FROM scenario_results "
            "WHERE status <> expected").fetchall()
        sick = {r[0] for r in con.execute(
            "SELECT DISTINCT replica_id FROM spans WHERE run_id = ? "
            "AND config_version LIKE '%fault:drift%'", [drifted.run_id]).fetchall()}
    assert rows == []
    assert drifted.unreached == [] and drifted.diagonal
    assert sick == {target} and f"replica '{target}'" in drifted.message


def test_a_drift_on_every_replica_fails_the_golden_floor_and_only_that(scenario_runs):
    runs, _, _ = scenario_runs
    everywhere = runs["cluster-wide-drift"]
    assert everywhere.verdict == "FAIL", everywhere.message
    assert everywhere.unreached == []
    statuses = {v.check: v for v in everywhere.verdicts}
    slo = statuses.pop("slo")
    assert (slo.status, slo.metric) == ("fail", "golden_quality"), everywhere.message
    assert statuses.pop("history").status == "insufficient"
    assert {v.status for v in statuses.values()} == {"pass"}, everywhere.message
    assert everywhere.message.startswith("FAIL: ") and "golden set" in everywhere.message
