"""Schedule builders: what each replay mode sends, and when."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from traffic.format import TrafficRecord
from traffic.schedule import (
    ScheduleError,
    TenantBurst,
    build_schedule,
    build_tenant_burst,
    pick_burst_tenants,
)
from traffic.transport import limits_for


def rec(rid: str, arrival, tenant: str = "acme", prompt: str = "hi") -> TrafficRecord:
    return TrafficRecord(
        request_id=rid,
        arrival=arrival,
        tenant_id=tenant,
        body={"model": "m", "messages": [{"role": "user", "content": prompt}], "stream": False},
    )


def test_replay_keeps_captured_offsets_and_streams_with_usage() -> None:
    schedule = build_schedule("replay", [rec("b", 1.5), rec("a", 0.25)])
    assert [(s.request_id, s.offset_s) for s in schedule] == [("a", 0.25), ("b", 1.5)]
    body = json.loads(schedule[0].body)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert ("x-tenant-id", "acme") in schedule[0].headers


def test_absolute_arrivals_become_offsets_from_the_first() -> None:
    t0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
    schedule = build_schedule("replay", [rec("a", t0 + timedelta(seconds=2)), rec("b", t0)])
    assert [(s.request_id, s.offset_s) for s in schedule] == [("b", 0.0), ("a", 2.0)]


def test_pinned_needs_replicas_and_unknown_modes_are_refused() -> None:
    with pytest.raises(ScheduleError, match="replica"):
        build_schedule("pinned", [rec("a", 0)])
    with pytest.raises(ScheduleError, match="unknown mode"):
        build_schedule("warp", [rec("a", 0)])


def test_tenant_burst_small_steady_big_bursts_long_prompts() -> None:
    records = [rec(f"s{i}", i, "small") for i in range(3)] + [
        rec(f"b{i}", i, "big", prompt="x" * (10 + 100 * i)) for i in range(4)
    ]
    burst = TenantBurst(
        small_tenant="small",
        big_tenant="big",
        small_rate=2,
        burst_rate=10,
        duration_s=10,
        burst_start_s=4,
        burst_duration_s=2,
        long_prefill_fraction=0.5,
    )
    schedule = build_tenant_burst(records, burst)
    small = [s for s in schedule if s.tenant_id == "small"]
    big = [s for s in schedule if s.tenant_id == "big"]
    assert [s.offset_s for s in small] == [k / 2 for k in range(20)]
    assert len(big) == 20 and all(4 <= s.offset_s < 6 for s in big)
    assert {s.request_id for s in big} == {"b3", "b2"}  # the longest half of the prompts
    assert len({s.span_id for s in schedule}) == len(schedule)
    assert {s.mode for s in schedule} == {"tenant_burst"}
    assert [s.offset_s for s in schedule] == sorted(s.offset_s for s in schedule)


def test_tenant_burst_picks_tenants_by_prompt_length() -> None:
    records = [rec("a", 0, "chatty", prompt="x" * 500), rec("b", 0, "terse")]
    assert pick_burst_tenants(records) == ("terse", "chatty")
    assert build_schedule("tenant-burst", records)  # defaults work end to end
    with pytest.raises(ScheduleError, match="exactly two"):
        pick_burst_tenants(records + [rec("c", 0, "third")])


def test_connection_pool_is_sized_for_rate_times_timeout() -> None:
    assert limits_for(500, 2.0).max_connections == 1000
    assert limits_for(1, 1).max_connections == 16  # floor
    assert limits_for(5000, 60).max_connections == 4096  # cap


def test_the_pool_holds_the_busiest_window_not_the_mean_rate() -> None:
    from traffic.replay import ReplayPlan
    from traffic.schedule import build_replay

    # a quiet-burst-quiet morning: 0.8 req/s for 45 s, 12 req/s for 15 s, 0.8 req/s
    offsets = ([i / 0.8 for i in range(36)] + [45 + i / 12 for i in range(180)]
               + [60 + i / 0.8 for i in range(36)])
    plan = ReplayPlan(build_replay([rec(f"r{i}", t) for i, t in enumerate(offsets)]),
                      timeout_s=15.0)
    assert plan.rate < 2.5  # the mean would size the pool at ~36 connections
    assert plan.peak_in_flight == 180  # the whole burst is in flight at once
    assert limits_for(plan.peak_rate, plan.timeout_s).max_connections == 180
    assert ReplayPlan(plan.requests, timeout_s=15.0, speedup=2.0).peak_in_flight > 180


def test_exported_members_exist() -> None:
    import importlib

    for name in ("answer", "replay", "replay_cli", "sampler", "schedule", "spans", "transport"):
        module = importlib.import_module(f"traffic.{name}")
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, (name, missing)
