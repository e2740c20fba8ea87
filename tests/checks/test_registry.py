"""The check registry: each spec says what its query computes, and the warehouse
holds what the specs derive (checks/registry.py, migration 014)."""

from __future__ import annotations

import duckdb
import pytest

from checks import registry
from checks.compute import assign_buckets, check_params, prepare, run_facts
from checks.thresholds import load_thresholds
from tests.checks.test_verdict import night
from warehouse import connect
from warehouse.schema import migrate, migrations


def _types(con, table: str) -> dict[str, str]:
    return dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() "
                            "WHERE table_name = ? ORDER BY column_index", [table]).fetchall())


@pytest.mark.parametrize("spec", registry.SHIPPED, ids=lambda s: s.name)
def test_each_query_computes_exactly_the_columns_its_spec_declares(tmp_path, spec):
    db = night(tmp_path, "n1", 1).load()
    limits = load_thresholds(None)
    with connect(db) as con:
        prepare(con, "n1")
        facts = run_facts(con, "n1", limits)
        assign_buckets(con, "n1", limits, facts["max_replicas"])
        params = {k: v for k, v in check_params(spec.name, "n1", limits, facts).items()
                  if f"${k}" in spec.query()}
        con.execute(f"CREATE TEMP TABLE result AS SELECT * FROM ({spec.query()}) LIMIT 0",
                    params)
        computed = _types(con, "result")
    declared = {"run_id": "VARCHAR", "bucket": "VARCHAR", "n": "BIGINT",
                "insufficient": "BOOLEAN", **spec.columns}
    assert computed == declared


def test_a_new_warehouse_has_the_long_table_and_the_views_the_specs_derive(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        assert _types(con, "check_buckets") == registry.table_columns()
        for spec in registry.SHIPPED:
            assert list(_types(con, f"check_{spec.name}")) == spec.view_columns()


def test_a_warehouse_from_before_the_long_table_keeps_every_check_row(tmp_path):
    """Migration 014 moves the eight check tables' rows into check_buckets; each view
    then shows them as its table did."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                "name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    for version, name, sql in migrations():
        if version < 14:
            con.execute(sql)
            con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)",
                        [version, name])
    con.execute("INSERT INTO check_replica_skew (run_id, bucket, n, insufficient, "
                "mean_quality, delta_mean_upper, spread) VALUES "
                "('old', 'rep-a', 24, false, 0.31, -0.14, 0.15)")
    con.execute("INSERT INTO check_kv_cache_eviction (run_id, bucket, n, insufficient, "
                "dimension, evicted_share) VALUES ('old', 'evicted', 12, false, "
                "'prefix_reuse', 0.7)")
    con.execute("INSERT INTO check_slo (run_id, bucket, scope, n, insufficient, "
                "error_share, timeouts) VALUES ('old', 'tenant:acme', 'tenant', 30, false, "
                "0.6, 18)")
    con.execute("INSERT INTO check_history (run_id, bucket, metric, n, insufficient, "
                "excess) VALUES ('old', 'slo/run:p50_latency_ms', 'p50_latency_ms', 88, "
                "false, 0.2)")
    migrate(con)
    assert con.execute("SELECT \"check\", dimension, bucket FROM check_buckets "
                       "ORDER BY ALL").fetchall() == [
        ("history", "slo", "slo/run:p50_latency_ms"),
        ("kv_cache_eviction", "prefix_reuse", "evicted"),
        ("replica_skew", "replica", "rep-a"),
        ("slo", "tenant", "tenant:acme")]
    assert con.execute("SELECT bucket, mean_quality, delta_mean_upper, spread "
                       "FROM check_replica_skew").fetchall() == [("rep-a", 0.31, -0.14, 0.15)]
    assert con.execute("SELECT dimension, evicted_share FROM check_kv_cache_eviction"
                       ).fetchall() == [("prefix_reuse", 0.7)]
    assert con.execute("SELECT scope, error_share, timeouts FROM check_slo").fetchall() \
        == [("tenant", 0.6, 18)]
    assert con.execute("SELECT metric, excess FROM check_history").fetchall() \
        == [("p50_latency_ms", 0.2)]
    # the trend view written against the old tables reads the new views
    assert con.execute("SELECT count(*) FROM v_check_trend").fetchall() == [(0,)]  # no runs row
    con.close()


def test_two_checks_cannot_give_one_column_two_types(tmp_path):
    clash = registry.CheckSpec("clash", "bucket", {"spread": "VARCHAR"}, "'x'", lambda t: [],
                               sql_dir=tmp_path)
    with registry.registered(clash), pytest.raises(ValueError, match="one column, one type"):
        registry.table_columns()


def test_a_shipped_check_cannot_be_registered_twice_or_removed():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.SHIPPED[0])
    with pytest.raises(ValueError, match="shipped"):
        registry.unregister("slo")
