"""Per-request telemetry a replica attaches to its responses as ``x-*`` headers.

The replay client cannot see inside the cluster; these headers are how each span
learns which replica served it and how loaded that replica and its engine were when
the request arrived. The engine side (``EngineState``) is fed by a vLLM stat logger in
the replica; everything here is plain Python so it is unit-tested without vLLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traffic.headers import (  # the names are shared with the replay, which reads them
    HEADER_CACHED_TOKENS,
    HEADER_CONFIG_VERSION,
    HEADER_ENGINE_RUNNING,
    HEADER_ENGINE_WAITING,
    HEADER_KV_USAGE,
    HEADER_KV_USAGE_PEAK,
    HEADER_PIN,
    HEADER_PROMPT_TOKENS,
    HEADER_QUEUE_DEPTH,
    HEADER_REPLICA_ID,
)

__all__ = [
    "HEADER_CACHED_TOKENS",
    "HEADER_CONFIG_VERSION",
    "HEADER_ENGINE_RUNNING",
    "HEADER_ENGINE_WAITING",
    "HEADER_KV_USAGE",
    "HEADER_KV_USAGE_PEAK",
    "HEADER_PIN",
    "HEADER_PROMPT_TOKENS",
    "HEADER_QUEUE_DEPTH",
    "HEADER_REPLICA_ID",
    "ArrivalTelemetry",
    "EngineSnapshot",
    "EngineState",
    "PeakWatch",
    "arrival_headers",
    "completion_fields",
    "usage_tokens",
]


@dataclass(frozen=True)
class EngineSnapshot:
    running: int
    waiting: int
    kv_cache_usage: float


class PeakWatch:
    """Highest KV-cache usage seen while one request was in flight."""

    __slots__ = ("peak",)

    def __init__(self, start: float) -> None:
        self.peak = start


class EngineState:
    """Latest scheduler stats of this replica's engine, and the open peak watches.

    ``update`` is called by the stat logger after every engine step that reports
    stats; ``snapshot`` is read at request arrival. Both run on the replica's event
    loop, so plain attributes suffice.
    """

    def __init__(self) -> None:
        self._snapshot = EngineSnapshot(running=0, waiting=0, kv_cache_usage=0.0)
        self._watches: set[PeakWatch] = set()

    def update(self, *, running: int, waiting: int, kv_cache_usage: float) -> None:
        self._snapshot = EngineSnapshot(running, waiting, kv_cache_usage)
        for watch in self._watches:
            if kv_cache_usage > watch.peak:
                watch.peak = kv_cache_usage

    def snapshot(self) -> EngineSnapshot:
        return self._snapshot

    def open_watch(self) -> PeakWatch:
        watch = PeakWatch(self._snapshot.kv_cache_usage)
        self._watches.add(watch)
        return watch

    def close_watch(self, watch: PeakWatch) -> None:
        self._watches.discard(watch)


@dataclass(frozen=True)
class ArrivalTelemetry:
    """What the replica knew when the request arrived, before its first await."""

    replica_id: str
    queue_depth: int
    engine: EngineSnapshot
    config_version: str


def arrival_headers(t: ArrivalTelemetry) -> dict[str, str]:
    return {
        HEADER_REPLICA_ID: t.replica_id,
        HEADER_QUEUE_DEPTH: str(t.queue_depth),
        HEADER_ENGINE_RUNNING: str(t.engine.running),
        HEADER_ENGINE_WAITING: str(t.engine.waiting),
        HEADER_KV_USAGE: f"{t.engine.kv_cache_usage:.4f}",
        HEADER_CONFIG_VERSION: t.config_version,
    }


def completion_fields(
    *, kv_peak: float, prompt_tokens: int | None, cached_tokens: int | None
) -> dict[str, str]:
    """Headers known only once the request has finished."""
    fields = {HEADER_KV_USAGE_PEAK: f"{kv_peak:.4f}"}
    if prompt_tokens is not None:
        fields[HEADER_PROMPT_TOKENS] = str(prompt_tokens)
    if cached_tokens is not None:
        fields[HEADER_CACHED_TOKENS] = str(cached_tokens)
    return fields


def usage_tokens(usage: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """(prompt_tokens, cached_tokens) from an OpenAI ``usage`` object."""
    if not usage:
        return None, None
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens")
    return usage.get("prompt_tokens"), (cached if cached is not None else 0)
