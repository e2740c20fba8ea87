"""Opening the warehouse file and bringing its schema up to date.

Migrations are the ordered ``warehouse/migrations/NNN_name.sql`` files; the
``schema_version`` table records which ran. Each runs in its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from warehouse.errors import MigrationError, WarehouseError, WarehouseLocked

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, sql)`` of every migration, in order."""
    folder = resources.files("warehouse") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(found)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations; return the schema version reached."""
    con.execute(_VERSION_TABLE)
    # fetchall: DuckDB 2 keeps a half-read result open and refuses the next statement
    ((reached,),) = con.execute(
        "SELECT coalesce(max(version), 0) FROM schema_version").fetchall()
    current = int(reached)
    for version, name, sql in migrations():
        if version <= current:
            continue
        try:
            with transaction(con):
                con.execute(sql)
                con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)",
                            [version, name])
        except duckdb.Error as exc:
            raise MigrationError(f"migration {name} failed: {exc}") from exc
        current = version
    return current


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Commit on success, roll back on any exception (then re-raise it)."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


def connect(db_path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (migrated unless read-only); raise WarehouseLocked when held.
    DuckDB keeps to ``CLUSTER_EVAL_WAREHOUSE_MEMORY_LIMIT`` (default 2.5GB), spilling
    to ``<file>.tmp`` beyond it."""
    path = Path(db_path)
    if read_only and not path.exists():
        raise WarehouseError(f"no warehouse at {path}")
    from cluster_eval.settings import get_settings

    try:
        con = duckdb.connect(str(path), read_only=read_only,
                             config={"memory_limit": get_settings().warehouse_memory_limit})
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseLocked.from_duckdb(path, exc) from exc
        raise
    if not read_only:
        migrate(con)
    return con


@contextmanager
def opened(db_path: str | Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(db_path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def run_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every base table holding per-run rows (those with a run_id column), runs last."""
    names = [row[0] for row in con.execute(
        """
        SELECT c.table_name
        FROM duckdb_columns() AS c
        JOIN duckdb_tables() AS t USING (database_name, schema_name, table_name)
        WHERE c.column_name = 'run_id' AND c.schema_name = 'main' AND NOT t.temporary
          AND t.database_name = current_database()
        ORDER BY c.table_name
        """
    ).fetchall()]
    return sorted(names, key=lambda n: n == "runs")
