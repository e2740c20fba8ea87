"""The night's schedules: traffic at speedup, pinned golden rounds, the burst, the baseline."""

from __future__ import annotations

from collections import Counter

import pytest

from flows.plan import BurstOptions, baseline_schedule, night_schedule
from traffic.format import TrafficRecord


def _record(i: int, tenant: str, offset: float, words: int = 3) -> TrafficRecord:
    return TrafficRecord(
        request_id=f"{tenant}-{i}", arrival=offset, tenant_id=tenant,
        body={"model": "m", "messages": [{"role": "user", "content": "word " * words}]},
    )


@pytest.fixture
def traffic() -> list[TrafficRecord]:
    acme = [_record(i, "acme", i * 1.0, words=3) for i in range(20)]
    globex = [_record(i, "globex", i * 2.0 + 0.5, words=40) for i in range(10)]
    return acme + globex


@pytest.fixture
def golden() -> list[TrafficRecord]:
    return [_record(i, "golden", i * 0.5) for i in range(4)]


def test_traffic_runs_at_speedup_and_golden_goes_to_every_replica_each_round(traffic, golden):
    plan = night_schedule(traffic, golden, ["r1", "r2"], speedup=2.0, golden_rounds=3,
                          burst=BurstOptions(enabled=False))
    replay = [r for r in plan.requests if r.mode == "replay"]
    assert max(r.offset_s for r in replay) == pytest.approx(19.0 / 2.0)
    pinned = [r for r in plan.requests if r.mode == "pinned"]
    assert plan.counts == {"replay": 30, "pinned": 4 * 2 * 3, "tenant_burst": 0}
    assert Counter(r.pinned_replica for r in pinned) == {"r1": 12, "r2": 12}
    # rounds spread over the traffic window, copies of one record go out together
    starts = sorted({r.offset_s for r in pinned if r.request_id == "golden-0"})
    assert starts == pytest.approx([0.0, 9.5 / 3, 2 * 9.5 / 3])


def test_a_golden_round_is_paced_evenly_and_keeps_a_replica_busy_half_the_time_at_most(
    traffic, golden
):
    # the window (19 s, 2 rounds) would give each round 9.5 s; one idle replica needed
    # 15 s for the golden set alone, so each round takes 30 s, a record every 7.5 s
    plan = night_schedule(traffic, golden, ["r1", "r2"], golden_rounds=2, golden_round_s=15.0,
                          burst=BurstOptions(enabled=False))
    pinned = [r for r in plan.requests if r.mode == "pinned"]
    for replica in ("r1", "r2"):
        sent = sorted(r.offset_s for r in pinned if r.pinned_replica == replica)
        assert sent == pytest.approx([i * 7.5 for i in range(8)])
    # a short baseline leaves the window's pacing: 4 records over 9.5 s
    quick = night_schedule(traffic, golden, ["r1"], golden_rounds=2, golden_round_s=1.0,
                           burst=BurstOptions(enabled=False))
    sent = sorted(r.offset_s for r in quick.requests if r.mode == "pinned")
    assert sent == pytest.approx([i * 9.5 / 4 for i in range(8)])


def test_span_ids_are_unique_and_match_the_request_id_header(traffic, golden):
    plan = night_schedule(traffic, golden, ["r1", "r2"], golden_rounds=2, burst=BurstOptions())
    ids = [r.span_id for r in plan.requests]
    assert len(ids) == len(set(ids))
    for r in plan.requests:
        assert dict(r.headers)["x-request-id"] == r.span_id
    assert plan.requests == sorted(plan.requests, key=lambda r: r.offset_s)


def test_the_burst_follows_the_traffic_with_the_long_prompt_tenant_bursting(traffic, golden):
    plan = night_schedule(traffic, golden, ["r1"], golden_rounds=1, burst=BurstOptions(
        duration_s=10, burst_start_s=2, burst_duration_s=3, burst_rate=4, small_rate=1))
    burst = [r for r in plan.requests if r.mode == "tenant_burst"]
    others = [r for r in plan.requests if r.mode != "tenant_burst"]
    assert min(r.offset_s for r in burst) > max(r.offset_s for r in others)
    assert Counter(r.tenant_id for r in burst) == {"acme": 10, "globex": 12}


def test_a_single_tenant_skips_the_burst_with_a_note(golden):
    alone = [_record(i, "acme", float(i)) for i in range(5)]
    plan = night_schedule(alone, golden, ["r1"], burst=BurstOptions())
    assert plan.counts["tenant_burst"] == 0
    assert any("tenant burst skipped" in n for n in plan.notes)


def test_no_replicas_skips_pinned_with_a_note(traffic, golden):
    plan = night_schedule(traffic, golden, [], burst=None)
    assert plan.counts["pinned"] == 0
    assert plan.notes


def test_baseline_is_the_golden_set_pinned_to_one_replica(golden):
    requests = baseline_schedule(golden, "r9")
    assert [r.mode for r in requests] == ["baseline"] * 4
    assert {r.pinned_replica for r in requests} == {"r9"}
    assert {dict(r.headers)["x-pin-replica"] for r in requests} == {"r9"}
    assert requests[0].span_id == "baseline:golden-0:r9"


def test_the_nightly_burst_and_the_replay_modes_burst_are_one_shape():
    from traffic.schedule import BurstShape, TenantBurst, build_schedule

    options, spec = BurstOptions(), TenantBurst(small_tenant="a", big_tenant="b")
    assert isinstance(options, BurstShape) and isinstance(spec, BurstShape)
    # the same defaults wherever a burst is built: 3 req/s, the nightly flow's
    assert options.shape() == spec.shape() == BurstShape().shape()
    assert spec.burst_rate == 3.0
    # the nightly plan passes every shape field on to the replay's burst
    custom = BurstOptions(small_rate=0.5, burst_rate=7, duration_s=20, burst_start_s=1,
                          burst_duration_s=2, long_prefill_fraction=1.0)
    assert set(custom.shape()) == set(BurstShape.model_fields)
    assert set(BurstOptions.model_fields) - set(BurstShape.model_fields) == {
        "enabled", "small_tenant", "big_tenant"}
    records = [_record(i, "acme", float(i)) for i in range(4)] + [
        _record(i, "globex", float(i), words=40) for i in range(4)]
    default_mode = build_schedule("tenant-burst", records)
    assert sum(r.tenant_id == "globex" for r in default_mode) == 3 * 10  # rate × burst length


def test_burst_options_refuse_unknown_fields():
    with pytest.raises(ValueError, match="burst_rte"):
        BurstOptions.model_validate({"burst_rte": 4})
