"""The span: one row per request sent, exactly as ``docs/architecture.md`` defines it.

The dataclass is the one definition of ``spans.parquet``: :data:`SPAN_SCHEMA` is derived
from its fields (:mod:`traffic.columns`), and a test holds the warehouse's ``spans``
table and the architecture document's Span table to it. ``intended_at`` / ``sent_at``
are epoch seconds in memory and ``timestamp[us, UTC]`` on disk.

Two ways to disk. :func:`write_spans` writes ``spans.parquet``, the file everything
downstream reads. :class:`SpanLog` appends spans to a log file *while* the replay runs,
one frame per flush, so a replay that is killed keeps every span it had flushed:
:func:`read_span_log` reads the complete frames of a torn log into the same table.

No single value can cost the file: a column that Arrow refuses is converted again value
by value (:func:`as_int`, :func:`as_float`, :func:`as_text`; a lone surrogate in a
string becomes U+FFFD), so one bad value is one null, never a missing ``spans.parquet``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import operator
import pickle
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from traffic.columns import TIMESTAMP, arrow_schema, column

__all__ = [
    "MODES",
    "SPAN_SCHEMA",
    "STATUSES",
    "Span",
    "SpanLog",
    "as_float",
    "as_int",
    "as_text",
    "merge_spans",
    "read_span_log",
    "read_spans",
    "spans_table",
    "write_spans",
]

MODES = ("replay", "pinned", "tenant_burst", "baseline")
STATUSES = ("ok", "http_error", "timeout", "connection_error", "protocol_error")

_TS = TIMESTAMP


@dataclass(slots=True, kw_only=True)
class Span:
    """One request as it was sent and answered; its fields, in order, are the columns of
    ``spans.parquet`` (:data:`SPAN_SCHEMA`, derived: :mod:`traffic.columns`).

    Times are kept as epoch seconds (floats) while the replay runs, because building
    ``datetime`` objects on the hot path costs more than the whole send; the Parquet
    writer converts them to ``timestamp[us, UTC]`` in one vectorised step.
    """

    span_id: str
    request_id: str
    mode: str
    tenant_id: str
    endpoint: str
    intended_at: float = column(TIMESTAMP)
    sent_at: float = column(TIMESTAMP)
    schedule_lag_ms: float
    ttft_ms: float | None = None
    latency_ms: float
    status: str
    http_status: int | None = column(pa.int32(), default=None)
    error_class: str | None = None
    output_text: str | None = None
    tool_calls: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    replica_id: str | None = None
    pinned_replica: str | None = None
    replica_queue_depth: int | None = None
    engine_running: int | None = None
    engine_waiting: int | None = None
    kv_cache_usage: float | None = None
    kv_cache_usage_peak: float | None = None
    config_version: str | None = None
    request_body: str
    expect: str | None = None
    tags: str | None = None


SPAN_SCHEMA = arrow_schema(Span)

_FIELDS = [f.name for f in dataclasses.fields(Span)]
_ROW = operator.attrgetter(*_FIELDS)
_COLUMN = {name: i for i, name in enumerate(_FIELDS)}


# --- one value at a time, when Arrow refuses a column ----------------------------------

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def as_int(value: Any) -> int | None:
    """A count: an integer (or integral number, or decimal digits) within int64, else None.

    ``True`` is not 1 and ``"1.0"`` is not a count; a float counts only when it is whole.
    """
    if type(value) is not int:
        if type(value) is str:
            try:
                value = int(value)
            except ValueError:
                return None
        elif type(value) is float and value.is_integer():
            value = int(value)
        else:
            return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def as_float(value: Any) -> float | None:
    """A measurement: a JSON number or a header's decimal text, else None."""
    if type(value) is float:
        return value
    if type(value) in (int, str):
        try:
            return float(value)
        except (ValueError, OverflowError):
            return None
    return None


def as_text(value: Any) -> str | None:
    """A string as is; any other value as its JSON text (else ``str``); None stays None."""
    if value is None or type(value) is str:
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _utf8(value: Any) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): not UTF-8
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _coercer(kind: pa.DataType) -> Any:
    if pa.types.is_integer(kind):
        bits = kind.bit_width - 1
        low, high = -(2**bits), 2**bits - 1

        def to_int(value: Any) -> int | None:
            n = as_int(value)
            return n if n is not None and low <= n <= high else None

        return to_int
    if pa.types.is_floating(kind):
        return as_float
    return _utf8


def _array(values: list[Any] | tuple[Any, ...], field: pa.Field) -> pa.Array:
    if field.type == _TS:
        micros = pa.array([round(v * 1_000_000) for v in values], pa.int64())
        return micros.cast(_TS)
    try:
        return pa.array(values, field.type)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        coerce = _coercer(field.type)
        return pa.array([coerce(v) for v in values], field.type)


def spans_table(spans: Iterable[Span]) -> pa.Table:
    """Columnar copy of ``spans`` with exactly ``SPAN_SCHEMA``; a refused value → null."""
    return _table([_ROW(span) for span in spans], _COLUMN)


def _table(rows: Sequence[tuple[Any, ...]], index: dict[str, int]) -> pa.Table:
    """Rows (tuples, ``index`` maps a column to its position) → a ``SPAN_SCHEMA`` table."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(index)
    arrays = []
    for field in SPAN_SCHEMA:
        at = index.get(field.name)
        values = columns[at] if at is not None else [None] * len(rows)
        arrays.append(_array(values, field))
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)


def write_spans(spans: Iterable[Span] | pa.Table, path: Path) -> Path:
    """Write ``spans.parquet``; accepts spans or an already-built table (merged shards)."""
    table = spans if isinstance(spans, pa.Table) else spans_table(spans)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.cast(SPAN_SCHEMA), path)
    return path


def read_spans(path: Path) -> pa.Table:
    return pq.read_table(path, schema=SPAN_SCHEMA)


def merge_spans(parts: Sequence[Path], out: Path) -> pa.Table:
    """Span files into one ``spans.parquet`` at ``out``, ordered by intended send time
    then span id; returns the merged table.

    A part is a span log (``.log``, :class:`SpanLog`: the replay's workers) or a
    Parquet file (a phase's ``spans.parquet``: the night's baseline and replay). A
    missing part holds no spans, as a missing log does for :func:`read_span_log`.
    """
    tables = [
        read_span_log(part) if part.suffix == ".log" else read_spans(part)
        for part in parts
        if part.exists()
    ]
    table = pa.concat_tables(tables) if tables else SPAN_SCHEMA.empty_table()
    table = table.sort_by([("intended_at", "ascending"), ("span_id", "ascending")])
    write_spans(table, out)
    return table


# --- the log written while the replay runs ---------------------------------------------


_MAGIC = b"cluster-eval span log 1\n"
_FRAME = struct.Struct("<Q")


class _RowsOnly(pickle.Unpickler):
    """Rows are tuples of str, int, float, bool and None: a log can name no class."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a span log names {module}.{name}")


class SpanLog:
    """Spans appended to a log file as they finish: a replay that is killed keeps them.

    The file is a header (magic line, then the Span field names as JSON) and one frame
    per :meth:`write`: a little-endian u64 length, then a pickle of the batch's rows
    (one tuple of field values per span). A frame is written with one unbuffered
    ``write``, so it is in the operating system's hands when ``write`` returns; a
    process killed mid-frame leaves a torn tail that :func:`read_span_log` leaves out.

    Pickle because the log is written from the replay loop: rows of str, int and float
    cost about 1 µs a span to pickle, against ~10 for JSON lines and ~6 plus 0.4 ms a
    batch for Arrow IPC. The reader refuses any global, so a log cannot run code.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rows = 0
        self._file = open(path, "wb", buffering=0)
        header = json.dumps(_FIELDS).encode()
        self._file.write(_MAGIC + _FRAME.pack(len(header)) + header)

    def write(self, spans: Sequence[Span]) -> None:
        if spans:
            data = pickle.dumps([_ROW(span) for span in spans], pickle.HIGHEST_PROTOCOL)
            self._file.write(_FRAME.pack(len(data)) + data)
            self.rows += len(spans)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SpanLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_span_log(path: Path) -> pa.Table:
    """The spans of every complete frame of a span log, as a ``SPAN_SCHEMA`` table.

    A torn tail (a killed writer) is left out; a missing file, or one cut before its
    header, is an empty table.
    """
    data = path.read_bytes() if path.exists() else b""
    rows: list[tuple[Any, ...]] = []
    index = _COLUMN
    at = len(_MAGIC)
    if data.startswith(_MAGIC):
        at, header = _frame(data, at)
        index = {name: i for i, name in enumerate(json.loads(header))} if header else {}
        while header is not None:
            at, frame = _frame(data, at)
            if frame is None:
                break
            rows += _RowsOnly(io.BytesIO(frame)).load()
    return _table(rows, index)


def _frame(data: bytes, at: int) -> tuple[int, bytes | None]:
    """The frame at ``at`` and the offset after it; None when the data ends inside it."""
    end = at + _FRAME.size
    if end > len(data):
        return at, None
    (length,) = _FRAME.unpack_from(data, at)
    if end + length > len(data):
        return at, None
    return end + length, data[end : end + length]
