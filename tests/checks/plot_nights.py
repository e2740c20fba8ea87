"""Nights for the report's plots, built with the project's own code (RunBuilder, the
checks, the GX gate): an eventful night and the nights before it.

``eventful_night``: 600 s of 1 Hz telemetry and ~400 spans. Steady load at one replica,
a burst from 240 s to 300 s (queue depth 30, KV cache near full, timeouts), the
autoscaler adding a second replica at 270 s, then sustained load on two replicas.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from tests.checks.conftest import T0, RunBuilder
from tests.checks.test_verdict import KEY

# the deployment could scale to 3 replicas: the burst is a lag, not a capacity limit
CONFIG = {"applications": [{"name": "llm", "deployments": [
    {"name": "LLMReplica", "autoscaling_config": {"min_replicas": 1, "max_replicas": 3}}]}]}
BURST = (240, 300)
SCALE_UP_AT = 270
DURATION_S = 600


def eventful_night(tmp_path: Path, run_id: str, day: int, *, seed: int = 0) -> RunBuilder:
    rng = random.Random(seed)
    b = RunBuilder(tmp_path, run_id)
    b.started_at = T0 + timedelta(days=day)
    b.baseline_key = KEY
    b.config = CONFIG
    for t in range(DURATION_S):
        in_burst = BURST[0] <= t < BURST[1]
        replicas = 1 if t < SCALE_UP_AT else 2
        queue = 30.0 if in_burst and t % 6 == 0 else (4.0 if in_burst else 1.0)
        if t >= 420:
            queue = 9.0  # sustained: above 0.7 x 2 replicas x 5
        b.sample(t, queue_depth=queue, replicas=replicas)
        b.telemetry[-1].update(kv_cache_usage=0.95 if in_burst else 0.3 + 0.1 * rng.random(),
                               target_replicas=2 if t >= SCALE_UP_AT - 10 else 1,
                               replicas_starting=1 if SCALE_UP_AT - 10 <= t < SCALE_UP_AT
                               else 0)
    for k in range(2 * 12):  # a golden round pinned to each replica
        b.span(0.8, mode="pinned", replica=("rep-a", "rep-b")[k % 2], at=5 + k * 0.5,
               request_id=f"golden-{k // 2}", output_text=f"answer {k // 2}")
    at = 20.0
    while at < DURATION_S - 5:
        in_burst = BURST[0] <= at < BURST[1]
        failed = in_burst and rng.random() < 0.3
        quality = 0.0 if failed else min(1.0, max(0.0, rng.gauss(0.5 if in_burst else 0.8,
                                                                  0.05)))
        b.span(quality, at=at, tenant=rng.choice(("acme", "globex")),
               replica=("rep-a", "rep-b")[int(at) % 2] if at >= SCALE_UP_AT else "rep-a",
               latency_ms=8000.0 if in_burst else 900.0,
               status="timeout" if failed else "ok")
        at += 0.25 if in_burst else 1.5
    return b
