"""Stack control over HTTP: apply a ServeConfigV2 file, wait for health, report, tear down.

The orchestrator talks to Ray only through the dashboard's Serve REST API (the same
declarative path ``serve deploy`` takes), so it works the same against a local head
and a remote production cluster and never imports ``ray``. Re-applying a file whose
only changes are ``user_config`` or autoscaling reconfigures the running replicas in
place; Serve decides that, and ``apply`` reports which of the two happened.

The one local-only step is ``start_local_head``: it runs ``ray start`` from the
serving environment, with the variable that makes the Serve proxy hand the
``x-pin-replica`` header to our router as the request's session id.

Only what is ours is touched. ``PUT /api/serve/applications/`` replaces the whole set
of applications on a cluster, so every PUT carries the other applications back as
they were deployed (their ``deployed_app_config``) and adds, changes or removes only
the applications named in our config; the names we deployed are recorded in the
state directory (``<home>/state/serve-apps.json``) so ``down`` deletes those and no
other. ``ray stop`` has no per-cluster flag and stops every Ray process on the host,
so it is never run: ``start_local_head`` records the head it started
(``<home>/state/ray-head.json``: session directory, process group, each process's
pid and start time) and ``stop_local_head`` signals those processes and their
descendants only, after checking each is still the process that was recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel

from cluster_eval.settings import Settings
from serving.cpu_share import yield_session_cpu
from serving.errors import DashboardUnreachable, RayStartFailed, StackError, StackNotHealthy
from serving.telemetry import HEADER_PIN

SERVE_API = "/api/serve/applications/"


class ReplicaInfo(BaseModel):
    replica_id: str
    state: str
    pid: int | None = None
    start_time_s: float | None = None


class DeploymentInfo(BaseModel):
    app: str
    name: str
    status: str
    message: str = ""
    target_num_replicas: int | None = None
    user_config: dict[str, Any] | None = None
    replicas: list[ReplicaInfo]


class StackStatus(BaseModel):
    applications: dict[str, str]
    deployments: list[DeploymentInfo]

    @property
    def running_replica_ids(self) -> list[str]:
        return [
            r.replica_id for d in self.deployments for r in d.replicas if r.state == "RUNNING"
        ]

    @property
    def healthy(self) -> bool:
        return bool(self.applications) and all(s == "RUNNING" for s in self.applications.values())


Action = Literal["unchanged", "reconfigured", "deployed"]


class ApplyResult(BaseModel):
    action: Action
    seconds_to_healthy: float
    status: StackStatus


def load_config(path: Path) -> dict[str, Any]:
    """Read a ServeConfigV2 file; errors name the file and the field."""
    try:
        config = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise StackError(f"cannot read serve config {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise StackError(
            f"{path}: not a text file (not UTF-8 at byte {exc.start}); "
            "a ServeConfigV2 file is YAML"
        ) from exc
    except yaml.YAMLError as exc:
        raise StackError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("applications"), list):
        raise StackError(f"{path}: a ServeConfigV2 file needs an 'applications' list")
    for i, app in enumerate(config["applications"]):
        for field in ("name", "import_path"):
            if not isinstance(app, dict) or not app.get(field):
                raise StackError(f"{path}: applications[{i}].{field} is missing")
    return config


def _client(settings: Settings, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=settings.dashboard_url, timeout=timeout)


def _get_serve(settings: Settings) -> dict[str, Any]:
    try:
        with _client(settings) as client:
            response = client.get(SERVE_API)
            response.raise_for_status()
            status: dict[str, Any] = response.json()
            return status
    except httpx.HTTPError as exc:
        raise DashboardUnreachable(
            f"no Ray dashboard answered at {settings.dashboard_url}: {exc}"
        ) from exc


def dashboard_up(settings: Settings) -> bool:
    try:
        _get_serve(settings)
    except DashboardUnreachable:
        return False
    return True


def status(settings: Settings) -> StackStatus:
    return _parse_status(_get_serve(settings))


def _parse_status(payload: dict[str, Any]) -> StackStatus:
    apps = payload.get("applications") or {}
    deployments = []
    for app_name, app in apps.items():
        for name, dep in (app.get("deployments") or {}).items():
            deployments.append(
                DeploymentInfo(
                    app=app_name,
                    name=name,
                    status=dep.get("status", ""),
                    message=dep.get("message") or "",
                    target_num_replicas=dep.get("target_num_replicas"),
                    user_config=(dep.get("deployment_config") or {}).get("user_config"),
                    replicas=[ReplicaInfo.model_validate(r) for r in dep.get("replicas") or []],
                )
            )
    return StackStatus(
        applications={name: app.get("status", "") for name, app in apps.items()},
        deployments=deployments,
    )


def _deployed_configs(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        name: app.get("deployed_app_config")
        for name, app in (payload.get("applications") or {}).items()
    }


def _classify(current: dict[str, Any], wanted: dict[str, Any]) -> Action:
    """What re-applying ``wanted`` will do, by Serve's own rule."""
    if not current:
        return "deployed"
    action: Action = "unchanged"
    for app in wanted["applications"]:
        old = current.get(app["name"])
        if old is None:
            return "deployed"
        restart_fields = ("import_path", "args", "runtime_env", "route_prefix")
        if any(_norm(old.get(f)) != _norm(app.get(f)) for f in restart_fields):
            return "deployed"
        old_deps = {d["name"]: d for d in old.get("deployments") or []}
        for dep in app.get("deployments") or []:
            before = old_deps.get(dep["name"], {})
            lightweight = (
                "user_config", "autoscaling_config", "num_replicas", "max_ongoing_requests"
            )
            heavy = {k: v for k, v in dep.items() if k not in lightweight}
            heavy_before = {k: v for k, v in before.items() if k not in lightweight}
            if any(_norm(v) != _norm(heavy_before.get(k)) for k, v in heavy.items()):
                return "deployed"
            if any(_norm(dep.get(k)) != _norm(before.get(k)) for k in lightweight if k in dep):
                action = "reconfigured"
    return action


def _norm(value: Any) -> Any:
    """Comparable form: Serve echoes ``1`` back as ``1.0`` and reorders keys."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- what is ours --------------------------------------------------------------------


def state_dir(settings: Settings) -> Path:
    """Where the stack records what it started and deployed (``<home>/state``)."""
    return settings.home / "state"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"cannot read {path}: {exc}") from exc


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(partial, path)  # readers see the old record or the new one


def _apps_record(settings: Settings) -> Path:
    return state_dir(settings) / "serve-apps.json"


def owned_apps(settings: Settings) -> list[str]:
    """Applications this project deployed on ``settings.dashboard_url``."""
    return list((_read_json(_apps_record(settings)) or {}).get(settings.dashboard_url, []))


def _record_apps(settings: Settings, *, add: Iterable[str] = (),
                 remove: Iterable[str] = ()) -> None:
    add, remove = set(add), set(remove)
    if not add and not remove:
        return
    record = _read_json(_apps_record(settings)) or {}
    names = (set(record.get(settings.dashboard_url, [])) | add) - remove
    if names:
        record[settings.dashboard_url] = sorted(names)
    else:
        record.pop(settings.dashboard_url, None)
    _write_json(_apps_record(settings), record)


def _other_apps(payload: dict[str, Any], ours: set[str], settings: Settings) -> list[Any]:
    """The configs of every application not in ``ours``, exactly as they were deployed.

    A PUT replaces the whole set, so these go back with each one; an application
    deployed without a config file (``serve.run``) cannot be sent back, so nothing is
    applied rather than deleting it."""
    configs = []
    for name, app in (payload.get("applications") or {}).items():
        if name in ours or app.get("status") == "DELETING":
            continue
        config = app.get("deployed_app_config")
        if not config:
            raise StackError(
                f"application '{name}' on {settings.dashboard_url} was not deployed from a "
                f"config file (it has no deployed_app_config); PUT {SERVE_API} replaces every "
                "application, so applying would delete it: nothing was changed"
            )
        configs.append(config)
    return configs


def _put(client: httpx.Client, body: dict[str, Any], what: str) -> None:
    try:
        response = client.put(SERVE_API, json=body)
    except httpx.HTTPError as exc:
        raise DashboardUnreachable(f"{what}: the Ray dashboard did not answer: {exc}") from exc
    if response.status_code >= 400:
        raise StackError(f"Ray rejected {what} ({response.status_code}): {response.text[:2000]}")


# --- apply ---------------------------------------------------------------------------


def apply(config_path: Path, settings: Settings, *, timeout_s: float = 600.0) -> ApplyResult:
    """Deploy or reconfigure from a ServeConfigV2 file and wait until every app runs."""
    return apply_config(load_config(config_path), settings, timeout_s=timeout_s,
                        source=str(config_path))


def apply_config(wanted: dict[str, Any], settings: Settings, *, timeout_s: float = 600.0,
                 source: str = "the serve config") -> ApplyResult:
    """:func:`apply` of a loaded config: the applications it names are deployed or
    reconfigured, every other application on the cluster is sent back unchanged."""
    ours = [a["name"] for a in wanted["applications"]]
    options = {k: v for k, v in wanted.items() if k != "applications"}
    before = _get_serve(settings)
    others = _other_apps(before, set(ours), settings)
    action = _classify(_deployed_configs(before), wanted)
    current = before.get("applications") or {}
    failed = [n for n in ours if (current.get(n) or {}).get("status") == "DEPLOY_FAILED"]
    started = time.monotonic()
    with _client(settings, timeout=60.0) as client:
        if failed and action == "unchanged":
            # Serve ignores a re-apply of an identical config; a failed app must go first.
            kept = [a for a in wanted["applications"] if a["name"] not in failed]
            _put(client, {**options, "applications": others + kept},
                 f"removing the failed {failed} before re-applying {source}")
            _wait_gone(settings, failed, timeout_s)
            action = "deployed"
        if action != "unchanged":
            _put(client, {**options, "applications": others + wanted["applications"]}, source)
    _record_apps(settings, add=ours)
    final = wait_healthy(settings, wanted, timeout_s=timeout_s, since=before)
    return ApplyResult(
        action=action, seconds_to_healthy=time.monotonic() - started, status=final
    )


def delete_apps(settings: Settings, names: Iterable[str], *,
                timeout_s: float = 120.0) -> list[str]:
    """Delete the named applications (a PUT of every other one); return those deleted."""
    wanted = set(names)
    payload = _get_serve(settings)
    present = sorted(n for n in (payload.get("applications") or {}) if n in wanted)
    if present:
        with _client(settings, timeout=60.0) as client:
            _put(client, {"applications": _other_apps(payload, wanted, settings)},
                 f"deleting {present}")
        _wait_gone(settings, present, timeout_s)
    return present


def _wait_gone(settings: Settings, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        apps = _get_serve(settings).get("applications") or {}
        if not any(n in apps for n in names):
            return
        time.sleep(1.0)
    raise StackError(f"applications {names} were not deleted within {timeout_s:.0f} s")


def wait_healthy(
    settings: Settings,
    wanted: dict[str, Any],
    *,
    timeout_s: float,
    since: dict[str, Any] | None = None,
    poll_s: float = 1.0,
) -> StackStatus:
    """Wait until the apps in ``wanted`` run the wanted user_config on RUNNING replicas.

    Raises ``StackNotHealthy`` naming the failing deployment and its message.
    """
    names = [a["name"] for a in wanted["applications"]]
    wanted_user_configs = {
        (a["name"], d["name"]): d["user_config"]
        for a in wanted["applications"]
        for d in a.get("deployments") or []
        if "user_config" in d
    }
    deadline = time.monotonic() + timeout_s
    last: StackStatus | None = None
    while True:
        payload = _get_serve(settings)
        last = _parse_status(payload)
        apps = payload.get("applications") or {}
        for name in names:
            app_status = apps.get(name, {}).get("status")
            if app_status == "DEPLOY_FAILED":
                dep = _worst_deployment(last, name)
                raise StackNotHealthy(
                    f"application '{name}' failed to deploy: deployment "
                    f"'{dep.name if dep else '?'}': {_tail(dep.message if dep else '')}",
                    deployment=dep.name if dep else None,
                )
        if _is_healthy(last, names, wanted_user_configs):
            return last
        if time.monotonic() > deadline:
            dep = _worst_deployment(last, names[0])
            raise StackNotHealthy(
                f"not healthy after {timeout_s:.0f} s: deployment "
                f"'{dep.name if dep else '?'}' is {dep.status if dep else 'missing'}"
                f" {_tail(dep.message) if dep else ''}",
                deployment=dep.name if dep else None,
            )
        time.sleep(poll_s)


def _is_healthy(
    status_: StackStatus, names: list[str], user_configs: dict[tuple[str, str], Any]
) -> bool:
    if any(status_.applications.get(n) != "RUNNING" for n in names):
        return False
    for dep in status_.deployments:
        if dep.app not in names:
            continue
        if dep.status != "HEALTHY":
            return False
        if any(r.state != "RUNNING" for r in dep.replicas) or not dep.replicas:
            return False
        wanted = user_configs.get((dep.app, dep.name))
        if wanted is not None and _norm(dep.user_config) != _norm(wanted):
            return False
    return True


def _worst_deployment(status_: StackStatus, app: str) -> DeploymentInfo | None:
    deps = [d for d in status_.deployments if d.app == app]
    deps.sort(key=lambda d: d.status == "HEALTHY")
    return deps[0] if deps else None


def _tail(message: str, limit: int = 1500) -> str:
    message = message.strip()
    return message if len(message) <= limit else "…" + message[-limit:]


# --- local head ------------------------------------------------------------------


def ray_binary(settings: Settings) -> Path:
    candidate = settings.serve_env / "bin" / "ray"
    if candidate.is_file():
        return candidate
    found = shutil.which("ray")
    if found:
        return Path(found)
    raise RayStartFailed(
        f"no `ray` in the serving environment {settings.serve_env}; run `make setup` first"
    )


def head_environment(settings: Settings) -> dict[str, str]:
    """Environment of the local head; Ray passes it on to every worker it starts."""
    env = dict(os.environ)
    env.update(
        {
            "RAY_SERVE_SESSION_ID_HEADER_KEY": HEADER_PIN,
            "RAY_USAGE_STATS_ENABLED": "0",
            "CLUSTER_EVAL_HOME": str(settings.home),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
            # Ray exports metrics every 10 s by default; the telemetry sampler reads 1 Hz.
            "RAY_metrics_report_interval_ms": "1000",
        }
    )
    # The orchestrator's virtualenv must not shadow the serving one in workers.
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join([str(settings.serve_env / "bin"), env.get("PATH", "")])
    return env


@dataclass(frozen=True)
class _Process:
    """One entry of ``/proc``: enough to tell a process from a later one with its pid."""

    pid: int
    ppid: int
    pgid: int
    start_ticks: int  # since boot; with the pid, names one process for the boot's life
    zombie: bool
    cmdline: tuple[str, ...]

    @property
    def program(self) -> str:
        return os.path.basename(self.cmdline[0]) if self.cmdline else ""


def _read_process(pid: int) -> _Process | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone, or not ours to read
        return None
    fields = stat.rpartition(")")[2].split()  # the name in parentheses may hold spaces
    return _Process(
        pid=pid, ppid=int(fields[1]), pgid=int(fields[2]), start_ticks=int(fields[19]),
        zombie=fields[0] in ("Z", "X"),
        cmdline=tuple(a.decode(errors="replace") for a in cmdline.split(b"\0") if a),
    )


def _process_table() -> dict[int, _Process]:
    if not Path("/proc/self/stat").exists():
        raise StackError("finding the local head's processes needs /proc (Linux)")
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := _read_process(int(entry.name))):
            table[proc.pid] = proc
    return table


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class RecordedProcess(BaseModel):
    pid: int
    start_ticks: int
    command: str


class HeadRecord(BaseModel):
    """The Ray head ``start_local_head`` started: what ``stop_local_head`` may stop."""

    gcs_address: str
    dashboard_url: str
    session_dir: str | None
    pgid: int
    boot_id: str
    processes: list[RecordedProcess]


def _is(proc: _Process | None, recorded: RecordedProcess) -> bool:
    """``proc`` is the recorded process, not a later one that was given its pid."""
    return proc is not None and not proc.zombie and proc.start_ticks == recorded.start_ticks


def _head_record(settings: Settings) -> Path:
    return state_dir(settings) / "ray-head.json"


def recorded_head(settings: Settings) -> HeadRecord | None:
    data = _read_json(_head_record(settings))
    return HeadRecord.model_validate(data) if data else None


_SESSION_FLAGS = ("--session-dir=", "--session_dir=")


def _session_dir(processes: Iterable[_Process]) -> str | None:
    for proc in processes:
        for arg in proc.cmdline:
            if arg.startswith(_SESSION_FLAGS):
                return arg.split("=", 1)[1]
    return None


def _record_head(settings: Settings, pgid: int) -> HeadRecord:
    """Find the processes ``ray start`` left behind (its process group: it ran in a
    session of its own) and record them with their start times."""
    table = _process_table()
    members = [p for p in table.values() if p.pgid == pgid and not p.zombie]
    if not members:  # a Ray that detaches its services: the GCS that holds our port
        port = settings.ray_address.rsplit(":", 1)[1]
        members = [p for p in table.values() if p.program == "gcs_server"
                   and f"--gcs_server_port={port}" in p.cmdline]
    if not members:
        raise RayStartFailed(
            f"`ray start` succeeded but none of its processes could be found; the head at "
            f"{settings.ray_address} is not recorded, so `stack down` will not stop it"
        )
    record = HeadRecord(
        gcs_address=settings.ray_address, dashboard_url=settings.dashboard_url,
        session_dir=_session_dir(members), pgid=pgid, boot_id=_boot_id(),
        processes=[RecordedProcess(pid=p.pid, start_ticks=p.start_ticks,
                                   command=" ".join(p.cmdline)[:300]) for p in members],
    )
    _write_json(_head_record(settings), record.model_dump())
    return record


def start_local_head(settings: Settings, *, timeout_s: float = 120.0) -> bool:
    """Start a Ray head on this machine unless one answers; True when it started one.

    The head it starts is recorded (:func:`recorded_head`) for :func:`stop_local_head`.
    """
    if dashboard_up(settings):
        return False
    host, port = settings.ray_address.rsplit(":", 1)
    dashboard_port = settings.dashboard_url.rsplit(":", 1)[-1]
    command = [
        str(ray_binary(settings)), "start", "--head",
        f"--port={port}",
        f"--node-ip-address={host}",
        f"--num-cpus={settings.ray_num_cpus}",
        f"--metrics-export-port={settings.metrics_port}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        "--include-dashboard=true",
        "--disable-usage-stats",
    ]
    # A session of its own: the head's processes share a process group that is not the
    # caller's, so they can be told apart from every other Ray on the host.
    process = subprocess.Popen(
        command, env=head_environment(settings), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    # The whole session gets the weight: `ray start` and every service and worker it forks.
    yield_session_cpu(process.pid, settings.ray_head_session_nice)
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.communicate()
        raise RayStartFailed(f"`ray start` did not finish within {timeout_s:.0f} s") from exc
    if process.returncode != 0:
        raise RayStartFailed(f"`ray start` failed ({process.returncode}): {_tail(stderr)}")
    _record_head(settings, process.pid)
    deadline = time.monotonic() + timeout_s
    while not dashboard_up(settings):
        if time.monotonic() > deadline:
            raise RayStartFailed(f"Ray started but no dashboard at {settings.dashboard_url}")
        time.sleep(1.0)
    return True


def _head_processes(record: HeadRecord, table: dict[int, _Process]) -> dict[int, _Process]:
    """The recorded head's live processes: those recorded (same pid *and* start time),
    its process group while a recorded member is still in it, every process of its
    session directory, and all their descendants (workers, vLLM engines)."""
    verified = [table[r.pid] for r in record.processes if _is(table.get(r.pid), r)]
    if not verified:
        return {}
    roots = {p.pid for p in verified}
    if any(p.pgid == record.pgid for p in verified):
        roots |= {p.pid for p in table.values() if p.pgid == record.pgid}
    if record.session_dir:
        flags = {f + record.session_dir for f in _SESSION_FLAGS}
        roots |= {p.pid for p in table.values() if flags & set(p.cmdline)}
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, pending = set(), list(roots)
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, []))
    found -= _ancestors(table)  # never this process or what started it
    return {pid: table[pid] for pid in found if not table[pid].zombie}


def local_head_pids(settings: Settings) -> set[int] | None:
    """The live processes of the head :func:`start_local_head` recorded (its services,
    workers and vLLM engines); None when no head of this project's is recorded here."""
    record = recorded_head(settings)
    if record is None or record.boot_id != _boot_id():
        return None
    return set(_head_processes(record, _process_table()))


def _ancestors(table: dict[int, _Process]) -> set[int]:
    pid, seen = os.getpid(), set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = table[pid].ppid if pid in table else 0
    return seen


def _alive(proc: _Process) -> bool:
    now = _read_process(proc.pid)
    return now is not None and not now.zombie and now.start_ticks == proc.start_ticks


def _signal_and_wait(procs: list[_Process], grace_s: float) -> None:
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for proc in procs:
            if _alive(proc):  # checked right before: a pid is not reused while it lives
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + wait_s
        while any(_alive(p) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        procs = [p for p in procs if _alive(p)]
        if not procs:
            return


def _bucket(proc: _Process) -> str:
    return proc.program if proc.program in ("raylet", "gcs_server") else "services"


def stop_local_head(settings: Settings, *, grace_s: float = 10.0) -> int:
    """Stop the head :func:`start_local_head` recorded; return how many processes it
    stopped (0 when none is recorded or the recorded processes are gone).

    Like ``ray stop``: the raylet first (its workers and agents follow it), then the
    other services, the GCS last; SIGTERM, then SIGKILL after ``grace_s``."""
    path = _head_record(settings)
    record = recorded_head(settings)
    if record is None:
        return 0
    known: dict[int, _Process] = {}  # found once stay known: a worker outlives its raylet
    if record.boot_id == _boot_id():
        for bucket in ("raylet", "services", "gcs_server"):
            known.update(_head_processes(record, _process_table()))
            _signal_and_wait([p for p in known.values() if _bucket(p) == bucket], grace_s)
        # a process found only now (a worker the raylet was spawning as it went down,
        # after its bucket's turn) was never signalled: it gets its turn too
        known.update(_head_processes(record, _process_table()))
        _signal_and_wait([p for p in known.values() if _alive(p)], grace_s)
        left = sorted(p.pid for p in known.values() if _alive(p))
        if left:
            raise StackError(f"processes of the local head are still running: {left}")
    path.unlink(missing_ok=True)
    if record.session_dir:  # `ray stop` forgets the address `ray start` wrote there
        address_file = Path(record.session_dir).parent / "ray_current_cluster"
        try:
            if address_file.read_text().strip() == record.gcs_address:
                address_file.unlink()
        except OSError:
            pass
    return len(known)


def up(config_path: Path, settings: Settings, *, timeout_s: float = 600.0) -> ApplyResult:
    """Read and check the config, start a local head unless one answers, apply."""
    wanted = load_config(config_path)
    start_local_head(settings)
    return apply_config(wanted, settings, timeout_s=timeout_s, source=str(config_path))


class DownResult(BaseModel):
    deleted_apps: list[str]
    head_processes_stopped: int


def down(settings: Settings, *, apps: Iterable[str] | None = None,
         timeout_s: float = 120.0) -> DownResult:
    """Delete our Serve applications (``apps``, default: those this project deployed
    here), then stop the local head if this project started it. Any other application,
    and any Ray this project did not start, is left alone."""
    names = owned_apps(settings) if apps is None else list(apps)
    deleted: list[str] = []
    failure: StackError | None = None
    if names and dashboard_up(settings):
        try:
            deleted = delete_apps(settings, names, timeout_s=timeout_s)
        except StackError as exc:  # the head may still be ours to stop
            failure = exc
    stopped = stop_local_head(settings)
    if failure is not None and not stopped:
        raise failure
    _record_apps(settings, remove=names)
    return DownResult(deleted_apps=deleted, head_processes_stopped=stopped)
