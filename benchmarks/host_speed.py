"""Does the host-speed probe follow the speed the engines decode at?

    .venv/bin/python benchmarks/host_speed.py [--requests 180] [--block 20]

The figures behind ``serving/host_speed.py`` and history's ``max_host_speed_gap``
(docs/checks.md). Needs the stack: it is started (the embedded default), and stopped
again, if no dashboard answers; a running one is used as it is.

One request at a time to an idle replica (a fixed 48-token chat completion at
temperature 0), each between three probes before and three after, one second apart:
the time per output token against the probe's median, and for comparison a numpy
sum over 128 MB and a pure-Python loop. Prints each probe's correlation with the time
per token over single requests and over blocks of ``--block`` requests, and the
blocks. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import httpx
import numpy as np

from cluster_eval.settings import PROJECT_ROOT, Settings
from serving import stack
from serving.host_speed import HostSpeedProbe

MODEL = "smollm2-135m-instruct"
BODY = {"model": MODEL, "temperature": 0, "max_tokens": 48,
        "messages": [{"role": "user",
                      "content": "Explain in a few sentences why the sky is blue."}]}


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000.0


def python_loop() -> int:
    total = 0
    for i in range(100_000):
        total += i * i % 7
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=180)
    parser.add_argument("--block", type=int, default=20)
    args = parser.parse_args()
    settings = Settings()
    started_head = stack.start_local_head(settings)
    if started_head:
        stack.apply(PROJECT_ROOT / "serving" / "configs" / "embedded-cpu.yaml", settings,
                    timeout_s=600)
    memmove = HostSpeedProbe()
    array = np.ones(32 << 20, dtype=np.float32)
    probes: dict[str, Callable[[], float]] = {
        "memmove (the probe)": memmove.probe,
        "numpy sum 128 MB": lambda: timed(array.sum),
        "python loop": lambda: timed(python_loop),
    }
    rows: list[tuple[float, ...]] = []
    try:
        with httpx.Client(base_url=settings.serve_url, timeout=120) as client:
            client.post("/v1/chat/completions", json=BODY)  # warm-up
            for _ in range(args.requests):
                before = {name: [p() for _ in range(3)] for name, p in probes.items()}
                started = time.perf_counter()
                answer = client.post("/v1/chat/completions", json=BODY).json()
                per_token = (time.perf_counter() - started) * 1000.0 / max(
                    1, answer["usage"]["completion_tokens"])
                after = {name: [p() for _ in range(3)] for name, p in probes.items()}
                rows.append((per_token, *(statistics.median(before[n] + after[n])
                                          for n in probes)))
                time.sleep(1.0)
    finally:
        if started_head:
            stack.down(settings)
    data = np.array(rows)
    names = list(probes)
    print(f"{len(rows)} idle requests; ms per output token p10/p50/p90: "
          f"{np.percentile(data[:, 0], [10, 50, 90]).round(1).tolist()}")
    blocks = np.array([np.median(data[i:i + args.block], axis=0)
                       for i in range(0, len(rows) - args.block + 1, args.block)])
    for k, name in enumerate(names, start=1):
        single = np.corrcoef(data[:, k], data[:, 0])[0, 1]
        grouped = np.corrcoef(blocks[:, k], blocks[:, 0])[0, 1] if len(blocks) > 2 else None
        print(f"{name:>20}: p50 {np.median(data[:, k]):.2f} ms; correlation with the time "
              f"per token {single:.2f} per request"
              + (f", {grouped:.2f} per block of {args.block}" if grouped is not None else ""))
    print("blocks (ms per token, then each probe's median):")
    for block in blocks:
        print("  " + "  ".join(f"{v:6.2f}" for v in block))


if __name__ == "__main__":
    main()
