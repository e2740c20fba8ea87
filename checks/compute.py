"""Run the check SQL files against one run in the warehouse.

Order: ``_macros.sql`` (shared bucket statistics), ``_span_quality.sql`` (one row
per span with its quality), the bucket assignments (each spec's ``assignments``: which
bucket of each bucket check every span is in, as temp tables, and the ``span_buckets``
view over them), then each registered check (checks/registry.py) in order: its query's
rows replace the run's rows of that check in ``check_buckets``, in one transaction.

The assignment is the one place a bucket rule is written: the checks aggregate it,
and the OTLP export (``exports/otlp.sql``) and the report's timeline
(``checks/plots/timeline_bands.sql``) read it, staged by :func:`stage_buckets`.

Three kinds of check (``CheckSpec.role``):
* ``bucket``: the five cluster checks, comparing parts of one night with each other;
* ``night``: the night as a whole, in absolute terms (``slo``) and against the
  accepted baseline of earlier nights (``history``, computed last: it reads the
  other checks' rows);
* ``measurement``: whether the night's numbers can be trusted; its breaches make
  the run INVALID rather than FAIL.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import yaml

from checks import registry
from checks.thresholds import Thresholds
from warehouse.schema import transaction

# The shipped checks, as the registry lists them (checks/registry.py): names for
# callers that enumerate them (scenarios, exports). The computation itself iterates
# the registry, so a registered check runs too.
CHECKS = tuple(spec.name for spec in registry.SHIPPED)
BUCKET_CHECKS = tuple(spec.name for spec in registry.SHIPPED if spec.role == "bucket")
ROLE = {spec.name: spec.role for spec in registry.SHIPPED}

_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


def sql(name: str) -> str:
    """The text of ``checks/sql/<name>.sql``."""
    return registry.read_sql(registry.SQL_DIR / f"{name}.sql")


def _text(check: str, name: str | None) -> str:
    """The SQL a check runs: one of its bucket assignment files (``name``) or the
    statement that writes its query's rows."""
    spec = registry.spec(check)
    return spec.insert_sql() if name in (None, check) else spec.read(name)


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
                                 "check": check,
                                 **thresholds.section(check).model_dump()}
    text = _COMMENT.sub("", _text(check, name))
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
    for spec in registry.specs():
        for name in spec.assignments:
            con.execute(spec.read(name), check_params(spec.name, run_id, thresholds,
                                                      {"max_replicas": max_replicas},
                                                      name=name))
    con.execute(sql("_span_buckets"))


def stage_buckets(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds
                  ) -> None:
    """:func:`prepare` and :func:`assign_buckets` for a reader of ``span_buckets`` (the
    OTLP export, the report's timeline): temp tables only, nothing written."""
    prepare(con, run_id)
    assign_buckets(con, run_id, thresholds, run_max_replicas(con, run_id))


def run_checks(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds) -> None:
    """Compute every check for ``run_id`` (scores must be loaded) into ``check_*``."""
    registry.sync_schema(con)
    prepare(con, run_id)
    facts = run_facts(con, run_id, thresholds)
    assign_buckets(con, run_id, thresholds, facts["max_replicas"])
    with transaction(con):
        for spec in registry.specs():
            write_check(con, spec.name, run_id, thresholds, facts)


def write_check(con: duckdb.DuckDBPyConnection, check: str, run_id: str,
                thresholds: Thresholds, facts: dict[str, Any]) -> None:
    """Replace the run's rows of one check in ``check_buckets`` with its query's rows
    (the spans must be staged: :func:`prepare`, :func:`assign_buckets`)."""
    con.execute('DELETE FROM check_buckets WHERE run_id = $run_id AND "check" = $check',
                {"run_id": run_id, "check": check})
    con.execute(registry.spec(check).insert_sql(),
                check_params(check, run_id, thresholds, facts))
