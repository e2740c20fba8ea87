"""The scenario matrix's CI slice on the real stack: the healthy baseline stays green
on every check, and a drifted replica is caught by replica_skew and nothing else."""

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
            for s in catalog(["healthy", "drifted-replica"])}
    record(db, list(runs.values()))
    # Leave the session stack as the other tests expect it (no fault).
    stack_control.apply(stack.config_path, stack.settings, timeout_s=300)
    return runs, db


def test_the_healthy_scenario_passes_every_check(scenario_runs):
    runs, _ = scenario_runs
    healthy = runs["healthy"]
    assert healthy.state == "COMPLETED", healthy.message
    assert {v.check: v.status for v in healthy.verdicts} == {
        v.check: "pass" for v in healthy.verdicts}


def test_a_drifted_replica_fails_replica_skew_and_only_that(scenario_runs, stack):
    runs, db = scenario_runs
    drifted = runs["drifted-replica"]
    statuses = {v.check: v.status for v in drifted.verdicts}
    assert statuses.pop("replica_skew") == "fail", drifted.message
    assert set(statuses.values()) == {"pass"}
    assert drifted.state == "FAILED" and "replica_skew" in drifted.message
    with opened(db) as con:
        rows = con.execute(
            "SELECT scenario, \"check\", status, expected FROM scenario_results "
            "WHERE status <> expected").fetchall()
    assert rows == []
