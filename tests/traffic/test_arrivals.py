"""Arrival processes: rates, burstiness, the real trace, the compressed day."""

from __future__ import annotations

import random
import statistics
from collections import Counter

import pytest

from traffic.builders import ARRIVAL_PROCESSES
from traffic.builders.arrivals import (
    AzureTraceArrivals,
    GammaArrivals,
    MultiTenantDayArrivals,
    PhasedArrivals,
    PoissonArrivals,
)

ONE = [("acme", 1.0)]


def take(process, n: int, tenants=ONE, seed: int = 1) -> list:
    generator = process.generate(tenants, random.Random(seed))
    return [arrival for _, arrival in zip(range(n), generator, strict=False)]


def gaps_cv(arrivals) -> float:
    gaps = [b.offset - a.offset for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return statistics.pstdev(gaps) / statistics.mean(gaps)


def test_registry_names():
    assert set(ARRIVAL_PROCESSES) == {
        "poisson", "gamma", "azure-trace", "multi-tenant-day", "phases"}


def test_poisson_rate_roughly_right():
    arrivals = take(PoissonArrivals(rate=4.0), 4000)
    rate = len(arrivals) / arrivals[-1].offset
    assert 3.7 < rate < 4.3
    assert 0.9 < gaps_cv(arrivals) < 1.1
    assert all(b.offset >= a.offset for a, b in zip(arrivals, arrivals[1:], strict=False))


def test_gamma_is_burstier_than_poisson_at_the_same_rate():
    gamma = take(GammaArrivals(rate=4.0, cv=3.0), 4000)
    poisson = take(PoissonArrivals(rate=4.0), 4000)
    assert 3.2 < len(gamma) / gamma[-1].offset < 4.8
    assert gaps_cv(gamma) > 2.0 > gaps_cv(poisson) + 0.5


def test_tenants_follow_their_weights():
    counts = Counter(a.tenant_id for a in take(PoissonArrivals(rate=1), 4000, [("a", 3), ("b", 1)]))
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_azure_trace_has_real_timing_and_token_counts():
    arrivals = list(AzureTraceArrivals().generate(ONE, random.Random(1)))
    assert len(arrivals) == 8819
    assert arrivals[0].offset == 0.0
    assert arrivals[1].offset == pytest.approx(0.052, abs=1e-6)  # 18:17:04.0319600 - .9799600
    assert (arrivals[0].context_tokens, arrivals[0].generated_tokens) == (4808, 10)
    assert 3000 < arrivals[-1].offset < 4000  # about an hour
    skipped = list(AzureTraceArrivals(start_s=600).generate(ONE, random.Random(1)))
    assert skipped[0].offset >= 0 and len(skipped) < len(arrivals)


def test_multi_tenant_day_roles():
    day = MultiTenantDayArrivals(requests=3000)
    tenants = [("acme", 0.55), ("globex", 0.30), ("initech", 0.15)]
    arrivals = list(day.generate(tenants, random.Random(3)))
    assert 2700 < len(arrivals) < 3300
    assert all(0 <= a.offset < 86400 for a in arrivals)
    hour = lambda a: int(a.offset // 3600)  # noqa: E731
    acme = Counter(hour(a) for a in arrivals if a.tenant_id == "acme")
    assert acme[8] + acme[9] > 3 * max(acme[h] for h in range(10, 24))  # the morning burst
    assert acme[3] < acme[14]  # quiet night, busy afternoon
    globex = [a for a in arrivals if a.tenant_id == "globex"]
    assert all(10 * 3600 <= a.offset < 16 * 3600 for a in globex)  # steady mid-day
    initech = [a for a in arrivals if a.tenant_id == "initech"]
    assert all(14 * 3600 <= a.offset < 15.5 * 3600 for a in initech)  # the batch
    assert all(a.context_tokens == 450 for a in initech)  # long context


def test_same_seed_same_arrivals():
    process = GammaArrivals(rate=2.0, cv=2.5)
    assert take(process, 100, seed=5) == take(process, 100, seed=5)
    assert take(process, 100, seed=5) != take(process, 100, seed=6)


def test_phases_put_a_burst_where_the_spec_says_and_can_switch_tenant():
    process = PhasedArrivals(phases=[
        {"duration_s": 40, "rate": 1.0},
        {"duration_s": 10, "rate": 20.0, "tenant": "big"},
        {"duration_s": 40, "rate": 1.0},
    ])
    arrivals = list(process.generate(ONE, random.Random(3)))
    burst = [a for a in arrivals if 40 <= a.offset < 50]
    quiet = [a for a in arrivals if a.offset < 40 or a.offset >= 50]
    assert 150 < len(burst) < 250 and 50 < len(quiet) < 110
    assert {a.tenant_id for a in burst} == {"big"}
    assert {a.tenant_id for a in quiet} == {"acme"}
    assert arrivals[-1].offset < 90  # finite: ends with its last phase
