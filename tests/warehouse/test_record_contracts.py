"""A span and a telemetry sample are defined once, by their dataclasses.

``traffic.spans.Span`` and ``traffic.sampler.TelemetrySample`` give the Parquet schemas
(``traffic.columns.arrow_schema``). The warehouse tables the files are loaded into, and
the tables of docs/architecture.md that users read, must list the same columns in the
same order with the same types: a column added to one place and not the others fails
here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from traffic.columns import TIMESTAMP, arrow_schema, column
from traffic.sampler import TELEMETRY_SCHEMA, TelemetrySample
from traffic.spans import SPAN_SCHEMA, Span
from warehouse import connect

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

RECORDS = {
    "spans": (SPAN_SCHEMA, "### Span "),
    "telemetry": (TELEMETRY_SCHEMA, "### Telemetry sample "),
}

# How the architecture document spells an Arrow type in its type column.
DOC_TYPE_WORDS = {
    pa.string(): "string", pa.float64(): "double", pa.int64(): "int64",
    pa.int32(): "int32", TIMESTAMP: "timestamp[us, UTC]",
}


def duckdb_types(schema: pa.Schema, con) -> list[tuple[str, str]]:
    """(column, DuckDB type) of a Parquet file with ``schema`` as DuckDB reads it."""
    con.register("empty_file", schema.empty_table())
    described = con.execute("DESCRIBE empty_file").fetchall()
    con.unregister("empty_file")
    return [(name, kind) for name, kind, *_ in described]


def doc_table(heading: str) -> list[tuple[str, str]]:
    """(column, type cell) rows of the table under ``heading``; a row naming several
    columns (`a`, `b`) gives one entry per column."""
    text = ARCHITECTURE.read_text()
    section = text[text.index(heading):]
    section = section[:section.index("\n### ", 1)]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 2:
            continue
        for name in re.findall(r"`([a-z_]+)`", cells[0]):
            rows.append((name, cells[1]))
    return rows


def doc_type_word(cell: str) -> str:
    """The Arrow type a doc type cell names; an enumeration (`ok` / `timeout` …) is a
    string column."""
    if cell.startswith("`"):
        return "string"
    for word in sorted(DOC_TYPE_WORDS.values(), key=len, reverse=True):
        if cell.startswith(word):
            return word
    raise AssertionError(f"docs/architecture.md: type cell {cell!r} names no Arrow type")


@pytest.mark.parametrize("table", RECORDS)
def test_the_warehouse_table_is_the_file_schema_plus_its_run(tmp_path, table):
    schema, _ = RECORDS[table]
    with connect(tmp_path / "w.duckdb") as con:
        loaded = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        from_file = duckdb_types(schema, con)
    assert loaded[0] == ("run_id", "VARCHAR")
    assert loaded[1:] == from_file


@pytest.mark.parametrize("table", RECORDS)
def test_the_architecture_doc_lists_the_same_columns_and_types(table):
    schema, heading = RECORDS[table]
    documented = doc_table(heading)
    assert [name for name, _ in documented] == schema.names
    for (name, cell), field in zip(documented, schema, strict=True):
        assert doc_type_word(cell) == DOC_TYPE_WORDS[field.type], name


def test_a_field_is_a_column_in_order_required_unless_it_has_a_default():
    @dataclass(kw_only=True)
    class Record:
        at: float = column(TIMESTAMP)
        name: str
        count: int | None = None
        status: int | None = column(pa.int32(), default=None)
        share: float | None = None

    assert arrow_schema(Record).equals(pa.schema([
        pa.field("at", TIMESTAMP, nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("count", pa.int64()),
        pa.field("status", pa.int32()),
        pa.field("share", pa.float64()),
    ]))


def test_the_records_derive_their_schemas():
    assert SPAN_SCHEMA.names == [f for f in Span.__dataclass_fields__]
    assert TELEMETRY_SCHEMA.names == [f for f in TelemetrySample.__dataclass_fields__]
    assert SPAN_SCHEMA.field("intended_at").type == TIMESTAMP
    assert not SPAN_SCHEMA.field("request_body").nullable
    assert SPAN_SCHEMA.field("http_status").type == pa.int32()
