"""The accepted baseline a night is judged against, and the team's say over it.

The baseline of a run is the last ``history.nights`` nights before it that share its
baseline key and passed (``checks/sql/_baseline_runs.sql``). A key names one
deployment under one workload: nights with different traffic are not comparable.
While fewer nights exist the baseline is *establishing*: the history check is not
judged, and the verdict says so. After an intended change (a new model) a team
accepts a night as the new normal, or resets the baseline; each event is a row of
``baseline_events`` with its time and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from checks.compute import sql
from checks.errors import RunNotFound

__all__ = ["BaselineStatus", "accept", "baseline_status", "current_baseline", "events", "keys",
           "reset"]


@dataclass(frozen=True)
class BaselineStatus:
    key: str | None
    nights: tuple[str, ...]   # the baseline's run ids, newest first
    required: int

    @property
    def establishing(self) -> bool:
        return len(self.nights) < self.required

    @property
    def active(self) -> tuple[str, ...]:
        """The nights the history check compares with: none while establishing."""
        return () if self.establishing else self.nights

    def describe(self) -> str:
        if self.key is None:
            return "baseline: none (the run has no baseline key)"
        if self.establishing:
            return f"baseline: establishing ({len(self.nights)} of {self.required})"
        return f"baseline: {len(self.nights)} accepted nights of '{self.key}'"


def baseline_status(con: duckdb.DuckDBPyConnection, run_id: str, nights: int
                    ) -> BaselineStatus:
    rows = con.execute("SELECT baseline_key FROM runs WHERE run_id = $run_id",
                       {"run_id": run_id}).fetchall()
    key = rows[0][0] if rows else None
    if key is None:
        return BaselineStatus(None, (), nights)
    return _status(con, key, run_id, nights)


def current_baseline(con: duckdb.DuckDBPyConnection, key: str, nights: int) -> BaselineStatus:
    """The baseline the next night of ``key`` would be judged against."""
    return _status(con, key, None, nights)


def _status(con: duckdb.DuckDBPyConnection, key: str, run_id: str | None, nights: int
            ) -> BaselineStatus:
    found = con.execute(sql("_baseline_runs"),
                        {"run_id": run_id, "now": datetime.now(UTC), "baseline_key": key,
                         "nights": nights}).fetchall()
    return BaselineStatus(key, tuple(r[0] for r in found), nights)


def keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every baseline key with nights or events in the warehouse."""
    return [r[0] for r in con.execute(
        "SELECT baseline_key FROM runs WHERE baseline_key IS NOT NULL "
        "UNION SELECT baseline_key FROM baseline_events ORDER BY 1").fetchall()]


def accept(con: duckdb.DuckDBPyConnection, run_id: str, reason: str) -> str:
    """Accept ``run_id`` as the new normal of its key: the baseline restarts from it."""
    rows = con.execute("SELECT baseline_key FROM runs WHERE run_id = $run_id",
                       {"run_id": run_id}).fetchall()
    if not rows:
        raise RunNotFound(f"run {run_id!r} is not in the warehouse")
    if rows[0][0] is None:
        raise RunNotFound(f"run {run_id!r} has no baseline key: nothing to accept it into")
    key = rows[0][0]
    _record(con, key, "accept", run_id, reason)
    return str(key)


def reset(con: duckdb.DuckDBPyConnection, key: str, reason: str) -> None:
    """Start the key's baseline over: only nights after now will form it."""
    _record(con, key, "reset", None, reason)


def events(
    con: duckdb.DuckDBPyConnection, key: str | None = None
) -> list[tuple[str, str, str | None, datetime, str]]:
    """``(baseline_key, action, run_id, happened_at, reason)``, newest first."""
    return con.execute(
        "SELECT baseline_key, action, run_id, happened_at, reason FROM baseline_events "
        "WHERE $key IS NULL OR baseline_key = $key ORDER BY happened_at DESC",
        {"key": key}).fetchall()


def _record(con: duckdb.DuckDBPyConnection, key: str, action: str, run_id: str | None,
            reason: str) -> None:
    if not reason.strip():
        raise ValueError("a baseline change needs a reason")
    con.execute("INSERT INTO baseline_events "
                "VALUES ($key, $action, $run_id, $happened_at, $reason)",
                {"key": key, "action": action, "run_id": run_id,
                 "happened_at": datetime.now(UTC), "reason": reason})
