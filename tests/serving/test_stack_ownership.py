"""The stack touches only what is ours: our Serve applications, the Ray head we started.

A fake Ray dashboard on 127.0.0.1 answers the Serve REST API the way Serve does
(``PUT`` replaces the whole set of applications) and records every request; another
team's application lives on it. A fake ``ray`` in a fake serving environment starts
a fake head (a GCS, a raylet with a worker in its own process group, a dashboard), so
no real Ray runs and nothing but this test's processes is ever signalled.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import psutil
import pytest
import yaml
from typer.testing import CliRunner

from cluster_eval.settings import Settings
from serving import cpu_share, stack
from serving.errors import StackError
from tests.conftest import loopback_server

OURS = {
    "name": "llm", "route_prefix": "/", "import_path": "serving.app:build_app",
    "args": {"model": "embedded:smollm2"},
    "deployments": [{"name": "LLMReplica", "user_config": {"config_version": "v1"}}],
}
THEIRS = {
    "name": "team-b", "route_prefix": "/b", "import_path": "team_b.app:graph",
    "runtime_env": {"pip": ["team-b==3.1"]},
    "deployments": [{"name": "Ranker", "num_replicas": 3, "user_config": {"k": 10}}],
}


def _running(config: dict, status: str = "RUNNING") -> dict:
    return {
        "status": status,
        "deployed_app_config": copy.deepcopy(config),
        "deployments": {
            d["name"]: {
                "status": "HEALTHY" if status == "RUNNING" else "UNHEALTHY",
                "message": "" if status == "RUNNING" else "replica crashed",
                "replicas": [{"replica_id": f"{config['name']}-r1", "state": "RUNNING"}],
                "deployment_config": {"user_config": d.get("user_config")},
            }
            for d in config.get("deployments") or []
        },
    }


class FakeDashboard:
    """Serve's REST API: GET the applications, PUT the whole set, DELETE = shutdown."""

    def __init__(self) -> None:
        self.apps: dict[str, dict] = {}
        self.requests: list[tuple[str, dict | None]] = []
        self.url = ""

    @property
    def puts(self) -> list[dict]:
        return [body for method, body in self.requests if method == "PUT"]

    def handle(self, method: str, body: dict | None) -> tuple[int, dict]:
        self.requests.append((method, body))
        if method == "GET":
            return 200, {"applications": copy.deepcopy(self.apps)}
        if method == "DELETE":
            self.apps = {}
            return 200, {}
        new = {}
        for config in body["applications"]:
            old = self.apps.get(config["name"])
            same = old is not None and old["deployed_app_config"] == config
            new[config["name"]] = old if same else _running(config)
        self.apps = new
        return 200, {}


@pytest.fixture
def dashboard() -> Iterator[FakeDashboard]:
    fake = FakeDashboard()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if self.path != stack.SERVE_API:
                self.send_response(404)
                self.end_headers()
                return
            code, payload = fake.handle(self.command, body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server's names)

        def log_message(self, *args: object) -> None:
            pass

    with loopback_server(Handler) as fake.url:
        yield fake


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A fake `ray`: `start` leaves a fake head behind (in its own process group, like the
# real one) and exits; every call is logged so a test can say `ray stop` never ran.
FAKE_RAY = textwrap.dedent('''\
    #!{python}
    import os, subprocess, sys
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "calls.log"), "a") as log:
        log.write(" ".join(sys.argv[1:]) + "\\n")
    if sys.argv[1] != "start" or os.environ.get("FAKE_RAY_EXIT"):
        sys.exit(int(os.environ.get("FAKE_RAY_EXIT", "0")))
    args = dict(a.split("=", 1) for a in sys.argv[2:] if "=" in a)
    session = os.path.join(here, "..", "ray-tmp", "session_" + os.environ["FAKE_RAY_MARK"])
    os.makedirs(session, exist_ok=True)
    sleep = "import time; time.sleep(300)"
    worker = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
              "'import time; time.sleep(300)', sys.argv[1]], start_new_session=True); "
              "time.sleep(300)")
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
    subprocess.Popen([sys.executable, "-c", sleep, "--gcs_server_port=" + args["--port"],
                      "--session-dir=" + session], **quiet)
    subprocess.Popen([sys.executable, "-c", worker, "--fake-worker=" + os.environ["FAKE_RAY_MARK"],
                      "--session_dir=" + session], **quiet)
    subprocess.Popen([sys.executable, os.path.join(here, "dashboard.py"),
                      args["--dashboard-port"], os.environ["FAKE_RAY_MARK"]], **quiet)
    ''')

FAKE_HEAD_DASHBOARD = textwrap.dedent('''\
    import sys, threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"applications": {}}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait(300)  # a leftover never outlives the test run by much
    ''')


def _fake_head_processes(mark: str) -> list[psutil.Process]:
    """Every process of a fake head (each has ``mark`` in an argument)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE \
                and any(mark in arg for arg in proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture
def serve_env(tmp_path, monkeypatch) -> Iterator[Path]:
    """A serving environment whose `ray` is the fake above; what it started is killed
    at the end, whatever the test did."""
    env = tmp_path / "serve-env"
    (env / "bin").mkdir(parents=True)
    ray = env / "bin" / "ray"
    ray.write_text(FAKE_RAY.format(python=sys.executable))
    ray.chmod(0o755)
    (env / "bin" / "dashboard.py").write_text(FAKE_HEAD_DASHBOARD)
    mark = uuid.uuid4().hex
    monkeypatch.setenv("FAKE_RAY_MARK", mark)
    yield env
    for proc in _fake_head_processes(mark):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def _settings(tmp_path: Path, dashboard_url: str, serve_env: Path | None = None) -> Settings:
    return Settings(home=tmp_path / "home", serve_env=serve_env or tmp_path / "no-env",
                    dashboard_url=dashboard_url, ray_address=f"127.0.0.1:{_free_port()}")


def _config(tmp_path: Path, *apps: dict) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump({"applications": list(apps)}))
    return path


def _ray_calls(serve_env: Path) -> list[str]:
    log = serve_env / "bin" / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


# --- applications ------------------------------------------------------------------


def test_applying_our_config_sends_the_other_teams_app_back_as_deployed(tmp_path, dashboard):
    dashboard.apps = {"team-b": _running(THEIRS)}
    result = stack.apply(_config(tmp_path, OURS), _settings(tmp_path, dashboard.url),
                         timeout_s=10)
    assert result.action == "deployed"
    (body,) = dashboard.puts
    sent = {a["name"]: a for a in body["applications"]}
    assert sent == {"team-b": THEIRS, "llm": OURS}
    assert dashboard.apps["team-b"]["deployed_app_config"] == THEIRS


def test_down_deletes_only_our_apps_and_never_runs_ray_stop(tmp_path, dashboard, serve_env):
    settings = _settings(tmp_path, dashboard.url, serve_env)
    dashboard.apps = {"team-b": _running(THEIRS)}
    stack.apply(_config(tmp_path, OURS), settings, timeout_s=10)
    result = stack.down(settings)
    assert result.deleted_apps == ["llm"] and result.head_processes_stopped == 0
    assert [m for m, _ in dashboard.requests if m != "GET"] == ["PUT", "PUT"]
    assert dashboard.puts[-1] == {"applications": [THEIRS]}
    assert list(dashboard.apps) == ["team-b"]
    assert _ray_calls(serve_env) == []  # no `ray stop`: it stops every Ray on the host


def test_down_without_a_record_of_our_apps_deletes_nothing(tmp_path, dashboard, serve_env):
    dashboard.apps = {"team-b": _running(THEIRS), "llm": _running(OURS)}
    stack.down(_settings(tmp_path, dashboard.url, serve_env))
    assert [m for m, _ in dashboard.requests if m != "GET"] == []
    assert set(dashboard.apps) == {"team-b", "llm"} and _ray_calls(serve_env) == []


def test_an_app_deployed_without_a_config_file_is_never_overwritten(tmp_path, dashboard):
    dashboard.apps = {"notebook": {**_running(THEIRS), "deployed_app_config": None}}
    with pytest.raises(StackError, match="'notebook'.*nothing was changed"):
        stack.apply(_config(tmp_path, OURS), _settings(tmp_path, dashboard.url), timeout_s=10)
    assert dashboard.puts == [] and "notebook" in dashboard.apps


def test_our_failed_app_is_redeployed_without_deleting_anyone_elses(tmp_path, dashboard):
    dashboard.apps = {"team-b": _running(THEIRS, "DEPLOY_FAILED"),
                      "llm": _running(OURS, "DEPLOY_FAILED")}
    result = stack.apply(_config(tmp_path, OURS), _settings(tmp_path, dashboard.url),
                         timeout_s=10)
    assert result.action == "deployed"
    assert "DELETE" not in [m for m, _ in dashboard.requests]
    removed, redeployed = dashboard.puts
    assert removed["applications"] == [THEIRS]
    assert {a["name"] for a in redeployed["applications"]} == {"team-b", "llm"}
    assert dashboard.apps["team-b"]["status"] == "DEPLOY_FAILED"  # theirs, left as it was


# --- the local head ------------------------------------------------------------------


def _autogroup_on() -> bool:
    try:
        return cpu_share.AUTOGROUP_ENABLED.read_text().strip() == "1"
    except OSError:
        return False


def _sleeper(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", *args],
                            start_new_session=True)


def test_down_stops_the_head_we_started_and_no_other_ray(tmp_path, serve_env):
    settings = _settings(tmp_path, f"http://127.0.0.1:{_free_port()}", serve_env)
    other_raylet = _sleeper("--session_dir=/tmp/ray/session_of_another_team")
    other_gcs = _sleeper("--gcs_server_port=6379")
    try:
        assert stack.start_local_head(settings, timeout_s=30)
        record = stack.recorded_head(settings)
        assert record.session_dir and len(record.processes) == 3
        mark = os.environ["FAKE_RAY_MARK"]
        head = {p.pid for p in _fake_head_processes(mark)}
        assert len(head) == 4  # gcs, raylet, dashboard, and the raylet's worker
        result = stack.down(settings)
        assert result.head_processes_stopped == 4
        assert _fake_head_processes(mark) == []
        assert other_raylet.poll() is None and other_gcs.poll() is None
        assert stack.recorded_head(settings) is None
        assert [c.split()[0] for c in _ray_calls(serve_env)] == ["start"]
    finally:
        for proc in (other_raylet, other_gcs):
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not _autogroup_on(), reason="the kernel schedules without autogroup")
def test_the_head_we_start_yields_the_cpu_to_every_other_session(tmp_path, serve_env):
    settings = _settings(tmp_path, f"http://127.0.0.1:{_free_port()}", serve_env)
    other_team = _sleeper("--session_dir=/tmp/ray/session_of_another_team")
    ours_before = cpu_share.session_niceness(os.getpid())
    try:
        assert stack.start_local_head(settings, timeout_s=30)
        head_session = [p for p in _fake_head_processes(os.environ["FAKE_RAY_MARK"])
                        if os.getsid(p.pid) == stack.recorded_head(settings).pgid]
        assert len(head_session) == 3  # gcs, raylet, dashboard
        assert {cpu_share.session_niceness(p.pid) for p in head_session} == {19}
        assert cpu_share.session_niceness(os.getpid()) == ours_before
        assert cpu_share.session_niceness(other_team.pid) == 0
        stack.down(settings)
    finally:
        other_team.kill()
        other_team.wait()


def test_a_head_started_with_session_nice_0_keeps_the_default_share(tmp_path, serve_env):
    settings = _settings(tmp_path, f"http://127.0.0.1:{_free_port()}", serve_env)
    settings = settings.model_copy(update={"ray_head_session_nice": 0})
    assert stack.start_local_head(settings, timeout_s=30)
    head = _fake_head_processes(os.environ["FAKE_RAY_MARK"])
    assert {cpu_share.session_niceness(p.pid) for p in head} <= {0, None}
    stack.down(settings)


def test_yielding_the_cpu_of_a_process_that_is_gone_changes_nothing_and_never_raises():
    gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    gone.wait()
    assert cpu_share.yield_session_cpu(gone.pid, 19) is False
    assert cpu_share.session_niceness(gone.pid) is None


def test_a_recorded_pid_now_held_by_another_process_is_left_alone(tmp_path):
    settings = _settings(tmp_path, f"http://127.0.0.1:{_free_port()}")
    stranger = _sleeper("--session_dir=/tmp/ray/session_recycled")
    try:
        ticks = int(Path(f"/proc/{stranger.pid}/stat").read_text().rpartition(")")[2]
                    .split()[19])
        stack._write_json(stack.state_dir(settings) / "ray-head.json", {
            "gcs_address": settings.ray_address, "dashboard_url": settings.dashboard_url,
            "session_dir": "/tmp/ray/session_recycled", "pgid": stranger.pid,
            "boot_id": stack._boot_id(),
            # the head we recorded had this pid but started earlier: it is gone
            "processes": [{"pid": stranger.pid, "start_ticks": ticks - 1, "command": "raylet"}],
        })
        assert stack.stop_local_head(settings) == 0
        assert stranger.poll() is None
        assert stack.recorded_head(settings) is None
    finally:
        stranger.kill()
        stranger.wait()


def test_stack_up_checks_the_config_before_it_starts_a_head(tmp_path, serve_env, monkeypatch):
    from cluster_eval.cli import app

    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    monkeypatch.setenv("CLUSTER_EVAL_SERVE_ENV", str(serve_env))
    monkeypatch.setenv("CLUSTER_EVAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLUSTER_EVAL_DASHBOARD_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("FAKE_RAY_EXIT", "1")  # should a head be started, it fails at once
    result = CliRunner().invoke(app, ["stack", "up", "--config", str(binary)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.output.splitlines()
    assert line.startswith("error: ") and "not a text file" in line
    assert _ray_calls(serve_env) == []
