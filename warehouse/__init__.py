"""The DuckDB warehouse: schema and migrations, run loading, trend views."""

from warehouse.errors import LoadError, MigrationError, WarehouseError, WarehouseLocked
from warehouse.runs import RunInfo, delete_run, load_run, redact, write_scores
from warehouse.schema import connect, migrate, migrations, opened, transaction

__all__ = [
    "LoadError",
    "MigrationError",
    "RunInfo",
    "WarehouseError",
    "WarehouseLocked",
    "connect",
    "delete_run",
    "load_run",
    "migrate",
    "migrations",
    "opened",
    "redact",
    "transaction",
    "write_scores",
]
