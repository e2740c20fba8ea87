"""Chaos: the Prefect worker dies mid-run, taking the run it started with it.

A machine or container that goes away, an OOM kill, ``kill -9``: the worker and the
flow-run process it started stop at once. No hook of the flow can run then, and no
state is sent, so the run would show Running forever. What must happen instead: the
server marks the run Crashed when its heartbeats stop
(flows/automations/crash-unresponsive-runs.yaml) and the failure notification fires
(flows/automations/notify-on-failure.yaml, through a notification block).

This script builds all of it on 127.0.0.1 — a Prefect server with its own home in a
temporary folder, a webhook receiver, the block, both automations, a process worker
(flow heartbeats every 30 s), the ``cluster-eval-canary`` deployment from
prefect.yaml on its own pool, and the embedded stack unless one answers — starts a
run, SIGKILLs the worker and everything it started once the run's ``replay`` task is
running, and reports the run's final state and the notification, with timings.
Everything it started is stopped at the end (the stack only if it started it).

    .venv/bin/python scripts/chaos_worker.py      # exit 0: Crashed and notified

Heavy (a server, a worker, the embedded stack, a real run: ~5 minutes on 2 cores), so
it is not part of ``make test``; docs/nightly.md reports its last output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import yaml

PROJECT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
AUTOMATIONS = PROJECT / "flows" / "automations"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
POOL, DEPLOYMENT, BLOCK = "chaos-pool", "cluster-eval-canary", "chaos-alerts"
HEARTBEAT_S = 30
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webhook:
    """Records every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.arrived = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.received.append(json.loads(body or b"{}"))
                hook.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, cwd=PROJECT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def stop_group(process: subprocess.Popen, grace_s: float = 20.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def create_automations(block_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    ids = []
    with get_client(sync_client=True) as client:
        for name in ("crash-unresponsive-runs.yaml", "notify-on-failure.yaml"):
            text = (AUTOMATIONS / name).read_text().replace(PLACEHOLDER, block_id)
            (spec,) = yaml.safe_load(text)["automations"]
            if spec["trigger"].get("posture") == "Proactive":
                spec["trigger"]["within"] = 3 * HEARTBEAT_S  # the file's 600 s suits 180 s
            ids.append(str(client.create_automation(AutomationCore.model_validate(spec))))
    return ids


def wait_for_replay(flow_run_id: str, timeout_s: float = 900) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run_ = client.read_flow_run(flow_run_id)
            if run_.state and run_.state.is_final():
                raise SystemExit(f"the run ended before the kill: {run_.state.name} "
                                 f"{run_.state.message}")
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[flow_run_id])))
            if any(t.name.startswith("replay") and t.state and t.state.is_running()
                   for t in tasks):
                return
            time.sleep(1)
    raise SystemExit(f"the run's replay never started within {timeout_s:.0f} s")


def wait_final(flow_run_id: str, timeout_s: float) -> tuple[str, str, float | None]:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(flow_run_id).state
            if state and state.is_final():
                return state.name, state.message or "", time.monotonic()
            if time.monotonic() > deadline:
                return (state.name if state else "none"), "", None
            time.sleep(2)


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="cluster-eval-chaos-"))
    port = free_port()
    env = {**os.environ,
           "PREFECT_HOME": str(home / "prefect"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_UI_URL": f"http://127.0.0.1:{port}",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "CLUSTER_EVAL_PROJECT_DIR": str(PROJECT)}
    os.environ.update(env)  # this process's Prefect client talks to the same server
    prefect = str(VENV_BIN / "prefect")
    server = worker = None
    stack_started = False
    ok = False
    try:
        say(f"Prefect server on 127.0.0.1:{port} (home {home})")
        server = started([prefect, "server", "start", "--host", "127.0.0.1", "--port",
                          str(port)], env, home / "server.log")
        for _ in range(180):
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise SystemExit(f"the server never answered; see {home / 'server.log'}")

        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        webhook = Webhook()
        block = CustomWebhookNotificationBlock(
            name=BLOCK, url=webhook.url, json_data={"subject": "{{subject}}", "body": "{{body}}"})
        block_id = str(block.save(BLOCK, overwrite=True))
        say(f"automations created: {create_automations(block_id)}")

        run([prefect, "work-pool", "create", POOL, "--type", "process"], env)
        run([prefect, "--no-prompt", "deploy", "--name", DEPLOYMENT, "--pool", POOL], env)
        say(f"deployment cluster-eval/{DEPLOYMENT} on pool {POOL}")

        from cluster_eval.settings import Settings
        from serving import stack as stack_control

        if not stack_control.dashboard_up(Settings()):
            say("embedded stack up")
            run([str(VENV_BIN / "cluster-eval"), "stack", "up", "--config",
                 "serving/configs/embedded-cpu.yaml"], env)
            stack_started = True

        worker = started([prefect, "worker", "start", "--pool", POOL, "--type", "process"],
                         {**env, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)},
                         home / "worker.log")
        from prefect.deployments import run_deployment

        # no notification_block: only the automations can tell anyone about this run
        flow_run = run_deployment(
            f"cluster-eval/{DEPLOYMENT}", timeout=0, parameters={"notification_block": None},
            job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}})
        flow_run_id = str(flow_run.id)
        say(f"flow run {flow_run.name} ({flow_run_id}) submitted; waiting for its replay")
        wait_for_replay(flow_run_id)

        tree = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        killed_at = time.monotonic()
        for proc in tree:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        say("SIGKILL worker and everything it started: " + "; ".join(
            f"{p.pid}" for p in tree))
        worker.wait()
        gone, alive = psutil.wait_procs(tree, timeout=10)
        say(f"processes left of the killed tree: {[p.pid for p in alive]}")

        name, message, ended = wait_final(flow_run_id, timeout_s=4 * HEARTBEAT_S + 180)
        crashed_after = f"{ended - killed_at:.0f} s" if ended else "never"
        say(f"run state: {name} after {crashed_after}: {message}")
        notified = webhook.arrived.wait(120)
        if notified:
            sent = webhook.received[0]
            say(f"notification after {time.monotonic() - killed_at:.0f} s: "
                f"subject {sent.get('subject')!r}")
            print(sent.get("body", ""))
        else:
            say("no notification arrived")
        ok = name == "Crashed" and notified
        print(f"OUTCOME: {'PASS' if ok else 'FAIL'}: worker killed mid-replay -> run {name}, "
              f"notification {'sent' if notified else 'missing'}")
    finally:
        for process in (worker, server):
            if process is not None:
                stop_group(process)
        if stack_started:
            say("embedded stack down")
            subprocess.run([str(VENV_BIN / "cluster-eval"), "stack", "down"], env=env,
                           cwd=PROJECT)
        if ok:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"logs kept in {home}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
