"""A record class is its own file schema: the Arrow schema of a dataclass, derived.

``Span`` and ``TelemetrySample`` are written to Parquet and loaded into DuckDB tables of
the same columns. Their Arrow schemas are derived from the dataclass so there is one
list of columns to change: field order is column order, a field without a default is a
required (non-null) column, and the annotation gives the type (``str`` → string,
``float`` → double, ``int`` → int64). A field whose file type differs from its Python
type (epoch seconds written as a timestamp, an HTTP status as int32) says so with
``column(arrow_type)``. ``tests/warehouse/test_record_contracts.py`` holds the DuckDB
tables and the docs' tables to the same schemas.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pyarrow as pa

__all__ = ["TIMESTAMP", "arrow_schema", "column"]

TIMESTAMP = pa.timestamp("us", tz="UTC")
"""Epoch seconds in memory (building datetimes on the hot path costs more than a
send); ``timestamp[us, UTC]`` on disk."""

_ARROW_TYPE = "arrow_type"
_BY_PYTHON_TYPE: dict[type, pa.DataType] = {
    str: pa.string(), float: pa.float64(), int: pa.int64(),
}


def column(arrow_type: pa.DataType, **field_options: Any) -> Any:
    """A dataclass field stored as ``arrow_type`` rather than its annotation's default."""
    return dataclasses.field(metadata={_ARROW_TYPE: arrow_type}, **field_options)


def _python_type(annotation: Any) -> type:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return typing.cast(type, inner)
    return typing.cast(type, annotation)


def arrow_schema(record: type) -> pa.Schema:
    """The Parquet schema of the dataclass ``record``: one column per field, in order."""
    hints = typing.get_type_hints(record)
    fields = []
    for field in dataclasses.fields(record):
        arrow_type = (field.metadata.get(_ARROW_TYPE)
                      or _BY_PYTHON_TYPE[_python_type(hints[field.name])])
        required = (field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING)
        fields.append(pa.field(field.name, arrow_type, nullable=not required))
    return pa.schema(fields)
