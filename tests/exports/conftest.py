"""Judged nights in a real warehouse, for the exporters: the night builder of the
verdict tests (tests/checks/test_verdict.py), loaded with the ledger fields the flow
writes (the cluster's app, deployments and serve URL; the finish time), then checked
and judged by the project's own code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from checks.compute import run_checks
from checks.gate import GateResult, validate_connection
from checks.thresholds import load_thresholds
from tests.checks.conftest import RunBuilder
from tests.checks.test_verdict import thresholds_file
from warehouse import RunInfo, connect, load_run, write_scores

# what the flow stores in runs.cluster; the URL's password must never be exported
SECRET = "hunter2-s3cret"
CLUSTER = {"replicas": ["rep-a", "rep-b"], "app": "llm", "deployments": ["LLMReplica"],
           "serve_url": f"http://admin:{SECRET}@127.0.0.1:8000", "stack_action": "unchanged"}
DURATION_S = 512.0


def load_and_judge(tmp_path: Path, builder: RunBuilder, **overrides) -> tuple[Path, GateResult]:
    """Load the builder's night into ``tmp_path/w.duckdb`` (as the flow would), compute
    the checks and run the gate; return the warehouse and the gate's result."""
    db = tmp_path / "w.duckdb"
    spans = tmp_path / f"{builder.run_id}-spans.parquet"
    telemetry = tmp_path / f"{builder.run_id}-tel.parquet"
    pl.DataFrame(builder.spans).write_parquet(spans)
    pl.DataFrame(builder.telemetry).write_parquet(telemetry)
    load_run(db, RunInfo(run_id=builder.run_id, started_at=builder.started_at,
                         finished_at=builder.started_at + timedelta(seconds=DURATION_S),
                         config=builder.config, cluster=CLUSTER, plan=builder.plan,
                         baseline_key=builder.baseline_key),
             spans, telemetry)
    thresholds = load_thresholds(thresholds_file(tmp_path, **overrides))
    with connect(db) as con:
        write_scores(con, builder.run_id, pl.DataFrame(
            builder.scores, schema=["span_id", "rubric", "score"], orient="row"))
        run_checks(con, builder.run_id, thresholds)
        result = validate_connection(con, builder.run_id, thresholds)
    return db, result


@dataclass(frozen=True)
class JudgedNight:
    db: Path
    run_id: str
    gate: GateResult


@pytest.fixture(scope="session")
def judged_nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, JudgedNight]:
    """Four nights in one warehouse, each judged by the gate (about 30 s each):

    * ``pass``: a healthy night (history not judged: the baseline is establishing);
    * ``fail``: half the requests fail everywhere, the SLO's error share breaches;
    * ``invalid``: 50 replay requests planned, 40 spans recorded;
    * ``thin``: healthy, but thin buckets fail the night (``fail_on_insufficient``).
    """
    from tests.checks.test_verdict import night

    folder = tmp_path_factory.mktemp("judged-nights")
    lost = {"planned": {"pinned": 48, "replay": 50}, "golden_rounds": 2, "replicas": 2}
    quiet_host = {"planned": {"pinned": 48, "replay": 40}, "golden_rounds": 2, "replicas": 2,
                  "host": {"window_s": 62.0, "cpus": 2, "busy_share": 0.9, "ours_share": 0.87,
                           "foreign_share": 0.03},
                  "host_speed": {"probe_ms": 4.2, "before_ms": 4.9, "after_ms": 3.6,
                                 "samples": 80}}
    plans = {
        "pass": (night(folder, "night-pass", 1, seed=1, plan=quiet_host), {}),
        "fail": (night(folder, "night-fail", 2, error_every=2), {}),
        "invalid": (night(folder, "night-invalid", 3, plan=lost), {}),
        "thin": (night(folder, "night-thin", 4, seed=4), {"fail_on_insufficient": True}),
    }
    nights = {}
    for name, (builder, overrides) in plans.items():
        db, gate = load_and_judge(folder, builder, **overrides)
        nights[name] = JudgedNight(db=db, run_id=builder.run_id, gate=gate)
    return nights
