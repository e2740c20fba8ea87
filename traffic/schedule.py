"""Turn traffic records into a send schedule, one builder per replay mode.

A schedule is a list of :class:`ScheduledRequest` sorted by ``offset_s`` (seconds from
the replay's start, before ``speedup``). Everything the hot path needs is computed
here, once: the body is rewritten to stream with usage and serialised to bytes, the
headers are built, the span id is fixed. The engine then only sleeps and sends.

Modes are looked up by name (``MODES``) because there are three of them and the CLI
and the flow both pick one from a string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from traffic.errors import TrafficError
from traffic.format import TrafficRecord
from traffic.headers import HEADER_PIN, HEADER_REQUEST_ID, HEADER_TENANT_ID

__all__ = [
    "MODES",
    "BurstShape",
    "ScheduleError",
    "ScheduledRequest",
    "TenantBurst",
    "build_pinned",
    "build_replay",
    "build_schedule",
    "build_tenant_burst",
    "pick_burst_tenants",
    "record_offsets",
]


class ScheduleError(TrafficError, ValueError):
    """The records cannot make the requested schedule (e.g. pinned mode without replicas)."""


@dataclass(frozen=True, slots=True)
class ScheduledRequest:
    """One request to send at ``start + offset_s / speedup``."""

    offset_s: float
    span_id: str
    request_id: str
    mode: str
    tenant_id: str
    endpoint: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    pinned_replica: str | None = None
    expect: str | None = None
    tags: str | None = None


def record_offsets(records: Sequence[TrafficRecord]) -> list[float]:
    """Arrival offsets in seconds; absolute arrivals are made relative to the earliest.

    The loader already normalises arrivals to offsets; this keeps the builders correct
    for records constructed in code (tests, workload builders) too.
    """
    absolute = [r.arrival for r in records if isinstance(r.arrival, datetime)]
    origin = min(absolute) if absolute else None
    out = []
    for r in records:
        if isinstance(r.arrival, datetime):
            assert origin is not None
            out.append((r.arrival - origin).total_seconds())
        else:
            out.append(float(r.arrival))
    return out


def streaming_body(body: dict[str, Any]) -> bytes:
    """The record's body as sent: streamed, with the usage chunk requested.

    Streaming is what gives TTFT; ``include_usage`` is what gives token counts (and
    cached tokens) on a streamed answer.
    """
    sent = dict(body)
    sent["stream"] = True
    sent["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return json.dumps(sent, separators=(",", ":"), ensure_ascii=False).encode()


def _scheduled(
    record: TrafficRecord,
    offset: float,
    mode: str,
    span_id: str,
    pinned_replica: str | None = None,
) -> ScheduledRequest:
    headers = [
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
        ("accept-encoding", "identity"),  # the stream is read raw, undecoded
        (HEADER_TENANT_ID, record.tenant_id),
        (HEADER_REQUEST_ID, span_id),
    ]
    if pinned_replica is not None:
        headers.append((HEADER_PIN, pinned_replica))
    return ScheduledRequest(
        offset_s=offset,
        span_id=span_id,
        request_id=record.request_id,
        mode=mode,
        tenant_id=record.tenant_id,
        endpoint=record.endpoint,
        body=streaming_body(record.body),
        headers=tuple(headers),
        pinned_replica=pinned_replica,
        expect=record.expect.model_dump_json(exclude_none=True) if record.expect else None,
        tags=json.dumps(record.tags, sort_keys=True) if record.tags else None,
    )


def build_replay(records: Sequence[TrafficRecord]) -> list[ScheduledRequest]:
    """Captured traffic at its captured timing."""
    offsets = record_offsets(records)
    out = [
        _scheduled(r, off, "replay", f"replay:{r.request_id}:")
        for r, off in zip(records, offsets, strict=True)
    ]
    out.sort(key=lambda s: s.offset_s)
    return out


def build_pinned(
    records: Sequence[TrafficRecord], replicas: Sequence[str]
) -> list[ScheduledRequest]:
    """Every golden request to every replica, pinned with ``x-pin-replica``.

    Each replica gets the golden set at the records' own timing, so replicas are
    compared under the same load; the copies of one record go out together.
    """
    if not replicas:
        raise ScheduleError("pinned mode needs at least one replica id (cluster-eval stack status)")
    if len(set(replicas)) != len(replicas):
        raise ScheduleError(f"duplicate replica ids: {list(replicas)}")
    offsets = record_offsets(records)
    out = [
        _scheduled(r, off, "pinned", f"pinned:{r.request_id}:{rep}", pinned_replica=rep)
        for r, off in zip(records, offsets, strict=True)
        for rep in replicas
    ]
    out.sort(key=lambda s: s.offset_s)
    return out


class BurstShape(BaseModel):
    """The rates and timing of a tenant burst; the defaults are the nightly flow's.

    One definition for the replay's ``tenant-burst`` mode (:class:`TenantBurst`) and the
    nightly flow's ``tenant_burst`` parameter (``flows.plan.BurstOptions``). The big
    tenant's default 3 req/s is sized for the embedded 2-core stack (a healthy night's
    burst queues without timing out); raise it for a real cluster.
    """

    model_config = ConfigDict(extra="forbid")

    small_rate: float = Field(default=1.0, gt=0, description="Small tenant, requests/s.")
    burst_rate: float = Field(default=3.0, gt=0, description="Big tenant during the burst.")
    duration_s: float = Field(default=30.0, gt=0, description="Length of the whole schedule.")
    burst_start_s: float = Field(default=10.0, ge=0)
    burst_duration_s: float = Field(default=10.0, gt=0)
    long_prefill_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the big tenant's records, longest prompts first, that burst.",
    )

    def shape(self) -> dict[str, float]:
        """Just the fields of :class:`BurstShape` (what a subclass adds left out)."""
        return {name: getattr(self, name) for name in BurstShape.model_fields}


class TenantBurst(BurstShape):
    """A small tenant at a steady low rate while a big tenant bursts long prefills.

    The question it answers: does one tenant's burst of long prompts starve another
    tenant's latency? Records of each tenant are cycled as often as the rates need.
    """

    small_tenant: str
    big_tenant: str


def _prompt_size(record: TrafficRecord) -> int:
    return len(json.dumps(record.body.get("messages", record.body), ensure_ascii=False))


def pick_burst_tenants(records: Sequence[TrafficRecord]) -> tuple[str, str]:
    """(small, big) for a two-tenant capture: big is the one with longer prompts."""
    sizes: dict[str, list[int]] = {}
    for r in records:
        sizes.setdefault(r.tenant_id, []).append(_prompt_size(r))
    if len(sizes) != 2:
        raise ScheduleError(
            f"tenant-burst needs records of exactly two tenants, found {sorted(sizes)}; "
            "name them explicitly"
        )
    small, big = sorted(sizes, key=lambda t: sum(sizes[t]) / len(sizes[t]))
    return small, big


def build_tenant_burst(
    records: Sequence[TrafficRecord], burst: TenantBurst
) -> list[ScheduledRequest]:
    small = [r for r in records if r.tenant_id == burst.small_tenant]
    big = [r for r in records if r.tenant_id == burst.big_tenant]
    if not small or not big:
        raise ScheduleError(
            f"tenant-burst needs records of both tenants: {burst.small_tenant!r} has "
            f"{len(small)}, {burst.big_tenant!r} has {len(big)}"
        )
    big.sort(key=_prompt_size, reverse=True)
    big = big[: max(1, round(len(big) * burst.long_prefill_fraction))]

    out: list[ScheduledRequest] = []
    n_small = int(burst.duration_s * burst.small_rate)
    for k in range(n_small):
        r = small[k % len(small)]
        span_id = f"tenant_burst:{r.request_id}:#{k}"
        out.append(_scheduled(r, k / burst.small_rate, "tenant_burst", span_id))
    n_big = int(burst.burst_duration_s * burst.burst_rate)
    for k in range(n_big):
        r = big[k % len(big)]
        offset = burst.burst_start_s + k / burst.burst_rate
        if offset >= burst.duration_s:
            break
        out.append(_scheduled(r, offset, "tenant_burst", f"tenant_burst:{r.request_id}:@{k}"))
    out.sort(key=lambda s: s.offset_s)
    return out


def _tenant_burst(
    records: Sequence[TrafficRecord], *, burst: TenantBurst | None = None, **_: Any
) -> list[ScheduledRequest]:
    if burst is None:
        small, big = pick_burst_tenants(records)
        burst = TenantBurst(small_tenant=small, big_tenant=big)
    return build_tenant_burst(records, burst)


def _replay(records: Sequence[TrafficRecord], **_: Any) -> list[ScheduledRequest]:
    return build_replay(records)


def _pinned(
    records: Sequence[TrafficRecord], *, replicas: Sequence[str] = (), **_: Any
) -> list[ScheduledRequest]:
    return build_pinned(records, replicas)


MODES: dict[str, Callable[..., list[ScheduledRequest]]] = {
    "replay": _replay,
    "pinned": _pinned,
    "tenant-burst": _tenant_burst,
}


def build_schedule(
    mode: str,
    records: Sequence[TrafficRecord],
    *,
    replicas: Sequence[str] = (),
    burst: TenantBurst | None = None,
) -> list[ScheduledRequest]:
    """The schedule for ``mode`` (``replay`` | ``pinned`` | ``tenant-burst``)."""
    try:
        builder = MODES[mode]
    except KeyError:
        raise ScheduleError(f"unknown mode {mode!r}; choose from {sorted(MODES)}") from None
    return builder(records, replicas=replicas, burst=burst)
