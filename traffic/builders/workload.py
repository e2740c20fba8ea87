"""``build_workload``: arrivals × tenants × tasks → traffic records.

Arrivals and task choices draw from two random streams derived from the seed, so
changing the task mix does not move the arrival times (and the reverse).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from traffic.builders.arrivals import Arrival
from traffic.builders.pool import shared_pool
from traffic.builders.sources import SHIPPED_DATA_DIR
from traffic.builders.spec import WorkloadSpec
from traffic.errors import WorkloadError
from traffic.format import TrafficRecord

__all__ = ["build_workload"]


def build_workload(spec: WorkloadSpec) -> list[TrafficRecord]:
    """The records of ``spec``, arrivals as offsets in replay seconds (after ``speedup``)."""
    pool = shared_pool(spec.data_dir or SHIPPED_DATA_DIR)
    tenants = {tenant.id: tenant for tenant in spec.tenants}
    arrival_rng = random.Random(f"{spec.seed}:arrivals")
    task_rng = random.Random(f"{spec.seed}:tasks")
    shares = [(tenant.id, tenant.weight) for tenant in spec.tenants]
    records: list[TrafficRecord] = []
    for index, arrival in enumerate(_limited(spec.arrivals.generate(shares, arrival_rng), spec)):
        tenant = tenants[arrival.tenant_id]
        task = pool.pick(
            tenant.tasks or spec.tasks,
            task_rng,
            context_tokens=arrival.context_tokens,
            weights=spec.task_weights,
        )
        tags = {"workload": spec.name, "task": task.kind, "source": task.source_id}
        if arrival.generated_tokens is not None:
            tags["trace_context_tokens"] = str(arrival.context_tokens)
            tags["trace_generated_tokens"] = str(arrival.generated_tokens)
        records.append(
            TrafficRecord(
                request_id=f"{spec.name}-{index:06d}",
                arrival=round(arrival.offset / spec.speedup, 6),
                tenant_id=tenant.id,
                body=task.body(
                    model=spec.model, max_tokens=spec.max_tokens, temperature=spec.temperature
                ),
                expect=task.expect,
                tags=tags,
            )
        )
    if not records:
        raise WorkloadError(f"workload {spec.name!r} has no arrivals within its limits")
    return records


def _limited(arrivals: Iterator[Arrival], spec: WorkloadSpec) -> Iterator[Arrival]:
    """Stop at ``duration_s`` (source seconds) and at ``max_requests``."""
    if spec.duration_s is not None:
        arrivals = itertools.takewhile(lambda a: a.offset < spec.duration_s, arrivals)  # type: ignore[operator]
    if spec.max_requests is not None:
        arrivals = itertools.islice(arrivals, spec.max_requests)
    return arrivals
