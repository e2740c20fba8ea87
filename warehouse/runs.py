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
from urllib.parse import urlsplit, urlunsplit

import duckdb
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field

from warehouse.errors import LoadError
from warehouse.schema import opened, run_tables, transaction

# A key is cut into lower-case words (``hfToken``, ``HF_TOKEN``, ``x-api-key``) and
# named a secret by whole words only, so ``max_tokens``, ``tokenizer`` and
# ``stop_token_ids`` stay (their changes must reach ``config_hash``) while ``hf_token``,
# ``api_key`` and ``webhook_url`` go.
_SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "secret", "secrets", "credential",
    "credentials", "authorization", "auth", "cookie", "cookies", "apikey", "webhook", "dsn",
})
_SECRET_PAIRS = frozenset({
    ("api", "key"), ("private", "key"), ("access", "key"), ("signing", "key"),
    ("webhook", "url"),
})
# what follows a secret word when the key only points at a secret or is not one
# (``api_key_env`` names a variable, ``eos_token_id`` is a vocabulary id)
_REFERENCE_WORDS = frozenset({"env", "var", "name", "file", "path", "id", "ids"})
# query parameters that carry a credential though their name is not a secret word
_SECRET_QUERY = frozenset({"sig", "signature", "key", "code"})
_ENV_KEYS = frozenset({"env_vars", "env", "environment"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s'\"<>]*)")
REDACTED = "<redacted>"


def _is_secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(key)]
    for i, word in enumerate(words):
        pair = tuple(words[i:i + 2])
        if word in _SECRET_WORDS or word == "token" or pair in _SECRET_PAIRS:
            after = words[i + (2 if pair in _SECRET_PAIRS else 1):]
            if not after or after[0] not in _REFERENCE_WORDS:
                return True
    return False


def _redact_url(match: re.Match[str]) -> str:
    """A URL without its ``user:password@`` and with secret query values replaced."""
    try:
        parts = urlsplit(match.group(0))
    except ValueError:  # not a URL after all (an unbalanced '[' in the host)
        return f"{match.group(1)}{REDACTED}"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, equals, _ = pair.partition("=")
        secret = equals and (_is_secret_key(name) or name.lower() in _SECRET_QUERY)
        pairs.append(f"{name}={REDACTED}" if secret else pair)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))


def redact(value: Any) -> Any:
    """Secrets out, shape kept, recursively: a secret key's value becomes ``<redacted>``
    (adding or removing one still changes the config hash; its value never does), URL
    credentials (``user:password@``, token query values) become ``<redacted>``, and
    environment-variable maps are dropped whole."""
    if isinstance(value, dict):
        clean = {}
        for k, v in value.items():
            if isinstance(k, str) and k in _ENV_KEYS:
                continue
            secret = isinstance(k, str) and _is_secret_key(k) and v is not None
            clean[k] = REDACTED if secret else redact(v)
        return clean
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _URL.sub(_redact_url, value)
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
    status: str = Field(
        default="loaded",
        description="'loaded' until the gate judges the run ('judged', with runs.verdict): "
                    "a run that stopped in between is never read as finished.")
    message: str | None = None
    plan: dict[str, Any] | None = Field(
        default=None, description="Planned requests per mode, golden rounds, replicas known "
                                  "(the measurement check compares them with the spans).")
    baseline_key: str | None = Field(
        default=None, description="Nights with the same key are compared (check history).")

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
                                  cluster, status, message, plan, baseline_key)
                VALUES ($run_id, $started_at, $finished_at, $config_hash, $config,
                        $cluster, $status, $message, $plan, $baseline_key)
                """,
                {"run_id": run.run_id, "started_at": run.started_at,
                 "finished_at": run.finished_at, "config_hash": config_hash,
                 "config": config_text, "cluster": json.dumps(redact(run.cluster)),
                 "status": run.status, "message": run.message,
                 "plan": None if run.plan is None else json.dumps(run.plan),
                 "baseline_key": run.baseline_key},
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
