"""The checks, one :class:`CheckSpec` each: everything else about a check derives from it.

A check is a SQL query over the run's staged spans (``checks/sql/<name>.sql``) and a
spec that says what the query's rows are and how they are judged:

* its ``role`` (a bucket check compares parts of the night; a night check judges the
  night whole; the measurement says whether the night can be trusted);
* the files that put each span in its bucket (``assignments``), if any;
* its result ``columns`` and what its buckets are (``dimension``);
* its ``rules``: judged metric, allowed range, threshold key and message;
* its thresholds section (``settings``), when it is not one of the shipped ones.

From the specs derive: the rows each check writes to ``check_buckets`` and its
``check_<name>`` view (:func:`sync_schema`), the order the checks run in
(:mod:`checks.compute`), the GX suites and the gate's messages (:mod:`checks.gate`), the
scenario verdicts, the report's sections and the table in docs/checks.md (a test holds
it to the specs). docs/checks.md, "Adding a check", walks through a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel

from checks import suites
from checks.suites import Rule
from checks.thresholds import Thresholds, load_thresholds

Role = Literal["bucket", "night", "measurement"]

SQL_DIR = Path(__file__).with_name("sql")


@cache
def read_sql(path: Path) -> str:
    """A SQL file's text, read once per process (every night runs the same files)."""
    return path.read_text()


# The columns every row of check_buckets has, whatever the check.
KEY_COLUMNS = {"run_id": "VARCHAR", "check": "VARCHAR", "dimension": "VARCHAR",
               "bucket": "VARCHAR", "n": "BIGINT", "insufficient": "BOOLEAN"}

# The bucket statistics of checks/sql/_macros.sql, which the five bucket checks share.
BUCKET_STATS = {
    "mean_quality": "DOUBLE", "p05_quality": "DOUBLE", "sd_quality": "DOUBLE",
    "json_adherence": "DOUBLE", "tool_call_correctness": "DOUBLE", "groundedness": "DOUBLE",
    "reference_match": "DOUBLE", "completion": "DOUBLE",
    "p50_latency_ms": "DOUBLE", "p99_latency_ms": "DOUBLE", "p50_ttft_ms": "DOUBLE",
    "p99_ttft_ms": "DOUBLE", "error_rate": "DOUBLE",
    "reference": "VARCHAR", "ref_mean_quality": "DOUBLE", "ref_p05_quality": "DOUBLE",
    "delta_mean": "DOUBLE", "delta_p05": "DOUBLE", "se_delta_mean": "DOUBLE",
    "delta_mean_upper": "DOUBLE", "ref_error_rate": "DOUBLE", "delta_error_rate": "DOUBLE",
    "delta_error_rate_lower": "DOUBLE",
}


@dataclass(frozen=True)
class CheckSpec:
    """One check. ``columns`` are the result columns besides ``run_id``, ``bucket``,
    ``n`` and ``insufficient``, in the order its view shows them; ``dimension`` is the
    SQL expression, over the query's row, that names what its buckets are."""

    name: str
    role: Role
    columns: Mapping[str, str]
    dimension: str
    rules: Callable[[Thresholds], list[Rule]]
    assignments: tuple[str, ...] = ()
    settings: type[BaseModel] | None = None
    # runs after every other check: its query reads their rows (history)
    reads_other_checks: bool = False
    sql_dir: Path = field(default=SQL_DIR)

    def read(self, name: str) -> str:
        """The text of one of the check's SQL files (its own, or an assignment)."""
        return read_sql(self.sql_dir / f"{name}.sql")

    def query(self) -> str:
        """The check's query: its SQL file, without the trailing semicolon."""
        return self.read(self.name).strip().rstrip(";")

    def insert_sql(self) -> str:
        """The statement that writes the query's rows for ``$run_id`` to check_buckets."""
        return (f'INSERT INTO check_buckets BY NAME\n'
                f'SELECT $check AS "check", {self.dimension} AS dimension,\n'
                f"       COLUMNS(lambda c: c <> 'dimension')\n"
                f"FROM (\n{self.query()}\n) AS result")

    def view_columns(self) -> list[str]:
        return ["run_id", "bucket", "n", "insufficient", *self.columns]

    def view_sql(self) -> str:
        """``check_<name>``: the check's own columns of check_buckets."""
        columns = ", ".join(f'"{c}"' for c in self.view_columns())
        return (f'CREATE OR REPLACE VIEW "check_{self.name}" AS\n'
                f"SELECT {columns}\nFROM check_buckets WHERE \"check\" = '{self.name}'")


_ERROR_DELTAS = ("ref_error_rate", "delta_error_rate", "delta_error_rate_lower")


def _bucket(extra: Mapping[str, str]) -> dict[str, str]:
    return {**BUCKET_STATS, **extra}


SHIPPED: tuple[CheckSpec, ...] = (
    # replica_skew compares paired golden prompts, not error rates: no error deltas
    CheckSpec("replica_skew", "bucket",
              {**{c: t for c, t in BUCKET_STATS.items() if c not in _ERROR_DELTAS},
               "spread": "DOUBLE"},
              "'replica'",
              suites.replica_skew_rules, assignments=("_replica_skew_buckets",)),
    CheckSpec("autoscaling_lag", "bucket", _bucket({"mean_saturation": "DOUBLE"}), "'load'",
              suites.autoscaling_lag_rules,
              assignments=("_autoscaling_lag_samples", "_autoscaling_lag_buckets")),
    CheckSpec("kv_cache_eviction", "bucket",
              {"dimension": "VARCHAR",
               **_bucket({"mean_hit_ratio": "DOUBLE", "evicted_share": "DOUBLE"})},
              "dimension", suites.kv_cache_eviction_rules,
              assignments=("_kv_cache_eviction_buckets",)),
    CheckSpec("traffic_pattern_drift", "bucket",
              _bucket({"replay_share": "DOUBLE", "captured_share": "DOUBLE"}), "'pattern'",
              suites.traffic_pattern_drift_rules,
              assignments=("_traffic_pattern_windows", "_traffic_pattern_drift_buckets")),
    CheckSpec("tenant_fairness", "bucket",
              _bucket({"ref_p99_latency_ms": "DOUBLE", "p99_latency_ratio": "DOUBLE",
                       "tail_latency_q": "DOUBLE", "tail_latency_ms": "DOUBLE",
                       "ref_tail_latency_ms": "DOUBLE", "tail_latency_ratio": "DOUBLE",
                       "p_slower": "DOUBLE", "slower_z": "DOUBLE",
                       "measurably_slower": "BOOLEAN"}),
              "'tenant'", suites.tenant_fairness_rules,
              assignments=("_tenant_fairness_buckets",)),
    CheckSpec("slo", "night",
              {"scope": "VARCHAR", "error_share": "DOUBLE", "p99_ttft_ms": "DOUBLE",
               "p99_latency_ms": "DOUBLE", "goodput": "DOUBLE", "mean_quality": "DOUBLE",
               "sd_quality": "DOUBLE", "p50_ttft_ms": "DOUBLE", "p50_latency_ms": "DOUBLE",
               "timeouts": "BIGINT", "errors": "BIGINT", "failed_while_starting": "BIGINT"},
              "scope", suites.slo_rules),
    CheckSpec("measurement", "measurement",
              {"item": "VARCHAR", "missing_share": "DOUBLE", "lag_p99_ms": "DOUBLE",
               "gap_share": "DOUBLE", "identified_share": "DOUBLE", "detail": "VARCHAR",
               "foreign_cpu_share": "DOUBLE"},
              "'item'", suites.measurement_rules),
    CheckSpec("history", "night",
              {"metric": "VARCHAR", "worse_when": "VARCHAR", "observed": "DOUBLE",
               "baseline_nights": "BIGINT", "baseline_median": "DOUBLE",
               "baseline_worst": "DOUBLE", "margin": "DOUBLE", "excess": "DOUBLE",
               "required_n": "BIGINT", "insufficient_reason": "VARCHAR"},
              "regexp_extract(bucket, '^[a-z_]+')", suites.history_rules, reads_other_checks=True),
)

_REGISTERED: dict[str, CheckSpec] = {spec.name: spec for spec in SHIPPED}


def specs() -> list[CheckSpec]:
    """Every registered check, in the order they run: a check that reads the others'
    rows runs after them."""
    return sorted(_REGISTERED.values(), key=lambda s: s.reads_other_checks)


def spec(name: str) -> CheckSpec:
    return _REGISTERED[name]


def names() -> list[str]:
    return [s.name for s in specs()]


def role(name: str) -> Role:
    return _REGISTERED[name].role


def register(new: CheckSpec) -> None:
    """Add a check (its table columns and view appear at the next :func:`sync_schema`)."""
    if new.name in _REGISTERED:
        raise ValueError(f"a check named {new.name!r} is already registered")
    _REGISTERED[new.name] = new


def unregister(name: str) -> None:
    if any(s.name == name for s in SHIPPED):
        raise ValueError(f"{name!r} is a shipped check")
    del _REGISTERED[name]


@contextmanager
def registered(new: CheckSpec) -> Iterator[CheckSpec]:
    """The check registered for the duration of a ``with`` block."""
    register(new)
    try:
        yield new
    finally:
        unregister(new.name)


def table_columns() -> dict[str, str]:
    """check_buckets' columns for the registered checks: the key, then each check's."""
    found = dict(KEY_COLUMNS)
    for s in specs():
        for name, kind in s.columns.items():
            if found.setdefault(name, kind) != kind:
                raise ValueError(f"check {s.name!r} declares {name} {kind}, another "
                                 f"check {found[name]}: one column, one type")
    return found


def sync_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Give check_buckets every registered check's columns and each check its view.
    Writes nothing when the warehouse already has them (the shipped checks'
    columns and views come with migration 014)."""
    present = {row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() "
        "WHERE table_name = 'check_buckets' AND schema_name = 'main' "
        "AND database_name = current_database()").fetchall()}
    for name, kind in table_columns().items():
        if name not in present:
            # identifier and type from a registered spec, never from input
            con.execute(f'ALTER TABLE check_buckets ADD COLUMN "{name}" {kind}')
    shown: dict[str, list[str]] = {}
    for view, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE table_name LIKE 'check\\_%' ESCAPE '\\' AND schema_name = 'main' "
            "AND database_name = current_database() ORDER BY table_name, column_index"
    ).fetchall():
        shown.setdefault(view, []).append(column)
    for s in specs():
        if shown.get(f"check_{s.name}") != s.view_columns():
            con.execute(s.view_sql())


def sections() -> dict[str, type[BaseModel]]:
    """Thresholds sections of registered checks that the Thresholds model lacks."""
    return {s.name: s.settings for s in specs() if s.settings is not None}


def docs_table(thresholds: Thresholds | None = None) -> str:
    """The table of docs/checks.md, "The checks, one spec each", from the specs and the
    shipped thresholds (``python -m checks.registry`` prints it)."""
    limits = thresholds or load_thresholds(None)
    lines = ["| check | role | buckets (`dimension`) | judged: metric, bound, thresholds key | "
             "SQL |", "| --- | --- | --- | --- | --- |"]
    for s in specs():
        judged = "; ".join(f"`{r.name}` {_bound(r)}" for r in s.rules(limits))
        sql = ", ".join(f"`{name}.sql`" for name in (*s.assignments, s.name))
        lines.append(f"| `{s.name}` | {s.role} | `{s.dimension}` | {judged} | {sql} |")
    return "\n".join(lines)


def _bound(rule: Rule) -> str:
    if rule.kind == "max":
        # history's bound is 0: its margins are inside the metric (history.sql)
        return f"≤ 0 (`{rule.key}` inside it)" if "*" in rule.key else f"≤ `{rule.key}`"
    return f"≥ −`{rule.key}`" if rule.min_value == -rule.allowed != 0 else f"≥ `{rule.key}`"


if __name__ == "__main__":
    print(docs_table())
