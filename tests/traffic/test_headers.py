"""The ``x-*`` headers: spelled once (traffic.headers), written by serving, read by replay."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from serving.telemetry import (
    ArrivalTelemetry,
    EngineSnapshot,
    arrival_headers,
    completion_fields,
)
from traffic import headers
from traffic.answer import Answer, apply_headers
from traffic.spans import Span

ROOT = Path(__file__).resolve().parents[2]
NAMES = [getattr(headers, name) for name in headers.__all__ if name.startswith("HEADER_")]


def _span() -> Span:
    return Span(span_id="s", request_id="r", mode="replay", tenant_id="acme",
                endpoint="/v1/chat/completions", intended_at=0.0, sent_at=0.0,
                schedule_lag_ms=0.0, latency_ms=1.0, status="ok", request_body="{}")


def _served() -> dict[str, str]:
    arrival = ArrivalTelemetry(replica_id="rep-1", queue_depth=3, config_version="v7",
                               engine=EngineSnapshot(running=2, waiting=1, kv_cache_usage=0.25))
    return {**arrival_headers(arrival),
            **completion_fields(kv_peak=0.5, prompt_tokens=40, cached_tokens=16)}


def test_every_telemetry_header_the_replica_sends_lands_in_a_span_column():
    served = _served()
    assert set(served) == set(headers.TELEMETRY_HEADERS)
    span = _span()
    apply_headers(span, served)
    assert (span.replica_id, span.replica_queue_depth, span.engine_running,
            span.engine_waiting, span.kv_cache_usage, span.kv_cache_usage_peak,
            span.prompt_tokens, span.cached_tokens, span.config_version) == (
        "rep-1", 3, 2, 1, 0.25, 0.5, 40, 16, "v7")


def test_each_telemetry_header_fills_its_own_column():
    filled = {}
    for name, value in _served().items():
        span, blank = _span(), _span()
        apply_headers(span, {name: value})
        changed = [f.name for f in dataclasses.fields(Span)
                   if getattr(span, f.name) != getattr(blank, f.name)]
        assert len(changed) == 1, (name, changed)
        filled[name] = changed[0]
    assert len(set(filled.values())) == len(headers.TELEMETRY_HEADERS)


def test_the_final_chunk_repeats_the_end_of_request_headers_under_cluster_eval():
    answer, span = Answer(), _span()
    answer.chunk({"object": "chat.completion.chunk", "choices": [],
                  "cluster_eval": completion_fields(kv_peak=0.75, prompt_tokens=9,
                                                    cached_tokens=0)}, 1.0)
    answer.fill(span)
    assert (span.kv_cache_usage_peak, span.prompt_tokens, span.cached_tokens) == (0.75, 9, 0)


def test_header_names_are_spelled_only_in_traffic_headers():
    """Code uses the constants; the docs table and the tests may spell the names."""
    spelled = re.compile("|".join(re.escape(f'"{name}"') for name in NAMES))
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("cluster_eval", "serving", "traffic", "checks", "warehouse", "flows",
                        "scenarios")
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "traffic" / "headers.py" and spelled.search(path.read_text())
    ]
    assert offenders == []


def test_the_architecture_doc_lists_every_header():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert [name for name in NAMES if not re.search(f"`{re.escape(name)}[`:]", doc)] == []
