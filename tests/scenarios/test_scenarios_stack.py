"""The scenario matrix's CI slice on the real stack: the healthy baseline passes every
check it judges, a drifted replica is caught by replica_skew and nothing else, and a
drift on every replica at once (a bad rollout) by the SLOs' golden-quality floor."""

from __future__ import annotations

import pytest

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
    return runs, db


def test_the_healthy_scenario_passes_every_check(scenario_runs):
    runs, _ = scenario_runs
    healthy = runs["healthy"]
    assert healthy.state == "COMPLETED", healthy.message
    assert healthy.verdict == "PASS"
    statuses = {v.check: v.status for v in healthy.verdicts}
    # a scenario run has no baseline: history is not judged, and says so
    assert statuses.pop("history") == "insufficient"
    assert set(statuses.values()) == {"pass"}, healthy.message


def test_a_drifted_replica_fails_replica_skew_and_only_that(scenario_runs, stack):
    runs, db = scenario_runs
    drifted = runs["drifted-replica"]
    statuses = {v.check: v.status for v in drifted.verdicts}
    assert statuses.pop("replica_skew") == "fail", drifted.message
    assert statuses.pop("history") == "insufficient"
    assert set(statuses.values()) == {"pass"}, drifted.message
    assert drifted.state == "FAILED" and drifted.verdict == "FAIL"
    assert drifted.message.startswith("FAIL: ") and "replica_skew" in drifted.message
    with opened(db) as con:
        rows = con.execute(
            "SELECT scenario, \"check\", status, expected FROM scenario_results "
            "WHERE status <> expected").fetchall()
    assert rows == []


def test_a_drift_on_every_replica_fails_the_golden_floor_and_only_that(scenario_runs):
    runs, _ = scenario_runs
    everywhere = runs["cluster-wide-drift"]
    assert everywhere.verdict == "FAIL", everywhere.message
    statuses = {v.check: v for v in everywhere.verdicts}
    slo = statuses.pop("slo")
    assert (slo.status, slo.metric) == ("fail", "golden_quality"), everywhere.message
    assert statuses.pop("history").status == "insufficient"
    assert {v.status for v in statuses.values()} == {"pass"}, everywhere.message
    assert everywhere.message.startswith("FAIL: ") and "golden set" in everywhere.message
