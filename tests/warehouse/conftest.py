"""Span and telemetry parquet files shaped like the contract (docs/architecture.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def spans_frame(n: int, prefix: str = "s") -> pl.DataFrame:
    return pl.DataFrame({
        "span_id": [f"{prefix}{i}" for i in range(n)],
        "request_id": [f"r{i}" for i in range(n)],
        "mode": ["replay"] * n,
        "tenant_id": ["acme"] * n,
        "endpoint": ["/v1/chat/completions"] * n,
        "intended_at": [T0 + timedelta(seconds=i) for i in range(n)],
        "sent_at": [T0 + timedelta(seconds=i, milliseconds=3) for i in range(n)],
        "latency_ms": [100.0 + i for i in range(n)],
        "status": ["ok"] * n,
        "finish_reason": ["stop"] * n,
        "output_text": ["hello"] * n,
        "prompt_tokens": [100] * n,
        "cached_tokens": [50] * n,
        "replica_id": ["rep-a"] * n,
        "request_body": ['{"messages": []}'] * n,
    })


def telemetry_frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "sampled_at": [T0 + timedelta(seconds=i) for i in range(n)],
        "replica_count": [2] * n,
        "queue_depth": [1.0] * n,
    })


@pytest.fixture
def run_files(tmp_path: Path) -> tuple[Path, Path]:
    spans, telemetry = tmp_path / "spans.parquet", tmp_path / "telemetry.parquet"
    spans_frame(10).write_parquet(spans)
    telemetry_frame(10).write_parquet(telemetry)
    return spans, telemetry


@pytest.fixture
def make_spans():
    return spans_frame
