"""How fast this host moved memory on the night: the speed its engines decoded at.

On the embedded stack the engines compute on the flow's own host, so every latency of
the night is also a measurement of that host. A shared or virtual host does not keep
one speed. One healthy ``make demo`` night decoded 1.6x slower than the nights before
it (idle golden requests, one at a time: 40 ms per token against 21-26), with the
same deployment and no other process on the host to blame (``host_cpu``: 5 %
foreign). Its latency failed ``history``: the cluster blamed for its host.

Decoding a small model on a CPU streams its weights from memory for every token, so
its speed is the memory bandwidth the host gives it, which a neighbour on the same
physical machine takes unseen by ``/proc``. The probe copies a ``PROBE_MB`` buffer
(``bytearray`` slice assignment: a ``memmove``, no dependency) and times it. Measured
on the 2-CPU development VM (``benchmarks/host_speed.py``, twice: 180 and 150 requests
decoded one at a time by SmolLM2, each between six probes): over blocks of 20
requests the probe and the time per output token moved together (correlation 0.97
and 0.96; per request 0.73 and 0.67), and when the host slowed by itself for one
block both did, 1.7x (probe 4.0 -> 7.0 ms, time per token 22 -> 37 ms). A numpy sum
over 128 MB followed less closely (0.95 and 0.80), a pure-Python loop less still
(0.90 and 0.46).

The flow probes while the cluster is idle, for ``SECONDS`` before the replay starts
and again after its last answer, every ``INTERVAL_S``: under the replay the probe
would also time the cluster's own load, and a rollout doing more work per token would
pass for a slower host. The night's figure is the median (``HostSpeed``), written to
``runs.plan -> 'host_speed'``; ``history`` compares latency only between nights whose
host ran at about the same speed (``history.max_host_speed_gap``).

Only where the cluster runs on this host: against a remote cluster the flow's host
is not the one that computes, and nothing is probed.
"""

from __future__ import annotations

import statistics
import time

from pydantic import BaseModel

__all__ = ["HostSpeed", "HostSpeedProbe", "measure", "summarise"]

PROBE_MB = 64
SECONDS = 8.0
INTERVAL_S = 0.2


class HostSpeed(BaseModel):
    """What ``history`` reads (``runs.plan -> 'host_speed'``); higher is slower."""

    probe_ms: float  # median wall time of one probe, both ends of the replay
    before_ms: float  # median before the replay
    after_ms: float  # and after its last answer
    samples: int


class HostSpeedProbe:
    """The probe's buffers (twice ``megabytes``); ``probe`` times one copy."""

    def __init__(self, megabytes: int = PROBE_MB) -> None:
        self._source = bytearray(b"\x01") * (megabytes << 20)
        self._target = bytearray(len(self._source))
        self._target[:] = self._source  # touch every page before timing anything

    def probe(self) -> float:
        """Wall milliseconds of one copy of the buffer."""
        started = time.perf_counter()
        self._target[:] = self._source
        return (time.perf_counter() - started) * 1000.0

    def measure(self, seconds: float = SECONDS, interval_s: float = INTERVAL_S
                ) -> list[float]:
        """Probe every ``interval_s`` for ``seconds`` (at least once)."""
        times: list[float] = []
        ends = time.monotonic() + seconds
        while True:
            times.append(self.probe())
            if time.monotonic() + interval_s > ends:
                return times
            time.sleep(interval_s)


def measure(seconds: float = SECONDS, interval_s: float = INTERVAL_S) -> list[float]:
    """Probe for ``seconds`` on buffers held only meanwhile."""
    return HostSpeedProbe().measure(seconds, interval_s)


def summarise(before: list[float], after: list[float]) -> HostSpeed:
    """The night's figure from the probes before and after the replay (each >= 1)."""
    return HostSpeed(probe_ms=round(statistics.median(before + after), 3),
                     before_ms=round(statistics.median(before), 3),
                     after_ms=round(statistics.median(after), 3),
                     samples=len(before) + len(after))
