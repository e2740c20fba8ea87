"""Warehouse exceptions.

    WarehouseError
    ├── WarehouseLocked      another process holds the DuckDB file
    ├── LoadError            a run's files could not be loaded; nothing was written
    └── MigrationError       a migration file failed; the schema stays at the last good version
"""

from __future__ import annotations

import re
from pathlib import Path

_PID = re.compile(r"\(PID (\d+)\)")


class WarehouseError(Exception):
    """Base class of warehouse errors."""


class WarehouseLocked(WarehouseError):
    """The warehouse file is open for writing in another process (one writer at a time)."""

    def __init__(self, path: Path, pid: int | None, detail: str = ""):
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"warehouse {path} is locked by {holder}; DuckDB allows one writer at a time — "
            f"wait for it to finish or stop it. ({detail})"
        )

    @classmethod
    def from_duckdb(cls, path: Path, exc: Exception) -> WarehouseLocked:
        found = _PID.search(str(exc))
        return cls(path, int(found.group(1)) if found else None, str(exc))


class MigrationError(WarehouseError):
    """A schema migration failed and was rolled back."""


class LoadError(WarehouseError):
    """Loading a run failed (missing or malformed parquet, a column the schema lacks).

    The load's transaction was rolled back: the warehouse holds what it held before.
    """
