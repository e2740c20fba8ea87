"""How much of this host's CPU went to other work while the replay measured the cluster.

On the embedded stack the cluster under test shares its host with everything else on
it, and its engines are told to yield (``serving/cpu_share.py``: the head's session runs
at autogroup nice 19, so the replay keeps its schedule). Anything CPU-heavy beside a
night then takes the engines' CPU: a test suite run in another session during a healthy
``healthy`` scenario run gave it 14 timeouts in 132 requests and a FAIL on ``slo``, the
cluster blamed for a neighbour. This module measures that neighbour, so the measurement
check can say the night was not the cluster's own (INVALID, ``host_cpu``).

Read from ``/proc`` at the start and the end of the replay: the host's busy CPU time
(``/proc/stat``, steal included: a hypervisor's share is not the cluster's either) and
the CPU time of *ours*: the recorded Ray head's processes (services, Serve replicas,
vLLM engines) and this process with its descendants (the replay, the sampler, a Prefect
server it started). A process's time is its own ``utime + stime`` plus the
``cutime + cstime`` of the children it reaped, so a replay worker or an engine that ends
during the window still counts as ours. Foreign CPU is host busy time minus ours, as a
share of the window's capacity (seconds × CPUs). Two snapshots a night: nothing runs
while the replay does.

Only where the cluster runs on this host, i.e. a head cluster-eval recorded: against a
remote cluster the host's load can only delay the replay's sends, which the
``schedule_lag`` item already judges.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

__all__ = ["CpuSnapshot", "HostCpu", "host_cpu", "own_tree", "snapshot"]

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    at: float  # time.monotonic()
    host_busy_s: float
    cpus: int
    ours_s: dict[int, float]  # pid → CPU seconds, its reaped children included


class HostCpu(BaseModel):
    """What the measurement check reads (``runs.plan -> 'host'``)."""

    window_s: float
    cpus: int
    busy_share: float  # all work on the host, of its capacity
    ours_share: float  # the cluster under test and cluster-eval
    foreign_share: float  # everything else: busy minus ours, never below 0


def _host_busy() -> tuple[float, int]:
    """(busy CPU seconds since boot, number of CPUs) from /proc/stat."""
    lines = Path("/proc/stat").read_text().splitlines()
    values = [int(v) for v in lines[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    idle = values[3] + values[4]
    busy = sum(values[:8]) - idle
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return busy * _TICK_S, cpus


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # after the name: state(0) … utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(v) for v in fields[11:15]) * _TICK_S


def own_tree(root: int | None = None) -> set[int]:
    """``root`` (default this process) and every process descended from it."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = set(), [root]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, []))
    return found


def snapshot(ours: Iterable[int]) -> CpuSnapshot:
    busy, cpus = _host_busy()
    seconds = {pid: s for pid in ours if (s := _cpu_seconds(pid)) is not None}
    return CpuSnapshot(at=time.monotonic(), host_busy_s=busy, cpus=cpus, ours_s=seconds)


def host_cpu(before: CpuSnapshot, after: CpuSnapshot) -> HostCpu | None:
    """The shares of the window between two snapshots; None for an empty window.

    A process of ours that appears only in ``after`` started inside the window: all its
    time is the window's. One that is gone by ``after`` was reaped by a parent of ours,
    whose children's time holds it, or its last moments are missed (counted foreign)."""
    window = after.at - before.at
    if window <= 0 or after.cpus <= 0:
        return None
    capacity = window * after.cpus
    ours = sum(max(0.0, s - before.ours_s.get(pid, 0.0)) for pid, s in after.ours_s.items())
    busy = max(0.0, after.host_busy_s - before.host_busy_s)
    return HostCpu(window_s=round(window, 3), cpus=after.cpus,
                   busy_share=round(min(1.0, busy / capacity), 4),
                   ours_share=round(min(1.0, ours / capacity), 4),
                   foreign_share=round(min(1.0, max(0.0, busy - ours) / capacity), 4))
