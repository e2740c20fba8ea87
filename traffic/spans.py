"""The span: one row per request sent, exactly as ``docs/architecture.md`` defines it.

The schema lives here, beside the dataclass, so the replay engine, the warehouse loader
and the tests share one definition of ``spans.parquet``. Column order and types follow
the architecture document's Span table; ``intended_at`` / ``sent_at`` are
``timestamp[us, UTC]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["MODES", "SPAN_SCHEMA", "STATUSES", "Span", "read_spans", "spans_table", "write_spans"]

MODES = ("replay", "pinned", "tenant_burst", "baseline")
STATUSES = ("ok", "http_error", "timeout", "connection_error", "protocol_error")

_TS = pa.timestamp("us", tz="UTC")

SPAN_SCHEMA = pa.schema(
    [
        pa.field("span_id", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("endpoint", pa.string(), nullable=False),
        pa.field("intended_at", _TS, nullable=False),
        pa.field("sent_at", _TS, nullable=False),
        pa.field("schedule_lag_ms", pa.float64(), nullable=False),
        pa.field("ttft_ms", pa.float64()),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("http_status", pa.int32()),
        pa.field("error_class", pa.string()),
        pa.field("output_text", pa.string()),
        pa.field("tool_calls", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("cached_tokens", pa.int64()),
        pa.field("replica_id", pa.string()),
        pa.field("pinned_replica", pa.string()),
        pa.field("replica_queue_depth", pa.int64()),
        pa.field("engine_running", pa.int64()),
        pa.field("engine_waiting", pa.int64()),
        pa.field("kv_cache_usage", pa.float64()),
        pa.field("kv_cache_usage_peak", pa.float64()),
        pa.field("config_version", pa.string()),
        pa.field("request_body", pa.string(), nullable=False),
        pa.field("expect", pa.string()),
        pa.field("tags", pa.string()),
    ]
)


@dataclass(slots=True)
class Span:
    """One request as it was sent and answered.

    Times are kept as epoch seconds (floats) while the replay runs, because building
    ``datetime`` objects on the hot path costs more than the whole send; the Parquet
    writer converts them to ``timestamp[us, UTC]`` in one vectorised step.
    """

    span_id: str
    request_id: str
    mode: str
    tenant_id: str
    endpoint: str
    intended_at: float
    sent_at: float
    schedule_lag_ms: float
    latency_ms: float
    status: str
    request_body: str
    ttft_ms: float | None = None
    http_status: int | None = None
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
    expect: str | None = None
    tags: str | None = None


_FIELDS = [f.name for f in dataclasses.fields(Span)]


def spans_table(spans: Iterable[Span]) -> pa.Table:
    """Columnar copy of ``spans`` with exactly ``SPAN_SCHEMA``."""
    columns: dict[str, list] = {name: [] for name in _FIELDS}
    for span in spans:
        for name in _FIELDS:
            columns[name].append(getattr(span, name))
    arrays = []
    for field in SPAN_SCHEMA:
        values = columns[field.name]
        if field.type == _TS:
            micros = pa.array([round(v * 1_000_000) for v in values], pa.int64())
            arrays.append(micros.cast(_TS))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)


def write_spans(spans: Iterable[Span] | pa.Table, path: Path) -> Path:
    """Write ``spans.parquet``; accepts spans or an already-built table (merged shards)."""
    table = spans if isinstance(spans, pa.Table) else spans_table(spans)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.cast(SPAN_SCHEMA), path)
    return path


def read_spans(path: Path) -> pa.Table:
    return pq.read_table(path, schema=SPAN_SCHEMA)
