"""Serving-stack figures on this machine: start-up to HEALTHY, memory, tokens/s.

Run from the orchestration env (the stack is started if no dashboard answers):

    .venv/bin/python benchmarks/serving_stack.py [--skip-cold-start]

It prints figures; it asserts nothing. Start-up is measured by deleting the app and
applying the config again (a cold deploy of fresh replicas on a running Ray head).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import httpx
import psutil
import yaml

from cluster_eval.settings import PROJECT_ROOT, Settings
from scenarios.model import catalog
from serving import stack

MODEL = "smollm2-135m-instruct"
OUTPUT_TOKENS = 128


def fixed_two_replicas(out: Path) -> Path:
    """The embedded config held at two replicas: the healthy scenario's overlay."""
    out.write_text(yaml.safe_dump(catalog(["healthy"])[0].serve_config(PROJECT_ROOT)))
    return out


def cold_start(config: Path, settings: Settings) -> float:
    with httpx.Client(base_url=settings.dashboard_url, timeout=60) as client:
        client.delete(stack.SERVE_API).raise_for_status()
    stack._wait_gone(settings, ["llm"], 120)
    started = time.monotonic()
    stack.apply(config, settings, timeout_s=600)
    return time.monotonic() - started


def replica_memory(settings: Settings) -> dict[str, float]:
    """PSS (MiB) of each replica's worker plus the vLLM engine process it spawned.

    PSS splits shared pages (torch, the model mmap) between the processes that map
    them, so the replicas' figures add up to what they really take together.
    """
    current = stack.status(settings)
    memory = {}
    for dep in current.deployments:
        for replica in dep.replicas:
            if replica.pid is None:
                continue
            proc = psutil.Process(replica.pid)
            procs = [proc, *proc.children(recursive=True)]
            memory[replica.replica_id] = sum(p.memory_full_info().pss for p in procs) / 2**20
    return memory


async def tokens_per_second(base_url: str, concurrency: int, rounds: int) -> tuple[float, float]:
    """(output tokens/s overall, mean per-request tokens/s) at a fixed concurrency."""
    body = {"model": MODEL, "max_tokens": OUTPUT_TOKENS, "ignore_eos": True, "temperature": 0,
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}]}
    per_request = []
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def one() -> int:
            t0 = time.monotonic()
            response = await client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            tokens = response.json()["usage"]["completion_tokens"]
            per_request.append(tokens / (time.monotonic() - t0))
            return tokens

        await one()  # warm-up
        per_request.clear()
        t0 = time.monotonic()
        total = 0
        for _ in range(rounds):
            total += sum(await asyncio.gather(*(one() for _ in range(concurrency))))
        elapsed = time.monotonic() - t0
    return total / elapsed, statistics.mean(per_request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-cold-start", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    config = fixed_two_replicas(Path("/tmp/cluster-eval-bench-config.yaml"))

    head_started = time.monotonic()
    started_head = stack.start_local_head(settings)
    head_s = time.monotonic() - head_started
    first = stack.apply(config, settings, timeout_s=600)
    print(f"ray head start:            {head_s:6.1f} s" if started_head else
          "ray head start:            (already running)")
    print(f"apply ({first.action}):{'':8}{first.seconds_to_healthy:6.1f} s")
    if not args.skip_cold_start:
        print(f"cold deploy to HEALTHY:    {cold_start(config, settings):6.1f} s  (2 replicas)")
    for replica_id, mib in replica_memory(settings).items():
        print(f"memory replica {replica_id}: {mib:7.0f} MiB  (worker + engine PSS)")
    for concurrency, rounds in ((1, 3), (4, 2), (16, 2), (32, 1)):
        overall, per_request = asyncio.run(
            tokens_per_second(settings.serve_url, concurrency, rounds))
        print(f"concurrency {concurrency:>2}: {overall:7.1f} output tok/s overall, "
              f"{per_request:6.1f} tok/s per request  ({OUTPUT_TOKENS} tokens each)")


if __name__ == "__main__":
    main()
