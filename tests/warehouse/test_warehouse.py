"""Loading runs: schema versioning, idempotent reload, atomicity, one writer, redaction."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from warehouse import (
    LoadError,
    RunInfo,
    WarehouseLocked,
    connect,
    load_run,
    migrations,
    write_scores,
)

RUN = RunInfo(
    run_id="night-1",
    started_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
    config={
        "applications": [{"name": "llm", "runtime_env": {"env_vars": {"HF_TOKEN": "hf_abc"}},
                          "deployments": [{"name": "LLM", "num_replicas": 2,
                                           "user_config": {"api_key": "sk-live-1",
                                                           "config_version": "v7"}}]}],
        "auth_token": "t0ps3cret",
    },
    cluster={"replicas": 2, "password": "hunter2"},
)


def count(db: Path, table: str) -> int:
    with connect(db, read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_schema_is_versioned(tmp_path):
    db = tmp_path / "w.duckdb"
    con = connect(db)
    versions = [v for v, _, _ in migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == versions[-1]
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"runs", "spans", "telemetry", "scores", "expectation_results", "scenario_results",
            "check_buckets"} <= tables
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert {"check_replica_skew", "check_autoscaling_lag", "check_kv_cache_eviction",
            "check_traffic_pattern_drift", "check_tenant_fairness", "check_slo",
            "check_measurement", "check_history"} <= views
    no_run_id = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name <> 'schema_version' "
        "AND table_name NOT IN (SELECT table_name FROM duckdb_columns() "
        "WHERE column_name = 'run_id')").fetchall()
    assert no_run_id == []
    con.close()
    connect(db).close()  # reopening applies nothing twice


def test_load_twice_keeps_one_copy(tmp_path, run_files):
    db = tmp_path / "w.duckdb"
    load_run(db, RUN, *run_files)
    load_run(db, RUN, *run_files)
    assert count(db, "runs") == 1
    assert count(db, "spans") == 10
    assert count(db, "telemetry") == 10


def test_reload_replaces_derived_rows(tmp_path, run_files):
    db = tmp_path / "w.duckdb"
    load_run(db, RUN, *run_files)
    with connect(db) as con:
        write_scores(con, RUN.run_id, pl.DataFrame(
            {"span_id": ["s0"], "rubric": ["completion"], "score": [1.0]}))
    load_run(db, RUN, *run_files)
    assert count(db, "scores") == 0


def test_crash_mid_load_leaves_no_partial_run(tmp_path, run_files):
    db = tmp_path / "w.duckdb"
    spans, _ = run_files
    # telemetry with a column the schema does not know: fails after runs and spans
    # were written inside the transaction
    broken = tmp_path / "broken.parquet"
    pl.DataFrame({"sampled_at": [RUN.started_at], "bogus": [1]}).write_parquet(broken)
    with pytest.raises(LoadError, match="nothing was written.*bogus"):
        load_run(db, RUN, spans, broken)
    assert (count(db, "runs"), count(db, "spans"), count(db, "telemetry")) == (0, 0, 0)
    with pytest.raises(LoadError, match="missing.parquet"):
        load_run(db, RUN, spans, tmp_path / "missing.parquet")

    # a failed reload of an existing run keeps the earlier copy whole
    load_run(db, RUN, *run_files)
    with pytest.raises(LoadError, match="bogus"):
        load_run(db, RUN, spans, broken)
    assert (count(db, "runs"), count(db, "spans"), count(db, "telemetry")) == (1, 10, 10)


def test_locked_file_gives_a_clear_error(tmp_path, run_files):
    db = tmp_path / "w.duckdb"
    connect(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLocked) as caught:
            load_run(db, RUN, *run_files)
        assert caught.value.pid == holder.pid
        assert str(db) in str(caught.value) and str(holder.pid) in str(caught.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    load_run(db, RUN, *run_files)  # released: loads fine
    assert count(db, "runs") == 1


def test_secrets_and_env_vars_never_reach_the_warehouse(tmp_path, run_files):
    db = tmp_path / "w.duckdb"
    load_run(db, RUN, *run_files)
    with connect(db, read_only=True) as con:
        config, cluster, config_hash = con.execute(
            "SELECT config, cluster, config_hash FROM runs").fetchone()
    for secret in ("hf_abc", "sk-live-1", "t0ps3cret", "hunter2", "HF_TOKEN", "env_vars"):
        assert secret not in config and secret not in cluster
    assert "config_version: v7" in config and "num_replicas: 2" in config
    assert len(config_hash) == 64
    assert db.read_bytes().find(b"sk-live-1") == -1


def test_missing_optional_span_columns_load_as_null(tmp_path, make_spans):
    db = tmp_path / "w.duckdb"
    spans, telemetry = tmp_path / "s.parquet", tmp_path / "t.parquet"
    make_spans(3).drop("cached_tokens").write_parquet(spans)
    pl.DataFrame({"sampled_at": [RUN.started_at], "replica_count": [1]}).write_parquet(telemetry)
    load_run(db, RUN, spans, telemetry)
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT count(cached_tokens), count(*) FROM spans").fetchone() == (0, 3)


def test_duckdb_keeps_to_the_memory_limit_of_the_settings(tmp_path, monkeypatch):
    """A night of 10 M spans peaked at 13 GiB without a limit; the limit makes DuckDB
    spill to disk instead (benchmarks/checks_speed.py)."""
    def limit() -> str:
        with connect(tmp_path / "w.duckdb") as con:
            return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    assert limit() == "2.3 GiB"  # the default 2.5GB, as DuckDB prints it
    monkeypatch.setenv("CLUSTER_EVAL_WAREHOUSE_MEMORY_LIMIT", "1GiB")
    assert limit() == "1.0 GiB"
