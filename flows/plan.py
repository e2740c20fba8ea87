"""The night's send schedules, built from the traffic package's per-mode builders.

One nightly run sends three things in one open-loop replay, so that the telemetry
sampler watches one continuous stretch of cluster life:

* the captured (or built) traffic at its own timing, divided by ``speedup``;
* the golden set pinned to every replica, ``golden_rounds`` times, the rounds spread
  over the traffic window so each replica is compared under the same load
  (``replica_skew`` needs ``min_samples`` spans per replica: 16 golden records × 2
  rounds = 32). Within a round the records are paced evenly, and a round lasts at
  least twice what one idle replica needed for the set sent one at a time in the
  baseline (``golden_round_s`` / :data:`GOLDEN_DUTY`): the probes keep a replica busy
  half the time at most, so the night's load and bursts stay the traffic's own.
  Sent at the records' own 0.5 s steps, one round put 16 requests on each replica of
  the 2-core stack in 8 s; on a slow host they queued past a 60 s timeout and a
  healthy night failed its SLOs on its own probes. Paced at the baseline's full speed,
  they kept the replicas busy all night there (10 s a golden answer): no span of the
  healthy scenario saw an idle cluster, and ``autoscaling_lag`` had no reference;
* a tenant burst after the traffic: a small tenant at a steady rate while a big
  tenant bursts long prefills (``tenant_fairness``).

Before it, the *baseline*: the golden set once, sequentially, pinned to one idle
replica — the model-side score the cluster-side numbers are read against.

Offsets here are final replay seconds: the plan is replayed with ``speedup=1``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from traffic.format import TrafficRecord
from traffic.headers import HEADER_REQUEST_ID
from traffic.schedule import (
    BurstShape,
    ScheduledRequest,
    ScheduleError,
    TenantBurst,
    build_pinned,
    build_replay,
    build_tenant_burst,
    pick_burst_tenants,
)

__all__ = [
    "BurstOptions",
    "NightPlan",
    "baseline_schedule",
    "night_schedule",
    "relabel",
]

GAP_S = 2.0  # quiet seconds between the traffic and the burst
GOLDEN_DUTY = 0.5  # the most of one replica's time the pinned golden probes may take


class BurstOptions(BurstShape):
    """The tenant burst of a nightly run: a :class:`~traffic.schedule.TenantBurst` whose
    tenants may be left out, and which can be switched off.

    ``small_tenant`` / ``big_tenant`` default to the two busiest tenants of the
    traffic, the one with the longer prompts bursting.
    """

    enabled: bool = True
    small_tenant: str | None = None
    big_tenant: str | None = None


@dataclass
class NightPlan:
    requests: list[ScheduledRequest]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.requests[-1].offset_s if self.requests else 0.0


def relabel(
    request: ScheduledRequest, *, offset_s: float, span_id: str | None = None,
    mode: str | None = None,
) -> ScheduledRequest:
    """A copy at another offset, optionally with another span id / mode (header kept in step)."""
    span_id = span_id or request.span_id
    headers = tuple(
        (name, span_id if name == HEADER_REQUEST_ID else value) for name, value in request.headers
    )
    return replace(
        request, offset_s=offset_s, span_id=span_id, mode=mode or request.mode, headers=headers
    )


def baseline_schedule(golden: Sequence[TrafficRecord], replica_id: str) -> list[ScheduledRequest]:
    """The golden set pinned to one replica, labelled ``baseline`` (sent one at a time)."""
    return [
        relabel(r, offset_s=0.0, mode="baseline",
                span_id=f"baseline:{r.request_id}:{replica_id}")
        for r in build_pinned(golden, [replica_id])
    ]


def _burst_tenants(records: Sequence[TrafficRecord], options: BurstOptions) -> tuple[str, str]:
    if options.small_tenant and options.big_tenant:
        return options.small_tenant, options.big_tenant
    busiest = [t for t, _ in Counter(r.tenant_id for r in records).most_common(2)]
    if len(busiest) < 2:
        raise ScheduleError(f"a tenant burst needs two tenants; the traffic has {busiest}")
    return pick_burst_tenants([r for r in records if r.tenant_id in busiest])


def night_schedule(
    traffic: Sequence[TrafficRecord],
    golden: Sequence[TrafficRecord],
    replicas: Sequence[str],
    *,
    speedup: float = 1.0,
    golden_rounds: int = 2,
    golden_round_s: float = 0.0,
    burst: BurstOptions | None = None,
) -> NightPlan:
    """Traffic at ``speedup``, paced pinned golden rounds over its window, then the burst.

    ``golden_round_s``: the seconds one idle replica needed for the golden set sent one
    at a time (the baseline); a round lasts at least that ÷ :data:`GOLDEN_DUTY`
    (0: the window alone paces)."""
    notes: list[str] = []
    replay = [relabel(r, offset_s=r.offset_s / speedup) for r in build_replay(traffic)]
    window = replay[-1].offset_s if replay else 0.0

    pinned: list[ScheduledRequest] = []
    if golden and replicas and golden_rounds > 0:
        once = build_pinned(golden, replicas)
        step = max(window / golden_rounds, golden_round_s / GOLDEN_DUTY,
                   once[-1].offset_s + 1.0)
        pace = step / len(golden)  # the copies of one record to every replica go together
        order = {r.request_id: i for i, r in enumerate(golden)}
        pinned = [
            relabel(r, offset_s=k * step + order[r.request_id] * pace,
                    span_id=f"{r.span_id}#{k}")
            for k in range(golden_rounds)
            for r in once
        ]
    elif not replicas:
        notes.append("no running replica ids: pinned golden set skipped")

    tenant_burst: list[ScheduledRequest] = []
    if burst is not None and burst.enabled:
        try:
            small, big = _burst_tenants(traffic, burst)
            spec = TenantBurst(small_tenant=small, big_tenant=big, **burst.shape())
            start = max([window] + [p.offset_s for p in pinned]) + GAP_S
            tenant_burst = [
                relabel(r, offset_s=r.offset_s + start)
                for r in build_tenant_burst(traffic, spec)
            ]
        except ScheduleError as exc:
            notes.append(f"tenant burst skipped: {exc}")

    requests = sorted(replay + pinned + tenant_burst, key=lambda r: r.offset_s)
    counts = {"replay": len(replay), "pinned": len(pinned), "tenant_burst": len(tenant_burst)}
    return NightPlan(requests=requests, counts=counts, notes=notes)
