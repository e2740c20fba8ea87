"""Chaos on the real stack: a replica is SIGKILLed while a replay is in flight.

What a nightly run must still be able to say afterwards: every scheduled request is
exactly one span (none lost, none doubled), every request the dead replica had not
answered is an error span that says why, and Serve brings the stack back to its two
replicas without anyone's help.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import polars as pl
import psutil
import pytest

from serving import stack as stack_control
from traffic.format import TrafficRecord
from traffic.replay import ReplayPlan, ReplayResult, run_replay
from traffic.schedule import build_replay
from traffic.transport import ClientSpec

pytestmark = pytest.mark.stack

MODEL = "smollm2-135m-instruct"
REQUESTS, SPACING_S, KILL_AT_S = 48, 0.25, 4.0  # 4 req/s for 12 s: both replicas busy


def records() -> list[TrafficRecord]:
    return [TrafficRecord(
        request_id=f"chaos-{i:02d}", arrival=i * SPACING_S, tenant_id="chaos",
        body={"model": MODEL, "max_tokens": 48, "temperature": 0,
              "messages": [{"role": "user", "content": f"Tell a short story about {i} cats."}]},
    ) for i in range(REQUESTS)]


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_replica_killed_mid_replay_loses_no_span_and_the_stack_recovers(stack, tmp_path):
    before = stack_control.status(stack.settings)
    victim = next(r for d in before.deployments for r in d.replicas if r.state == "RUNNING")
    assert victim.pid is not None
    engines = psutil.Process(victim.pid).children(recursive=True)

    schedule = build_replay(records())
    plan = ReplayPlan(schedule, timeout_s=120, lead_s=0.5)
    result: dict[str, ReplayResult] = {}
    started = time.time()
    replaying = threading.Thread(target=lambda: result.update(
        done=run_replay(plan, tmp_path, ClientSpec(stack.base_url))))
    replaying.start()
    time.sleep(max(0.0, started + plan.lead_s + KILL_AT_S - time.time()))
    killed_at = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    replaying.join(timeout=300)
    assert not replaying.is_alive(), "the replay did not finish after the kill"

    spans = pl.read_parquet(result["done"].spans_path)
    assert spans.height == REQUESTS
    assert sorted(spans["span_id"]) == sorted(r.span_id for r in schedule)
    failed = spans.filter(pl.col("status") != "ok")
    assert failed.height > 0, "no request was in flight on the killed replica"
    assert failed["error_class"].null_count() == 0
    assert set(failed["replica_id"].drop_nulls()) <= {victim.replica_id}
    # what the victim answered, it answered before it died
    on_victim = spans.filter(pl.col("replica_id") == victim.replica_id)
    finished = on_victim.with_columns(
        ended=pl.col("sent_at").dt.epoch("us") / 1e6 + pl.col("latency_ms") / 1000)
    late_ok = finished.filter((pl.col("status") == "ok") & (pl.col("ended") > killed_at + 0.5))
    assert late_ok.height == 0, late_ok.select("span_id", "ended")
    assert spans.filter(pl.col("status") == "ok").height >= REQUESTS // 2

    # Serve replaces the dead replica; its engine does not outlive it
    recovered = stack_control.wait_healthy(stack.settings, stack.config, timeout_s=300)
    running = recovered.running_replica_ids
    assert len(running) == 2 and victim.replica_id not in running
    deadline = time.monotonic() + 30
    while any(alive(e) for e in engines):
        assert time.monotonic() < deadline, f"the killed replica's engine still runs: {engines}"
        time.sleep(1)
