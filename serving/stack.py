"""Stack control over HTTP: apply a ServeConfigV2 file, wait for health, report, tear down.

The orchestrator talks to Ray only through the dashboard's Serve REST API (the same
declarative path ``serve deploy`` takes), so it works the same against a local head
and a remote production cluster and never imports ``ray``. Re-applying a file whose
only changes are ``user_config`` or autoscaling reconfigures the running replicas in
place; Serve decides that, and ``apply`` reports which of the two happened.

The one local-only step is ``start_local_head``: it runs ``ray start`` from the
serving environment, with the variable that makes the Serve proxy hand the
``x-pin-replica`` header to our router as the request's session id.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel

from cluster_eval.settings import Settings
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


class ApplyResult(BaseModel):
    action: Literal["unchanged", "reconfigured", "deployed"]
    seconds_to_healthy: float
    status: StackStatus


def load_config(path: Path) -> dict[str, Any]:
    """Read a ServeConfigV2 file; errors name the file and the field."""
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise StackError(f"cannot read serve config {path}: {exc}") from exc
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
            return response.json()
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


def _classify(current: dict[str, Any], wanted: dict[str, Any]) -> str:
    """What re-applying ``wanted`` will do, by Serve's own rule."""
    if not current:
        return "deployed"
    action = "unchanged"
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


def apply(config_path: Path, settings: Settings, *, timeout_s: float = 600.0) -> ApplyResult:
    """Deploy or reconfigure from a ServeConfigV2 file and wait until every app runs."""
    wanted = load_config(config_path)
    before = _get_serve(settings)
    action = _classify(_deployed_configs(before), wanted)
    failed = [n for n, a in (before.get("applications") or {}).items()
              if a.get("status") == "DEPLOY_FAILED"]
    started = time.monotonic()
    with _client(settings, timeout=60.0) as client:
        if failed and action == "unchanged":
            # Serve ignores a re-apply of an identical config; a failed app must go first.
            client.delete(SERVE_API).raise_for_status()
            _wait_gone(settings, failed, timeout_s)
            action = "deployed"
        if action != "unchanged":
            response = client.put(SERVE_API, json=wanted)
            if response.status_code >= 400:
                raise StackError(
                    f"Ray rejected {config_path} ({response.status_code}): {response.text[:2000]}"
                )
    final = wait_healthy(settings, wanted, timeout_s=timeout_s, since=before)
    return ApplyResult(
        action=action, seconds_to_healthy=time.monotonic() - started, status=final
    )


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


def start_local_head(settings: Settings, *, timeout_s: float = 120.0) -> bool:
    """Start a Ray head on this machine unless one answers; True when it started one."""
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
    result = subprocess.run(
        command, env=head_environment(settings), capture_output=True, text=True, timeout=timeout_s
    )
    if result.returncode != 0:
        raise RayStartFailed(f"`ray start` failed ({result.returncode}): {_tail(result.stderr)}")
    deadline = time.monotonic() + timeout_s
    while not dashboard_up(settings):
        if time.monotonic() > deadline:
            raise RayStartFailed(f"Ray started but no dashboard at {settings.dashboard_url}")
        time.sleep(1.0)
    return True


def up(config_path: Path, settings: Settings, *, timeout_s: float = 600.0) -> ApplyResult:
    start_local_head(settings)
    return apply(config_path, settings, timeout_s=timeout_s)


def down(settings: Settings, *, timeout_s: float = 120.0) -> None:
    """Delete the Serve apps (replicas shut their engines down), then stop the local head."""
    if dashboard_up(settings):
        with _client(settings, timeout=60.0) as client:
            client.delete(SERVE_API)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not (_get_serve(settings).get("applications") or {}):
                break
            time.sleep(1.0)
    try:
        binary = ray_binary(settings)
    except RayStartFailed:
        return
    subprocess.run(
        [str(binary), "stop", "--force"],
        env=head_environment(settings), capture_output=True, text=True, timeout=timeout_s,
    )
