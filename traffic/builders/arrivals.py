"""Arrival processes: when requests come and from which tenant, looked up by name.

Each process is a pydantic model of its own parameters (``extra="forbid"``, so a typo
in a spec fails loudly) with a ``generate`` method yielding :class:`Arrival` in time
order on the *source* timeline; the workload builder applies limits and ``speedup``.

* ``poisson`` — memoryless arrivals at ``rate`` per second: the steady baseline.
* ``gamma`` — gamma-distributed gaps with mean ``1/rate`` and coefficient of
  variation ``cv``; ``cv > 1`` gives the bursts real traffic has (``cv = 1`` is Poisson).
* ``azure-trace`` — the real arrivals of the Azure LLM inference trace (2023); its
  ``ContextTokens`` travel with each arrival so prompts of similar length are chosen.
* ``phases`` — Poisson at a different rate in each of a list of phases (quiet, burst,
  quiet …), optionally one tenant per phase: a burst at a known time, for proving
  that a check sees what a burst does to the cluster.
* ``multi-tenant-day`` — a whole day with a diurnal shape: tenant 1 has a morning
  burst on top of the day curve, tenant 2 a steady mid-day load, tenant 3 a
  long-context batch job; further tenants follow the day curve.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from traffic.builders.sources import AZURE_TRACE, SHIPPED_DATA_DIR, require
from traffic.errors import WorkloadError

__all__ = [
    "ARRIVAL_PROCESSES",
    "Arrival",
    "ArrivalProcess",
    "AzureTraceArrivals",
    "GammaArrivals",
    "MultiTenantDayArrivals",
    "Phase",
    "PhasedArrivals",
    "PoissonArrivals",
    "register_arrivals",
]

Tenants = Sequence[tuple[str, float]]  # (tenant id, weight)
ARRIVAL_PROCESSES: dict[str, type[ArrivalProcess]] = {}
HOUR = 3600.0


@dataclass(frozen=True)
class Arrival:
    """One request arrival on the source timeline (seconds, before speedup)."""

    offset: float
    tenant_id: str
    context_tokens: int | None = None  # prompt size to aim for, when the source knows it
    generated_tokens: int | None = None  # what production generated (trace only)


class ArrivalProcess(BaseModel):
    """Base of every arrival process; ``finite`` ones end without a duration limit."""

    model_config = ConfigDict(extra="forbid")
    process: str
    finite: ClassVar[bool] = False

    def generate(self, tenants: Tenants, rng: random.Random) -> Iterator[Arrival]:
        raise NotImplementedError


P = type[ArrivalProcess]


def register_arrivals(name: str) -> Callable[[P], P]:
    """Register an arrival process class under ``name`` (the spec's ``process``)."""

    def decorate(cls: P) -> P:
        ARRIVAL_PROCESSES[name] = cls
        return cls

    return decorate


def pick_tenant(tenants: Tenants, rng: random.Random) -> str:
    ids = [tenant for tenant, _ in tenants]
    return rng.choices(ids, weights=[weight for _, weight in tenants])[0]


@register_arrivals("poisson")
class PoissonArrivals(ArrivalProcess):
    process: Literal["poisson"] = "poisson"
    rate: float = Field(gt=0, description="Mean arrivals per second (source time).")

    def generate(self, tenants: Tenants, rng: random.Random) -> Iterator[Arrival]:
        now = 0.0
        while True:
            now += rng.expovariate(self.rate)
            yield Arrival(now, pick_tenant(tenants, rng))


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: float = Field(gt=0)
    rate: float = Field(ge=0, description="Poisson arrivals per second in this phase.")
    tenant: str | None = Field(default=None, description="All arrivals from this tenant.")


@register_arrivals("phases")
class PhasedArrivals(ArrivalProcess):
    process: Literal["phases"] = "phases"
    phases: list[Phase] = Field(min_length=1)
    finite: ClassVar[bool] = True

    def generate(self, tenants: Tenants, rng: random.Random) -> Iterator[Arrival]:
        start = 0.0
        for phase in self.phases:
            end = start + phase.duration_s
            now = start
            while phase.rate > 0:
                now += rng.expovariate(phase.rate)
                if now >= end:
                    break
                yield Arrival(now, phase.tenant or pick_tenant(tenants, rng))
            start = end


@register_arrivals("gamma")
class GammaArrivals(ArrivalProcess):
    process: Literal["gamma"] = "gamma"
    rate: float = Field(gt=0, description="Mean arrivals per second (source time).")
    cv: float = Field(default=2.0, gt=0, description="Burstiness: std/mean of the gaps.")

    def generate(self, tenants: Tenants, rng: random.Random) -> Iterator[Arrival]:
        shape = 1.0 / self.cv**2  # gamma(k, θ): mean kθ, cv 1/√k
        scale = 1.0 / (self.rate * shape)
        now = 0.0
        while True:
            now += rng.gammavariate(shape, scale)
            yield Arrival(now, pick_tenant(tenants, rng))


@register_arrivals("azure-trace")
class AzureTraceArrivals(ArrivalProcess):
    process: Literal["azure-trace"] = "azure-trace"
    path: Path | None = Field(default=None, description="Trace CSV; default: the shipped one.")
    start_s: float = Field(default=0.0, ge=0, description="Skip this much of the trace.")
    finite: ClassVar[bool] = True

    def generate(self, tenants: Tenants, rng: random.Random) -> Iterator[Arrival]:
        import polars as pl

        path = self.path or require(SHIPPED_DATA_DIR, AZURE_TRACE)
        try:
            trace = pl.read_csv(path).with_columns(
                pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
            )
        except Exception as exc:  # polars raises several types for a bad CSV
            raise WorkloadError(f"cannot read the Azure trace {path}: {exc}") from exc
        trace = trace.sort("TIMESTAMP")
        first = trace["TIMESTAMP"][0]
        for stamp, context, generated in trace.select(
            "TIMESTAMP", "ContextTokens", "GeneratedTokens"
        ).iter_rows():
            offset = (stamp - first).total_seconds() - self.start_s
            if offset < 0:
                continue
            yield Arrival(offset, pick_tenant(tenants, rng), int(context), int(generated))


@register_arrivals("multi-tenant-day")
class MultiTenantDayArrivals(ArrivalProcess):
    """A day of traffic; tenant roles follow the order of the spec's tenants."""

    process: Literal["multi-tenant-day"] = "multi-tenant-day"
    requests: int = Field(default=480, gt=0, description="Expected requests over the day.")
    day_seconds: float = Field(default=24 * HOUR, gt=0, description="Length of the source day.")
    burst_hour: float = Field(default=8.5, ge=0, lt=24, description="Tenant 1's burst starts.")
    burst_hours: float = Field(default=1.0, gt=0)
    burst_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of tenant 1 in the burst."
    )
    steady_hours: tuple[float, float] = Field(
        default=(10.0, 16.0), description="Tenant 2's window."
    )
    batch_hour: float = Field(default=14.0, ge=0, lt=24, description="Tenant 3's batch starts.")
    batch_hours: float = Field(default=1.5, gt=0)
    batch_context_tokens: int = Field(default=450, gt=0, description="Prompt size of the batch.")
    finite: ClassVar[bool] = True

    @model_validator(mode="after")
    def _windows(self) -> MultiTenantDayArrivals:
        start, end = self.steady_hours
        if not 0 <= start < end <= 24:
            raise ValueError("steady_hours must be (start, end) within 0..24 with start < end")
        return self

    def generate(self, tenants: Tenants, rng: random.Random) -> Iterator[Arrival]:
        total_weight = sum(weight for _, weight in tenants)
        hour = self.day_seconds / 24  # source seconds per "hour" of the day
        streams: list[Iterator[Arrival]] = []
        for index, (tenant, weight) in enumerate(tenants):
            expected = self.requests * weight / total_weight
            if index == 0:
                burst = expected * self.burst_share
                streams.append(_diurnal(tenant, expected - burst, self.day_seconds, rng))
                window = (
                    self.burst_hour * hour,
                    min(24, self.burst_hour + self.burst_hours) * hour,
                )
                streams.append(_window(tenant, burst, window, rng))
            elif index == 1:
                start, end = self.steady_hours
                streams.append(_window(tenant, expected, (start * hour, end * hour), rng))
            elif index == 2:
                window = (
                    self.batch_hour * hour,
                    min(24, self.batch_hour + self.batch_hours) * hour,
                )
                streams.append(_window(tenant, expected, window, rng, self.batch_context_tokens))
            else:
                streams.append(_diurnal(tenant, expected, self.day_seconds, rng))
        # each stream is materialised in order, so the merge does not depend on laziness
        merged = sorted((a for stream in streams for a in list(stream)), key=lambda a: a.offset)
        yield from merged


def _window(
    tenant: str,
    expected: float,
    window: tuple[float, float],
    rng: random.Random,
    context_tokens: int | None = None,
) -> Iterator[Arrival]:
    """Homogeneous Poisson arrivals inside ``window`` with ``expected`` requests."""
    start, end = window
    if expected <= 0 or end <= start:
        return
    rate = expected / (end - start)
    now = start + rng.expovariate(rate)
    while now < end:
        yield Arrival(now, tenant, context_tokens)
        now += rng.expovariate(rate)


def _day_shape(fraction: float) -> float:
    """Relative load at ``fraction`` of the day: quiet night, peak mid-afternoon."""
    hour = 24 * fraction
    daytime = math.sin(math.pi * (hour - 6) / 16) if 6 <= hour <= 22 else 0.0
    return 0.1 + 0.9 * max(0.0, daytime)


_SHAPE_MEAN = sum(_day_shape((i + 0.5) / 1440) for i in range(1440)) / 1440


def _diurnal(tenant: str, expected: float, day: float, rng: random.Random) -> Iterator[Arrival]:
    """Non-homogeneous Poisson following the day shape, by thinning (Lewis–Shedler)."""
    if expected <= 0:
        return
    mean_rate = expected / day
    peak = mean_rate / _SHAPE_MEAN  # the shape's maximum is 1
    now = rng.expovariate(peak)
    while now < day:
        if rng.random() < _day_shape(now / day):
            yield Arrival(now, tenant)
        now += rng.expovariate(peak)
