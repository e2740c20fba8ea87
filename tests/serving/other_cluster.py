"""Another team's Ray cluster on this host, started by a test the way a team starts one.

A plain ``ray start --head`` from the serving environment — never through
``serving.stack``, so nothing of cluster-eval records it — on ports of its own (every
port Ray opens, so it can run beside the embedded stack's head) with its own temp
directory, and one tiny pure-Python Serve application, ``team-b`` at ``/team-b``,
deployed over the dashboard REST API as ``serve deploy`` does. Its module lives in a
folder on the head's ``PYTHONPATH``, which Ray hands on to every worker.

The cluster's processes are its process group (``ray start`` runs in a session of
its own), every process naming its temp directory, and their descendants. They are
stopped by signalling exactly those; ``ray stop`` would stop every Ray on the host.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from cluster_eval.settings import Settings
from serving import stack as stack_control

APP = "team-b"
ROUTE = "/team-b"
# The other team's code: a constant answer that names the replica that gave it.
MODULE = textwrap.dedent('''\
    from ray import serve


    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Ranker:
        def __call__(self, request) -> str:
            return "team-b ranker v1 from " + serve.get_replica_context().replica_id.unique_id


    app = Ranker.bind()
    ''')
APP_CONFIG = {"name": APP, "route_prefix": ROUTE, "import_path": "team_b_ranker:app",
              "deployments": [{"name": "Ranker", "num_replicas": 1}]}
WORKER_PORTS = (21000, 21299)  # below the ephemeral range, above the default 10002-19999


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports nothing listens on now."""
    with ExitStack() as held:
        ports = []
        for _ in range(n):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


@dataclass(frozen=True)
class ProcessId:
    """A process told apart from a later one given its pid."""

    pid: int
    started: float
    command: str = field(compare=False)  # an actor's title changes with the method it runs


@dataclass
class OtherTeamCluster:
    dashboard_url: str
    serve_url: str
    temp_dir: Path
    pgid: int

    # --- its processes ------------------------------------------------------------

    def processes(self, *, idle_workers: bool = True) -> set[ProcessId]:
        """Every live process of this cluster. Ray starts and reaps idle pool workers
        (``ray::IDLE``, or ``default_worker.py`` before they name themselves) on its
        own; ``idle_workers=False`` leaves them out, which leaves the processes that
        live as long as the cluster or one of its actors."""
        marker = str(self.temp_dir)
        table = {}
        for proc in psutil.process_iter(["pid", "ppid", "cmdline", "create_time", "status"]):
            if proc.info["status"] != psutil.STATUS_ZOMBIE:
                table[proc.info["pid"]] = proc
        roots = {pid for pid, p in table.items() if _pgid(pid) == self.pgid
                 or any(marker in arg for arg in p.info["cmdline"] or [])}
        children: dict[int, list[int]] = {}
        for pid, proc in table.items():
            children.setdefault(proc.info["ppid"], []).append(pid)
        found, pending = set(), list(roots)
        while pending:
            pid = pending.pop()
            if pid not in found:
                found.add(pid)
                pending.extend(children.get(pid, []))
        ids = set()
        for pid in found:
            command = " ".join(table[pid].info["cmdline"] or [])
            pool_worker = command.startswith("ray::IDLE") or "default_worker.py" in command
            if idle_workers or not pool_worker:
                ids.add(ProcessId(pid, table[pid].info["create_time"], command[:160]))
        return ids

    # --- its Serve application ----------------------------------------------------

    def serve_status(self) -> stack_control.StackStatus:
        return stack_control.status(Settings(dashboard_url=self.dashboard_url))

    def replicas(self) -> list[tuple[str, str, int | None]]:
        """``team-b``'s replicas: (id, state, pid)."""
        return [(r.replica_id, r.state, r.pid)
                for d in self.serve_status().deployments if d.app == APP for r in d.replicas]

    def deployed_config(self) -> dict:
        with httpx.Client(timeout=10) as client:
            payload = client.get(self.dashboard_url + stack_control.SERVE_API).json()
        return payload["applications"][APP]["deployed_app_config"]

    def answer(self, client: httpx.Client | None = None) -> httpx.Response:
        if client is None:
            return httpx.get(self.serve_url + ROUTE, timeout=10)
        return client.get(self.serve_url + ROUTE)

    # --- its life -----------------------------------------------------------------

    def deploy_app(self, serve_port: int, timeout_s: float = 120.0) -> None:
        """What ``serve deploy`` does: PUT the team's whole config, wait until RUNNING."""
        body = {"proxy_location": "HeadOnly",
                "http_options": {"host": "127.0.0.1", "port": serve_port},
                "applications": [APP_CONFIG]}
        response = httpx.put(self.dashboard_url + stack_control.SERVE_API, json=body, timeout=60)
        response.raise_for_status()
        deadline = time.monotonic() + timeout_s
        while self.serve_status().applications.get(APP) != "RUNNING":
            assert time.monotonic() < deadline, f"{APP} not RUNNING after {timeout_s:.0f} s"
            time.sleep(0.5)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM every process of the cluster, SIGKILL what is left after ``grace_s``."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            for proc in self.processes():
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.processes():
                return
        raise AssertionError(f"processes of the other team's cluster survived SIGKILL: "
                             f"{sorted(p.pid for p in self.processes())}")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@contextmanager
def other_team_cluster(settings: Settings) -> Iterator[OtherTeamCluster]:
    """Start the other team's head and app; stop them and remove their files after."""
    ray = stack_control.ray_binary(settings)
    # short: Ray puts Unix sockets under it (a socket path holds at most 107 bytes)
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-team-b-", dir="/tmp"))
    module_dir = temp_dir / "code"
    module_dir.mkdir()
    (module_dir / "team_b_ranker.py").write_text(MODULE)
    (gcs, dashboard, serve, client, agent_listen, agent_grpc, runtime_env, metrics,
     node_manager, object_manager) = free_ports(10)
    env = stack_control.head_environment(settings)  # what our app needs on a cluster
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(module_dir), env.get("PYTHONPATH"))
                                        if p)
    command = [
        str(ray), "start", "--head", f"--port={gcs}", "--node-ip-address=127.0.0.1",
        "--num-cpus=2", "--object-store-memory=300000000", "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent_listen}",
        f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
        f"--metrics-export-port={metrics}", f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}", f"--min-worker-port={WORKER_PORTS[0]}",
        f"--max-worker-port={WORKER_PORTS[1]}", f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
    ]
    starter = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    cluster = OtherTeamCluster(dashboard_url=f"http://127.0.0.1:{dashboard}",
                               serve_url=f"http://127.0.0.1:{serve}", temp_dir=temp_dir,
                               pgid=starter.pid)
    try:
        _, stderr = starter.communicate(timeout=180)
        assert starter.returncode == 0, f"ray start failed: {stderr[-2000:]}"
        deadline = time.monotonic() + 120
        while not stack_control.dashboard_up(Settings(dashboard_url=cluster.dashboard_url)):
            assert time.monotonic() < deadline, "the other team's dashboard never answered"
            time.sleep(0.5)
        cluster.deploy_app(serve)
        yield cluster
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)
