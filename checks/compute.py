"""Run the five check SQL files against one run in the warehouse.

Order: ``_macros.sql`` (shared bucket statistics), ``_span_quality.sql`` (one row
per span with its quality), then each check, which replaces its rows for the run
in ``check_<name>``. All five are written in one transaction.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import duckdb

from checks.thresholds import Thresholds
from warehouse.schema import transaction

CHECKS = (
    "replica_skew",
    "autoscaling_lag",
    "kv_cache_eviction",
    "traffic_pattern_drift",
    "tenant_fairness",
)

_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def sql(name: str) -> str:
    """The text of ``checks/sql/<name>.sql``."""
    return (resources.files("checks") / "sql" / f"{name}.sql").read_text()


def check_params(check: str, run_id: str, thresholds: Thresholds) -> dict[str, Any]:
    """The values a check's SQL binds: exactly the ``$names`` it uses."""
    available: dict[str, Any] = {"run_id": run_id, "min_samples": thresholds.min_samples,
                                 "significance_z": thresholds.significance_z,
                                 **getattr(thresholds, check).model_dump()}
    return {name: available[name] for name in set(_PARAM.findall(_COMMENT.sub("", sql(check))))}


def prepare(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Create the shared macros and the run's ``span_quality`` temp table."""
    con.execute(sql("_macros"))
    con.execute(sql("_span_quality"), {"run_id": run_id})


def run_checks(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds) -> None:
    """Compute all five checks for ``run_id`` (scores must be loaded) into ``check_*``."""
    prepare(con, run_id)
    with transaction(con):
        for check in CHECKS:
            # identifier from the fixed CHECKS tuple, quoted; the value is bound
            con.execute(f'DELETE FROM "check_{check}" WHERE run_id = $run_id',
                        {"run_id": run_id})
            con.execute(sql(check), check_params(check, run_id, thresholds))
