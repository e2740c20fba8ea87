"""How late another session's heartbeat wakes while the engines serve, per CPU weight
of the Ray head's session.

    .venv/bin/python benchmarks/cpu_share.py [--nices 0,19] [--seconds 60] [--concurrency 32]

The figures behind ``serving/cpu_share.py`` and docs/serving.md. Needs a head that
cluster-eval started (the stack is started, and stopped again, if no dashboard
answers); a head it did not start is never touched, and the script says so and stops.

For each autogroup nice of the head's session (written to ``/proc/<pid>/autogroup`` of
a recorded head process; the whole session follows): ``--concurrency`` workers send
chat requests back to back to the two-replica healthy deployment for ``--seconds``,
while a heartbeat in this script's session (a child process) sleeps 50 ms at a time
and records how late it woke. Prints the heartbeat's lateness p50/p99/max and the
requests the engines answered per second. The head's weight is put back at the end.
It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from cluster_eval.settings import PROJECT_ROOT, Settings
from scenarios.model import catalog
from serving import stack
from serving.cpu_share import session_niceness

MODEL = "smollm2-135m-instruct"
PERIOD_S = 0.05

HEARTBEAT = """
import json, sys, time
period, seconds = float(sys.argv[1]), float(sys.argv[2])
late, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    asleep = time.monotonic()
    time.sleep(period)
    late.append((time.monotonic() - asleep - period) * 1000)
print(json.dumps(late))
"""


def head_pid(settings: Settings) -> int | None:
    """A live process of the head cluster-eval recorded; None when there is none."""
    record = stack.recorded_head(settings)
    if record is None:
        return None
    for process in record.processes:
        if session_niceness(process.pid) is not None:
            return process.pid
    return None


def set_session_nice(pid: int, niceness: int) -> None:
    Path(f"/proc/{pid}/autogroup").write_text(f"{niceness}\n")


async def serve_load(base_url: str, concurrency: int, seconds: float) -> int:
    """Requests answered while ``concurrency`` workers send back to back."""
    body = {"model": MODEL, "max_tokens": 64, "temperature": 0,
            "messages": [{"role": "user", "content": "Describe a lighthouse at night."}]}
    deadline = time.monotonic() + seconds
    answered = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def worker() -> None:
            nonlocal answered
            while time.monotonic() < deadline:
                response = await client.post("/v1/chat/completions", json=body)
                answered += response.status_code == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered


def measure(settings: Settings, concurrency: int, seconds: float) -> tuple[list[float], float]:
    """(heartbeat lateness in ms, requests answered per second) under the load."""
    heartbeat = subprocess.Popen(
        [sys.executable, "-c", HEARTBEAT, str(PERIOD_S), str(seconds)],
        stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    answered = asyncio.run(serve_load(settings.serve_url, concurrency, seconds))
    elapsed = time.monotonic() - started
    out, _ = heartbeat.communicate(timeout=seconds + 60)
    return json.loads(out), answered / elapsed


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nices", default="0,19")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    settings = Settings()
    started_head = stack.start_local_head(settings)
    pid = head_pid(settings)
    if pid is None:
        raise SystemExit(f"the Ray head at {settings.dashboard_url} was not started by "
                         "cluster-eval: its CPU weight is not this script's to change")
    config = Path("/tmp/cluster-eval-bench-config.yaml")
    config.write_text(yaml.safe_dump(catalog(["healthy"])[0].serve_config(PROJECT_ROOT)))
    stack.apply(config, settings, timeout_s=600)
    original = session_niceness(pid)
    print(f"head session autogroup nice before: {original}; {args.concurrency} concurrent "
          f"chat requests (64 tokens) for {args.seconds:.0f} s; heartbeat every "
          f"{PERIOD_S * 1000:.0f} ms in this session")
    try:
        asyncio.run(serve_load(settings.serve_url, 2, 5))  # warm-up
        for niceness in (int(n) for n in args.nices.split(",")):
            set_session_nice(pid, niceness)
            late, rate = measure(settings, args.concurrency, args.seconds)
            print(f"head nice {niceness:>2}: heartbeat late p50 {quantile(late, 0.5):6.1f} ms, "
                  f"p99 {quantile(late, 0.99):6.1f} ms, max {max(late):7.1f} ms "
                  f"({len(late)} beats); engines answered {rate:.2f} req/s")
    finally:
        if original is not None:
            set_session_nice(pid, original)
        if started_head:
            stack.down(settings)


if __name__ == "__main__":
    main()
