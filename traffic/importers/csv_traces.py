"""Read the CSV traces that record sizes and times but no text: Azure and BurstGPT.

* Azure LLM inference traces (2023 and 2024, any of their CSVs):
  ``TIMESTAMP,ContextTokens,GeneratedTokens``, timestamps like
  ``2023-11-16 18:17:03.9799600`` (naive, read as UTC).
* BurstGPT: ``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type``,
  ``Timestamp`` in seconds from the start of the trace.

Each row is one request and its own session. The file is read line by line as bytes,
decoded strictly, so a bad row (a bad byte, a bad number, a missing cell) becomes a
:class:`~traffic.loader.BadLine` naming its line and column and the rest is kept. A
header without a needed column makes the whole file unusable.
"""

from __future__ import annotations

import codecs
import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from traffic.errors import TrafficFormatError
from traffic.importers.options import TraceRequest
from traffic.loader import BadLine

__all__ = ["AZURE", "BURSTGPT", "CsvTrace", "read_csv_trace"]

_T = TypeVar("_T")
_RAW_LIMIT = 4000  # as the loader: enough of a bad line to see it


class _BadCell(ValueError):
    pass


def _timestamp(cell: str) -> float:
    try:
        stamp = datetime.fromisoformat(cell.strip())
    except ValueError:
        raise _BadCell(f"not a timestamp: {cell!r}") from None
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
    return stamp.timestamp()


def _seconds(cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise _BadCell(f"not a number of seconds: {cell!r}") from None
    if not math.isfinite(value) or value < 0:
        raise _BadCell(f"not a time offset: {cell!r}")
    return value


def _count(cell: str) -> int:
    try:
        value = float(cell)
    except ValueError:
        raise _BadCell(f"not a token count: {cell!r}") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise _BadCell(f"not a token count: {cell!r}")
    return int(value)


@dataclass(frozen=True)
class CsvTrace:
    """Which columns of a CSV trace hold the time and the sizes, and how time is read."""

    time: str
    context: str
    generated: str
    parse_time: Callable[[str], float]
    absolute: bool  # the time column holds timestamps, not offsets


AZURE = CsvTrace("TIMESTAMP", "ContextTokens", "GeneratedTokens", _timestamp, absolute=True)
BURSTGPT = CsvTrace("Timestamp", "Request tokens", "Response tokens", _seconds, absolute=False)


def read_csv_trace(
    path: Path,
    trace: CsvTrace,
    *,
    tenant: str,
    tenant_column: str | None,
) -> Iterator[TraceRequest | BadLine]:
    """Every row of ``path`` as a :class:`TraceRequest`, or a :class:`BadLine` saying why not."""
    name = str(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise TrafficFormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    with handle:
        header: list[str] | None = None
        for number, data in enumerate(handle, start=1):
            if number == 1 and data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
            if not data.strip():
                continue
            text, undecodable = _decode(data)
            cells = next(csv.reader([text]))
            if header is None:
                if undecodable:
                    raise TrafficFormatError(f"header is {undecodable}", file=path, line=number)
                header = [cell.strip() for cell in cells]
                _require_columns(path, number, header, trace, tenant_column)
                continue
            yield _row(name, number, header, cells, text, undecodable, trace, tenant, tenant_column)
    if header is None:
        raise TrafficFormatError("is empty: no header row", file=path)


def _decode(data: bytes) -> tuple[str, str | None]:
    line = data.rstrip(b"\r\n")
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        # keep the bad bytes as lone surrogates, to name the column they are in
        return (
            line.decode("utf-8", "surrogateescape"),
            f"not UTF-8: byte 0x{line[exc.start]:02x} at byte {exc.start + 1}",
        )


def _require_columns(
    path: Path, number: int, header: list[str], trace: CsvTrace, tenant_column: str | None
) -> None:
    needed = [trace.time, trace.context, trace.generated]
    if tenant_column is not None:
        needed.append(tenant_column)
    for column in needed:
        if column not in header:
            raise TrafficFormatError(
                f"the header has no column {column!r} (it has {', '.join(header)})",
                file=path,
                line=number,
                field=column,
            )


def _row(
    name: str,
    number: int,
    header: list[str],
    cells: list[str],
    text: str,
    undecodable: str | None,
    trace: CsvTrace,
    tenant: str,
    tenant_column: str | None,
) -> TraceRequest | BadLine:
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    raw = raw[:_RAW_LIMIT]
    if undecodable:
        column = next(
            (col for col, cell in zip(header, cells, strict=False) if _has_surrogate(cell)), None
        )
        return BadLine(name, number, column, undecodable, raw)
    if len(cells) != len(header):
        if len(cells) < len(header):
            missing = header[len(cells)]
            reason = f"missing: the row has {len(cells)} of {len(header)} columns"
            return BadLine(name, number, missing, reason, raw)
        return BadLine(name, number, None, f"{len(cells)} cells for {len(header)} columns", raw)
    row = dict(zip(header, cells, strict=True))
    try:
        time = _cell(row, trace.time, trace.parse_time)
        context = _cell(row, trace.context, _count)
        generated = _cell(row, trace.generated, _count)
    except _ColumnError as exc:
        return BadLine(name, number, exc.column, exc.reason, raw)
    if tenant_column is not None:
        tenant = row[tenant_column].strip()
        if not tenant:
            reason = "empty: the tenant column needs a value"
            return BadLine(name, number, tenant_column, reason, raw)
    return TraceRequest(
        session_id=f"line-{number}",
        turn=1,
        line=number,
        tenant_id=tenant,
        time=time,
        context_tokens=context,
        generated_tokens=generated,
    )


class _ColumnError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _cell(row: dict[str, str], column: str, parse: Callable[[str], _T]) -> _T:
    try:
        return parse(row[column].strip())
    except _BadCell as exc:
        raise _ColumnError(column, str(exc)) from None


def _has_surrogate(cell: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in cell)
