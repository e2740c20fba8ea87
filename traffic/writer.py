"""Write traffic records to JSONL or Parquet, chosen by the file's suffix.

Both forms carry the same fields (docs/traffic-format.md). Output is byte-for-byte
reproducible for the same records, so a workload built twice with one seed diffs clean.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO

from traffic.errors import TrafficFormatError
from traffic.format import FORMAT_VERSION, TrafficRecord, to_json_dict, to_parquet_row
from traffic.loader import PARQUET_VERSION_KEY

__all__ = ["SUFFIXES", "write_jsonl_lines", "write_parquet", "write_traffic"]

SUFFIXES = (".jsonl", ".parquet")


def write_traffic(records: Iterable[TrafficRecord], path: str | Path) -> Path:
    """Write ``records`` to ``path`` (``.jsonl`` or ``.parquet``), atomically.

    The file appears complete or not at all (written beside it, then renamed), so a
    reader never loads half a workload.
    """
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise TrafficFormatError(
            f"unknown traffic file suffix {path.suffix!r}; use .jsonl or .parquet", file=path
        )
    records = list(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        write_parquet(records, tmp)
    else:
        with tmp.open("w", encoding="utf-8") as handle:
            write_jsonl_lines(records, handle)
    os.replace(tmp, path)
    return path


def write_jsonl_lines(records: Iterable[TrafficRecord], handle: IO[str]) -> int:
    """Append one JSON line per record; returns the number of characters written.

    Line by line, so writing a large workload never holds all of its text at once.
    """
    written = 0
    for record in records:
        line = json.dumps(to_json_dict(record), ensure_ascii=False) + "\n"
        handle.write(line)
        written += len(line)
    return written


def write_parquet(records: list[TrafficRecord], path: Path) -> None:
    """One Parquet file; ``body``, ``expect`` and ``tags`` are JSON text columns."""
    import polars as pl

    kinds = {isinstance(r.arrival, datetime) for r in records}
    if len(kinds) > 1:
        raise TrafficFormatError(
            "records mix offsets and timestamps; Parquet needs one arrival type", file=path
        )
    arrival_type = pl.Datetime("us", "UTC") if kinds == {True} else pl.Float64
    schema = {
        "request_id": pl.String,
        "arrival": arrival_type,
        "tenant_id": pl.String,
        "endpoint": pl.String,
        "body": pl.String,
        "expect": pl.String,
        "tags": pl.String,
    }
    rows = [to_parquet_row(r) for r in records]
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    frame.write_parquet(path, metadata={PARQUET_VERSION_KEY: str(FORMAT_VERSION)})
