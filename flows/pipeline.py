"""The nightly run's steps as plain functions; the Prefect flow only wires them.

Each function is one step of ``flows/cluster_eval.py`` and is tested without
Prefect. Outside errors are mapped at this boundary to the flows exception tree:
a stack that never became healthy or an endpoint that does not answer is an
:class:`InfrastructureFailure`, an unusable input a :class:`ConfigurationError`.

A run's files live in ``<runs_dir>/<run_id>/``::

    traffic.jsonl        the records replayed (built or loaded), for the record
    baseline.parquet     the baseline spans (golden set on one idle replica)
    replay.parquet       the night's spans (traffic + pinned golden + tenant burst)
    spans.parquet        both, the run's spans as loaded into the warehouse
    telemetry.parquet    cluster telemetry sampled beside the replay
    scores.parquet       span × rubric scores
    report.html          the HTML report; data-docs/ the Great Expectations Data Docs
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from cluster_eval.settings import PROJECT_ROOT, Settings
from flows.errors import ConfigurationError, InfrastructureFailure
from flows.plan import BurstOptions, baseline_schedule, night_schedule

if TYPE_CHECKING:
    from checks.gate import GateResult

log = logging.getLogger(__name__)

__all__ = [
    "DeployOutcome",
    "ReplayOutcome",
    "RunPaths",
    "check_endpoint",
    "deploy",
    "evaluate",
    "export_otlp",
    "export_prometheus",
    "golden_round_s",
    "load_warehouse",
    "prepare_traffic",
    "report",
    "resolve",
    "run_baseline",
    "run_files",
    "run_replay",
    "score",
    "teardown",
]


SAMPLER_LEAD_S = 3.0
CONNECTION_ERROR_LIMIT = 0.5  # share of connection errors that makes a phase an outage


def resolve(path: str | Path) -> Path:
    """A parameter path: absolute, else relative to the working directory if it exists
    there, else relative to the project (so defaults work from any directory)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return (PROJECT_ROOT / candidate).resolve()


@dataclass(frozen=True)
class RunPaths:
    run_dir: Path

    @classmethod
    def create(cls, runs_dir: Path, run_id: str) -> RunPaths:
        run_dir = runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        return cls(run_dir)

    @property
    def traffic(self) -> Path:
        return self.run_dir / "traffic.jsonl"

    @property
    def baseline(self) -> Path:
        return self.run_dir / "baseline.parquet"

    @property
    def replay_dir(self) -> Path:
        return self.run_dir / "replay"

    @property
    def spans(self) -> Path:
        return self.run_dir / "spans.parquet"

    @property
    def scores(self) -> Path:
        return self.run_dir / "scores.parquet"

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def data_docs(self) -> Path:
        return self.run_dir / "data-docs"

    @property
    def quarantine(self) -> Path:
        return self.run_dir / "quarantine.jsonl"


def run_files(parameters: dict[str, Any], flow_run_id: Any, settings: Settings
              ) -> dict[str, Path]:
    """Where a flow run with these parameters keeps its warehouse, report and Data Docs."""
    out_dir, warehouse = parameters.get("out_dir"), parameters.get("warehouse")
    paths = RunPaths((resolve(out_dir) if out_dir else settings.runs_dir) / str(flow_run_id))
    return {
        "warehouse": resolve(warehouse) if warehouse else settings.warehouse_path,
        "report": paths.report,
        "data_docs": paths.data_docs / "index.html",
        "run_dir": paths.run_dir,
    }


# --- stack ---------------------------------------------------------------------------


@dataclass
class DeployOutcome:
    action: str
    seconds_to_healthy: float
    replica_ids: list[str]
    app: str
    deployments: list[str]
    config: dict[str, Any]


def deploy(config_path: Path, settings: Settings, *, timeout_s: float) -> DeployOutcome:
    """Bring the stack up (a local head if none answers) and apply the ServeConfigV2 file.

    Idempotent: re-applying an unchanged file changes nothing; a user_config change
    reconfigures the running replicas in place.
    """
    from serving import stack
    from serving.errors import StackError, StackNotHealthy

    try:
        config = stack.load_config(config_path)
    except StackError as exc:
        raise ConfigurationError(str(exc)) from exc
    try:
        result = stack.up(config_path, settings, timeout_s=timeout_s)
    except StackNotHealthy as exc:
        raise InfrastructureFailure(f"stack never became healthy: {exc}") from exc
    except StackError as exc:  # DashboardUnreachable, RayStartFailed, a rejected config
        raise InfrastructureFailure(f"{type(exc).__name__}: {exc}") from exc
    apps = [a["name"] for a in config["applications"]]
    deps = [d for d in result.status.deployments if d.app == apps[0]]
    replicas = [r.replica_id for d in deps for r in d.replicas if r.state == "RUNNING"]
    return DeployOutcome(
        action=result.action,
        seconds_to_healthy=result.seconds_to_healthy,
        replica_ids=replicas,
        app=apps[0],
        deployments=[d.name for d in deps],
        config=config,
    )


def check_endpoint(base_url: str, *, timeout_s: float = 10.0) -> None:
    """Fail fast when the OpenAI endpoint does not answer at all."""
    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s, trust_env=False) as client:
            response = client.get("/v1/models")
    except httpx.HTTPError as exc:
        raise InfrastructureFailure(
            f"serving endpoint {base_url} unreachable: {type(exc).__name__}: {exc}"
        ) from exc
    if response.status_code >= 500:
        raise InfrastructureFailure(
            f"serving endpoint {base_url} answers {response.status_code} on /v1/models"
        )


def teardown(settings: Settings) -> None:
    from serving import stack

    stack.down(settings)


# --- traffic -------------------------------------------------------------------------


def prepare_traffic(
    source: Path,
    out: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    quarantine: Path | None = None,
) -> int:
    """Load or build the night's traffic and write it to ``out`` (JSONL); return its size.

    ``source`` is a traffic file (.jsonl / .parquet), a capture directory (with the
    ``since``/``until`` window) or a workload spec (.yaml / .yml, built here).
    """
    from traffic.builders import build_workload, load_spec
    from traffic.errors import TrafficError
    from traffic.loader import load_capture_dir, load_traffic
    from traffic.writer import write_traffic

    try:
        if source.is_dir():
            records = load_capture_dir(source, since, until, quarantine_path=quarantine).records
        elif source.suffix in (".yaml", ".yml"):
            records = build_workload(load_spec(source))
        else:
            records = load_traffic(source, quarantine_path=quarantine).records
    except TrafficError as exc:
        raise ConfigurationError(f"traffic {source}: {exc}") from exc
    if not records:
        raise ConfigurationError(f"traffic {source}: no records (window {since} – {until})")
    write_traffic(records, out)
    return len(records)


def _records(path: Path) -> list[Any]:
    from traffic.errors import TrafficError
    from traffic.loader import load_traffic

    try:
        return load_traffic(path).records
    except TrafficError as exc:
        raise ConfigurationError(f"traffic {path}: {exc}") from exc


def run_baseline(
    golden: Path, replica_id: str, base_url: str, out: Path, *, timeout_s: float
) -> dict[str, int]:
    """Send the golden set one request at a time to one replica; spans mode ``baseline``."""
    from traffic.replay import ReplayPlan, replay
    from traffic.spans import write_spans
    from traffic.transport import make_client, run_async

    requests = baseline_schedule(_records(golden), replica_id)

    async def sequential() -> list[Any]:
        spans: list[Any] = []
        async with make_client(base_url) as client:
            for request in requests:
                plan = ReplayPlan([request], timeout_s=timeout_s, lead_s=0.0)
                spans += await replay(plan, client)
        return spans

    spans = run_async(sequential)
    write_spans(spans, out)
    statuses: dict[str, int] = {}
    for span in spans:
        statuses[span.status] = statuses.get(span.status, 0) + 1
    _refuse_if_unreachable(statuses, base_url)
    return statuses


def golden_round_s(baseline: Path) -> float:
    """Seconds one idle replica needed for the golden set, one request at a time: the
    baseline's mean answered latency times its requests (0 when none was answered or
    there is no baseline). The night paces each pinned golden round over at least this
    long (``flows/plan.py``). Timed-out requests do not stretch it: a cluster that
    answers nothing would otherwise pace a round at the timeout per request."""
    from traffic.spans import read_spans

    if not baseline.exists():
        return 0.0
    spans = read_spans(baseline).select(["status", "latency_ms"]).to_pylist()
    answered = [float(s["latency_ms"]) for s in spans if s["status"] == "ok"]
    if not answered:
        return 0.0
    return sum(answered) / len(answered) * len(spans) / 1000.0


@dataclass
class ReplayOutcome:
    spans_path: Path
    telemetry_path: Path | None
    counts: dict[str, int]
    statuses: dict[str, int]
    wall_s: float
    lag_p99_ms: float | None
    telemetry_samples: int
    notes: list[str] = field(default_factory=list)
    # the host's CPU while the replay ran, when the cluster runs on it (serving/host_cpu.py)
    host_cpu: dict[str, Any] | None = None
    # the host's memory speed around the replay, likewise (serving/host_speed.py)
    host_speed: dict[str, Any] | None = None


def run_replay(
    traffic: Path,
    golden: Path,
    replicas: list[str],
    settings: Settings,
    out_dir: Path,
    *,
    speedup: float,
    golden_rounds: int,
    burst: BurstOptions | None,
    timeout_s: float,
    golden_round_s: float = 0.0,
    app: str | None = None,
    deployments: list[str] | None = None,
) -> ReplayOutcome:
    """Traffic + pinned golden rounds + tenant burst in one open-loop replay, sampled."""
    from traffic.replay import ReplayPlan
    from traffic.replay import run_replay as replay_engine
    from traffic.sampler import SamplerConfig
    from traffic.transport import ClientSpec, limits_for

    plan = night_schedule(
        _records(traffic), _records(golden), replicas,
        speedup=speedup, golden_rounds=golden_rounds, golden_round_s=golden_round_s,
        burst=burst,
    )
    # the sampler starts with the replay; a lead gives it samples before the first send,
    # so no span lands before any telemetry (the checks' 'unknown' bucket)
    replay_plan = ReplayPlan(plan.requests, speedup=1.0, timeout_s=timeout_s,
                             lead_s=SAMPLER_LEAD_S)
    client = ClientSpec(settings.serve_url, "auto", limits_for(replay_plan.peak_rate, timeout_s))
    sampler = SamplerConfig(
        dashboard_url=settings.dashboard_url,
        metrics_url=settings.metrics_url,
        app=app,
        deployments=tuple(deployments) if deployments else None,
    )
    speed = host_speed_watch(settings)
    on_this_host = host_cpu_watch(settings)
    result = replay_engine(replay_plan, out_dir, client, sampler=sampler)
    host = on_this_host()
    host_speed = speed()
    _refuse_if_unreachable(result.statuses, settings.serve_url)
    return ReplayOutcome(
        spans_path=result.spans_path,
        telemetry_path=result.telemetry_path,
        counts=plan.counts,
        statuses=result.statuses,
        wall_s=result.wall_s,
        lag_p99_ms=result.lag_p99_ms,
        telemetry_samples=result.telemetry_samples,
        notes=plan.notes,
        host_cpu=host.model_dump() if host else None,
        host_speed=host_speed.model_dump() if host_speed else None,
    )


def host_cpu_watch(settings: Settings) -> Callable[[], Any]:
    """Start measuring the host's CPU; the returned call ends the window and gives its
    :class:`~serving.host_cpu.HostCpu`, or None when the cluster is not on this host
    (no head of this project's recorded here) or /proc cannot be read."""
    from serving import host_cpu, stack
    from serving.errors import StackError

    def measured() -> host_cpu.CpuSnapshot | None:
        # a fact about the night, never a reason to lose it: no /proc, a head gone or
        # a process table that cannot be read leave the night without the row
        try:
            head = stack.local_head_pids(settings)
            if head is None:
                return None
            return host_cpu.snapshot(head | host_cpu.own_tree())
        except (StackError, OSError, ValueError, IndexError) as exc:
            log.warning("the host's CPU was not measured: %s", exc)
            return None

    before = measured()
    if before is None:
        return lambda: None

    def stop() -> Any:
        after = measured()
        return None if after is None else host_cpu.host_cpu(before, after)

    return stop


def host_speed_watch(settings: Settings) -> Callable[[], Any]:
    """Probe the host's memory speed now, with the cluster idle; the returned call
    probes again after the replay and gives the night's
    :class:`~serving.host_speed.HostSpeed`, or None when the cluster is not on this
    host (no head of this project's recorded here)."""
    from serving import host_speed, stack
    from serving.errors import StackError

    try:
        if stack.local_head_pids(settings) is None:
            return lambda: None
        before = host_speed.measure()
    except (StackError, OSError, ValueError, IndexError, MemoryError) as exc:
        # a fact about the night, never a reason to lose it
        log.warning("the host's speed was not measured: %s", exc)
        return lambda: None

    def stop() -> Any:
        try:
            return host_speed.summarise(before, host_speed.measure())
        except MemoryError as exc:
            log.warning("the host's speed was not measured after the replay: %s", exc)
            return None

    return stop


def _refuse_if_unreachable(statuses: dict[str, int], base_url: str) -> None:
    """Most requests failing to connect is a dead endpoint, not a bad cluster.

    Past ``CONNECTION_ERROR_LIMIT`` the stack went away (or never listened): scoring
    those spans would blame the checks' buckets for an outage.
    """
    total = sum(statuses.values())
    refused = statuses.get("connection_error", 0)
    if total and refused == total:
        raise InfrastructureFailure(
            f"serving endpoint {base_url} refused all {total} requests (connection_error)"
        )
    if total and refused / total > CONNECTION_ERROR_LIMIT:
        raise InfrastructureFailure(
            f"{refused} of {total} requests could not connect to {base_url} "
            "(connection_error): the stack went away during the replay"
        )


def merge_spans(parts: list[Path], out: Path) -> int:
    """The night's baseline and replay spans into the run's ``spans.parquet``; the count."""
    from traffic.spans import merge_spans as merge

    return int(merge(parts, out).num_rows)


def empty_telemetry(out: Path) -> Path:
    from traffic.sampler import write_telemetry

    return write_telemetry([], out)


# --- scoring, warehouse, checks, gate, report ----------------------------------------


def _thresholds(path: Path | None) -> Any:
    from checks.errors import ThresholdsError
    from checks.thresholds import load_thresholds

    try:
        return load_thresholds(path)
    except ThresholdsError as exc:
        raise ConfigurationError(str(exc)) from exc


def score(spans: Path, thresholds: Path | None, out: Path) -> int:
    """Score every span with every rubric (and the judge when enabled) into ``out``."""
    import polars as pl

    from checks import rubrics_for
    from checks.scoring import score_spans

    rubrics = rubrics_for(_thresholds(thresholds), os.environ)
    scores = score_spans(pl.read_parquet(spans), rubrics)
    scores.write_parquet(out)
    return scores.height


def load_warehouse(db: Path, run: Any, spans: Path, telemetry: Path, scores: Path) -> None:
    """The run's ledger row, spans and telemetry (atomic, replacing), then its scores."""
    import polars as pl

    from warehouse import load_run, opened, write_scores

    db.parent.mkdir(parents=True, exist_ok=True)
    load_run(db, run, spans, telemetry)
    with opened(db) as con:
        write_scores(con, run.run_id, pl.read_parquet(scores))


def evaluate(db: Path, run_id: str, thresholds: Path | None, data_docs: Path) -> GateResult:
    """The loaded run's checks and gate, on one warehouse connection: the same
    ``checks.evaluate_run`` as ``cluster-eval evaluate``, with the scores loaded with
    the run (``score`` wrote them beside the spans)."""
    from checks.errors import ThresholdsError
    from checks.evaluate import evaluate_run

    try:
        return evaluate_run(db, run_id, thresholds, data_docs, score=False)
    except ThresholdsError as exc:
        raise ConfigurationError(str(exc)) from exc


def report(db: Path, run_id: str, out_dir: Path, thresholds: Path | None = None
           ) -> tuple[Path, dict[str, Any]]:
    """Write report.html (its timeline shaded with the run's ``thresholds``); return its
    path and the data it shows (for the artifacts)."""
    from checks import gather_report as gather
    from checks import write_report
    from warehouse import opened

    limits = _thresholds(thresholds)
    page = write_report(db, run_id, out_dir, limits)
    with opened(db, read_only=True) as con:
        data = gather(con, run_id, limits)
    return page, data


def export_otlp(db: Path, run_id: str, target: Any, thresholds: Path | None) -> Any:
    """Send the judged run's spans to an OTLP collector (``exports.otlp``); header
    values come from this process's environment. Raises ``OtlpExportError``; the flow
    logs it and the verdict stands."""
    from exports.otlp import OtlpConfigError, export_run

    try:
        limits = _thresholds(thresholds)
    except ConfigurationError as exc:
        raise OtlpConfigError(str(exc)) from exc
    return export_run(db, run_id, target, os.environ, limits)


def export_prometheus(db: Path, run_id: str, target: Any) -> str:
    """Write or push the judged run's metrics (``exports.prometheus``); return where
    they went. Raises ``PrometheusExportError``; the flow logs it and the verdict
    stands."""
    from exports.prometheus import export_run

    return export_run(db, run_id, target)
