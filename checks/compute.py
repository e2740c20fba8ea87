"""Run the check SQL files against one run in the warehouse.

Order: ``_macros.sql`` (shared bucket statistics), ``_span_quality.sql`` (one row
per span with its quality), the bucket assignments (``BUCKET_ASSIGNMENTS``: which
bucket of each bucket check every span is in, as temp tables, and the ``span_buckets``
view over them), then each check in ``CHECKS`` order, which replaces its rows for the
run in ``check_<name>``. The check tables are written in one transaction.

The assignment is the one place a bucket rule is written: the checks aggregate it,
and the OTLP export (``exports/otlp.sql``) and the report's timeline
(``checks/plots/timeline_bands.sql``) read it, staged by :func:`stage_buckets`.

Three kinds of check (``ROLE``):
* ``bucket``: the five cluster checks, comparing parts of one night with each other;
* ``night``: the night as a whole, in absolute terms (``slo``) and against the
  accepted baseline of earlier nights (``history``, computed last: it reads the
  other check tables);
* ``measurement``: whether the night's numbers can be trusted; its breaches make
  the run INVALID rather than FAIL.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import yaml

from checks.thresholds import Thresholds
from warehouse.schema import transaction

BUCKET_CHECKS = (
    "replica_skew",
    "autoscaling_lag",
    "kv_cache_eviction",
    "traffic_pattern_drift",
    "tenant_fairness",
)
CHECKS = (*BUCKET_CHECKS, "slo", "measurement", "history")
ROLE = {**dict.fromkeys(BUCKET_CHECKS, "bucket"), "slo": "night", "history": "night",
        "measurement": "measurement"}

# (check whose thresholds it binds, SQL file), in the order they must run: a file may
# read the tables of the files before it
BUCKET_ASSIGNMENTS = (
    ("replica_skew", "_replica_skew_buckets"),
    ("autoscaling_lag", "_autoscaling_lag_samples"),
    ("autoscaling_lag", "_autoscaling_lag_buckets"),
    ("kv_cache_eviction", "_kv_cache_eviction_buckets"),
    ("traffic_pattern_drift", "_traffic_pattern_windows"),
    ("traffic_pattern_drift", "_traffic_pattern_drift_buckets"),
    ("tenant_fairness", "_tenant_fairness_buckets"),
)

_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def sql(name: str) -> str:
    """The text of ``checks/sql/<name>.sql``."""
    return (resources.files("checks") / "sql" / f"{name}.sql").read_text()


def max_replicas(config_yaml: str | None) -> int | None:
    """How far the served deployment could scale, from the run's ServeConfigV2 text.

    The largest ``autoscaling_config.max_replicas`` (or fixed ``num_replicas``) among
    the first application's deployments — the one the flow deploys and the sampler
    counts replicas of. ``None`` when the config is missing or says neither.
    """
    try:
        config = yaml.safe_load(config_yaml) if config_yaml else None
    except yaml.YAMLError:
        return None
    apps = config.get("applications") if isinstance(config, dict) else None
    if not apps or not isinstance(apps[0], dict):
        return None
    found = []
    for deployment in apps[0].get("deployments") or []:
        autoscaling = deployment.get("autoscaling_config") or {}
        value = autoscaling.get("max_replicas", deployment.get("num_replicas"))
        if isinstance(value, int):
            found.append(value)
    return max(found) if found else None


def run_facts(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds
              ) -> dict[str, Any]:
    """Facts of the run the checks bind besides thresholds: ``max_replicas`` and the
    accepted baseline's run ids (``baseline_runs``, empty while establishing)."""
    from checks.baseline import baseline_status

    baseline = baseline_status(con, run_id, thresholds.history.nights)
    return {"max_replicas": run_max_replicas(con, run_id),
            "baseline_runs": list(baseline.active)}


def run_max_replicas(con: duckdb.DuckDBPyConnection, run_id: str) -> int | None:
    """:func:`max_replicas` of the config the run recorded."""
    row = con.execute("SELECT config FROM runs WHERE run_id = $run_id",
                      {"run_id": run_id}).fetchall()
    return max_replicas(row[0][0] if row else None)


def check_params(check: str, run_id: str, thresholds: Thresholds,
                 facts: dict[str, Any] | None = None, *, name: str | None = None
                 ) -> dict[str, Any]:
    """The values a check's SQL (``name``, default the check's own file) binds:
    exactly the ``$names`` it uses, from the check's thresholds and the run's facts."""
    available: dict[str, Any] = {"run_id": run_id, "min_samples": thresholds.min_samples,
                                 "significance_z": thresholds.significance_z,
                                 "max_replicas": None, "baseline_runs": [],
                                 **(facts or {}),
                                 **getattr(thresholds, check).model_dump()}
    text = _COMMENT.sub("", sql(name or check))
    return {param: available[param] for param in set(_PARAM.findall(text))}


def prepare(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Create the shared macros and the run's ``span_quality`` temp table."""
    con.execute(sql("_macros"))
    con.execute(sql("_span_quality"), {"run_id": run_id})


def assign_buckets(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds,
                   max_replicas: int | None) -> None:
    """Put every span of the run in its bucket of each bucket check: the temp tables
    ``<check>_buckets`` (plus ``autoscaling_lag_samples`` and ``traffic_pattern_windows``,
    the rules applied to telemetry) and the ``span_buckets`` view over them. Needs
    :func:`prepare` first; writes nothing to the warehouse file."""
    for check, name in BUCKET_ASSIGNMENTS:
        con.execute(sql(name), check_params(check, run_id, thresholds,
                                            {"max_replicas": max_replicas}, name=name))
    con.execute(sql("_span_buckets"))


def stage_buckets(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds
                  ) -> None:
    """:func:`prepare` and :func:`assign_buckets` for a reader of ``span_buckets`` (the
    OTLP export, the report's timeline): temp tables only, nothing written."""
    prepare(con, run_id)
    assign_buckets(con, run_id, thresholds, run_max_replicas(con, run_id))


def run_checks(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds) -> None:
    """Compute every check for ``run_id`` (scores must be loaded) into ``check_*``."""
    prepare(con, run_id)
    facts = run_facts(con, run_id, thresholds)
    assign_buckets(con, run_id, thresholds, facts["max_replicas"])
    with transaction(con):
        for check in CHECKS:
            # identifier from the fixed CHECKS tuple, quoted; the value is bound
            con.execute(f'DELETE FROM "check_{check}" WHERE run_id = $run_id',
                        {"run_id": run_id})
            con.execute(sql(check), check_params(check, run_id, thresholds, facts))
