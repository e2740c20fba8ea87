"""Loading a run: its ledger row, spans and telemetry, in one transaction.

Re-loading a run id replaces it: the old rows of every per-run table (scores, check
results and gate results too, since they derive from the spans) are deleted and the
new ones inserted in the same transaction, so readers see the old run or the new
one, never a mix, and a failure anywhere leaves the warehouse as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field

from warehouse.errors import LoadError
from warehouse.schema import opened, run_tables, transaction

# Keys whose values are secrets, and the places Ray/Serve configs keep environment.
_SECRET_KEY = re.compile(
    r"api[_-]?key|token|secret|passw(or)?d|credential|^auth$|authorization", re.IGNORECASE
)
_ENV_KEYS = frozenset({"env_vars", "env", "environment"})


def redact(value: Any) -> Any:
    """Drop secret-looking keys and environment-variable maps, recursively."""
    if isinstance(value, dict):
        return {
            k: redact(v) for k, v in value.items()
            if not (isinstance(k, str) and (_SECRET_KEY.search(k) or k in _ENV_KEYS))
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class RunInfo(BaseModel):
    """One run's ledger row as the flow knows it."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1)
    started_at: datetime
    finished_at: datetime | None = None
    config: dict[str, Any] | str | None = Field(
        default=None, description="The applied ServeConfig (mapping or YAML/JSON text)."
    )
    cluster: dict[str, Any] = Field(
        default_factory=dict, description="Cluster shape: replicas, autoscaling bounds, nodes."
    )
    status: str = "finished"
    message: str | None = None

    def redacted_config(self) -> tuple[str | None, str | None]:
        """``(config YAML, sha256)`` with secrets and env vars removed before either."""
        if self.config is None:
            return None, None
        parsed = yaml.safe_load(self.config) if isinstance(self.config, str) else self.config
        clean = redact(parsed)
        canonical = json.dumps(clean, sort_keys=True, default=str)
        text = yaml.safe_dump(clean, sort_keys=False)
        return text, hashlib.sha256(canonical.encode()).hexdigest()


def delete_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Delete a run's rows from every per-run table (call inside a transaction)."""
    for table in run_tables(con):
        # table names come from the catalog, never from input; quoted as identifiers
        con.execute(f'DELETE FROM "{table}" WHERE run_id = $run_id', {"run_id": run_id})


# BY NAME: a parquet missing an optional column loads it as null; an unknown column
# fails the load (the contract changed without a migration). run_id comes from RunInfo.
_INSERT_SPANS = """
INSERT INTO spans BY NAME
SELECT COLUMNS(lambda c: c <> 'run_id'), $run_id AS run_id FROM read_parquet($path)
"""
_INSERT_TELEMETRY = """
INSERT INTO telemetry BY NAME
SELECT COLUMNS(lambda c: c <> 'run_id'), $run_id AS run_id FROM read_parquet($path)
"""


def load_run(
    db_path: str | Path, run: RunInfo, spans_parquet: str | Path, telemetry_parquet: str | Path
) -> None:
    """Write a run's ledger row, spans and telemetry, replacing any earlier copy."""
    config_text, config_hash = run.redacted_config()
    try:
        with opened(db_path) as con, transaction(con):
            delete_run(con, run.run_id)
            con.execute(
                """
                INSERT INTO runs (run_id, started_at, finished_at, config_hash, config,
                                  cluster, status, message)
                VALUES ($run_id, $started_at, $finished_at, $config_hash, $config,
                        $cluster, $status, $message)
                """,
                {"run_id": run.run_id, "started_at": run.started_at,
                 "finished_at": run.finished_at, "config_hash": config_hash,
                 "config": config_text, "cluster": json.dumps(redact(run.cluster)),
                 "status": run.status, "message": run.message},
            )
            con.execute(_INSERT_SPANS, {"run_id": run.run_id, "path": str(spans_parquet)})
            con.execute(_INSERT_TELEMETRY,
                        {"run_id": run.run_id, "path": str(telemetry_parquet)})
    except duckdb.Error as exc:  # WarehouseLocked is not one: it passes through as is
        raise LoadError(
            f"loading run {run.run_id!r} from {spans_parquet} and {telemetry_parquet} "
            f"failed, nothing was written: {exc}"
        ) from exc


def write_scores(con: duckdb.DuckDBPyConnection, run_id: str, scores: pl.DataFrame) -> None:
    """Replace a run's scores with ``scores`` (span_id, rubric, score), in one transaction."""
    with transaction(con):
        con.execute("DELETE FROM scores WHERE run_id = $run_id", {"run_id": run_id})
        con.register("new_scores", scores.select("span_id", "rubric", "score").to_arrow())
        con.execute(
            "INSERT INTO scores BY NAME SELECT $run_id AS run_id, * FROM new_scores",
            {"run_id": run_id},
        )
        con.unregister("new_scores")
