"""The ``cluster-eval`` flow: one nightly evaluation of a serving cluster.

    deploy_or_reconfigure → prepare_traffic → baseline → replay → score
        → load_warehouse → evaluate → report

Thin on purpose: each task calls one plain function of ``flows/pipeline.py`` (tested
without Prefect). The gate's verdict (``checks.gate.Verdict``) decides the state:

* PASS      ``Completed``, the summary as its result;
* FAIL      ``Failed`` (name ``Failed``), the gate's paragraph (``FAIL: …``) as message;
* INVALID   ``Failed`` named ``Invalid``, message ``INVALID: …``: the measurement
            could not be trusted, so the cluster was neither shown broken nor healthy;
* an unusable stack, endpoint or input: ``Failed`` named ``Errored``, message
  ``infrastructure: …`` or ``configuration: …``.

All but PASS make ``prefect deployment run … --watch`` exit non-zero and the
``on_failure`` hook notify through the named block.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_run
from prefect.states import Failed

from checks.gate import GateResult, Verdict
from cluster_eval.settings import Settings, get_settings
from exports.otlp import OtlpTarget
from exports.prometheus import PrometheusTarget
from flows import artifacts, pipeline
from flows.errors import ConfigurationError, InfrastructureFailure, RunFailed
from flows.notify import notify_failure
from flows.plan import BurstOptions

__all__ = ["ERRORED", "INVALID", "cluster_eval"]

INVALID = "Invalid"   # state name of an INVALID verdict
ERRORED = "Errored"   # state name of an infrastructure or configuration failure

EMBEDDED_CONFIG = "serving/configs/embedded-cpu.yaml"
NIGHTLY_SPEC = "traffic/specs/embedded-nightly.yaml"
GOLDEN = "traffic/golden/golden.jsonl"


def _retry_unless_configuration(task: Any, task_run: Any, state: Any) -> bool:
    """A bad config file stays bad; an unhealthy stack may recover on a second apply."""
    return not isinstance(state.data, ConfigurationError)


@task(name="deploy_or_reconfigure", retries=2, retry_delay_seconds=10,
      retry_condition_fn=_retry_unless_configuration, cache_policy=NO_CACHE)
def deploy_or_reconfigure(config: Path, settings: Settings, timeout_s: float
                          ) -> pipeline.DeployOutcome:
    outcome = pipeline.deploy(config, settings, timeout_s=timeout_s)
    pipeline.check_endpoint(settings.serve_url)
    get_run_logger().info(
        "stack %s in %.1f s; replicas %s", outcome.action, outcome.seconds_to_healthy,
        outcome.replica_ids)
    return outcome


@task(name="prepare_traffic", cache_policy=NO_CACHE)
def prepare_traffic(source: Path, paths: pipeline.RunPaths, since: datetime | None,
                    until: datetime | None) -> int:
    return pipeline.prepare_traffic(source, paths.traffic, since=since, until=until,
                                    quarantine=paths.quarantine)


@task(name="baseline", cache_policy=NO_CACHE)
def baseline(golden: Path, replica_id: str, settings: Settings, paths: pipeline.RunPaths,
             timeout_s: float) -> dict[str, int]:
    return pipeline.run_baseline(golden, replica_id, settings.serve_url, paths.baseline,
                                 timeout_s=timeout_s)


# No retries: a second attempt would send (and count) the night's traffic twice.
@task(name="replay", retries=0, cache_policy=NO_CACHE)
def replay(paths: pipeline.RunPaths, golden: Path, stack: pipeline.DeployOutcome,
           settings: Settings, speedup: float, golden_rounds: int,
           burst: BurstOptions | None, timeout_s: float) -> pipeline.ReplayOutcome:
    outcome = pipeline.run_replay(
        paths.traffic, golden, stack.replica_ids, settings, paths.replay_dir,
        speedup=speedup, golden_rounds=golden_rounds, burst=burst, timeout_s=timeout_s,
        golden_round_s=pipeline.golden_round_s(paths.baseline),
        app=stack.app, deployments=stack.deployments,
    )
    logger = get_run_logger()
    logger.info("replayed %s in %.1f s: %s", outcome.counts, outcome.wall_s, outcome.statuses)
    for note in outcome.notes:
        logger.warning(note)
    return outcome


@task(name="score", cache_policy=NO_CACHE)
def score(paths: pipeline.RunPaths, replayed: pipeline.ReplayOutcome,
          thresholds: Path | None) -> int:
    pipeline.merge_spans([paths.baseline, replayed.spans_path], paths.spans)
    return pipeline.score(paths.spans, thresholds, paths.scores)


@task(name="load_warehouse", cache_policy=NO_CACHE)
def load_warehouse(db: Path, run: Any, paths: pipeline.RunPaths,
                   replayed: pipeline.ReplayOutcome) -> None:
    telemetry = replayed.telemetry_path or pipeline.empty_telemetry(
        paths.replay_dir / "telemetry.parquet")
    pipeline.load_warehouse(db, run, paths.spans, telemetry, paths.scores)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(db: Path, run_id: str, thresholds: Path | None, data_docs: Path) -> GateResult:
    """The checks and the gate (``checks.evaluate_run``, as ``cluster-eval evaluate``)."""
    return pipeline.evaluate(db, run_id, thresholds, data_docs)


@task(name="report", cache_policy=NO_CACHE)
def report(db: Path, run_id: str, gate: GateResult, paths: pipeline.RunPaths,
           thresholds: Path | None) -> Path:
    page, data = pipeline.report(db, run_id, paths.run_dir, thresholds)
    artifacts.publish(run_id, gate, data["checks"], page, paths.data_docs)
    return page


@task(name="export_otlp", cache_policy=NO_CACHE)
def export_otlp(db: Path, run_id: str, target: OtlpTarget, thresholds: Path | None) -> None:
    """Optional: the run's spans to an OTLP collector. Never fails the run: a failed
    export is a warning (no header value is ever in it) and the verdict stands."""
    logger = get_run_logger()
    try:
        result = pipeline.export_otlp(db, run_id, target, thresholds)
    except Exception as exc:  # an exporter's failure must not change the verdict
        from exports.otlp import OtlpExportError

        reason = str(exc) if isinstance(exc, OtlpExportError) else type(exc).__name__
        logger.warning("OTLP export failed, the verdict stands: %s", reason)
        return
    logger.info("exported %s spans to %s", result.spans, result.endpoint)


@task(name="export_prometheus", cache_policy=NO_CACHE)
def export_prometheus(db: Path, run_id: str, target: PrometheusTarget) -> None:
    """Optional: the run's metrics to a .prom file or a Pushgateway. Never fails the
    run: a failed export is a warning (no URL credential is ever in it) and the
    verdict stands."""
    logger = get_run_logger()
    try:
        where = pipeline.export_prometheus(db, run_id, target)
    except Exception as exc:  # an exporter's failure must not change the verdict
        from exports.prometheus import PrometheusExportError, without_credentials

        reason = without_credentials(str(exc)) if isinstance(exc, PrometheusExportError) \
            else type(exc).__name__
        logger.warning("Prometheus export failed, the verdict stands: %s", reason)
        return
    logger.info("Prometheus metrics of run %s → %s", run_id, where)


@task(name="teardown", cache_policy=NO_CACHE)
def teardown_stack(settings: Settings) -> None:
    pipeline.teardown(settings)


def _run_info(run_id: str, started: datetime, stack: pipeline.DeployOutcome,
              settings: Settings, plan: dict[str, Any], baseline_key: str | None) -> Any:
    from warehouse import RunInfo

    return RunInfo(
        run_id=run_id, started_at=started, finished_at=datetime.now(UTC),
        config=stack.config,
        cluster={"replicas": stack.replica_ids, "app": stack.app,
                 "deployments": stack.deployments, "serve_url": settings.serve_url,
                 "stack_action": stack.action},
        plan=plan, baseline_key=baseline_key,
    )


def _plan(baseline_statuses: dict[str, int], replayed: pipeline.ReplayOutcome,
          golden_rounds: int, replicas: list[str]) -> dict[str, Any]:
    """What the night meant to send, for the measurement check to count against, and
    the host's CPU while it was sent and its memory speed around it (when the cluster
    runs on this host)."""
    plan: dict[str, Any] = {
        "planned": {"baseline": sum(baseline_statuses.values()), **replayed.counts},
        "golden_rounds": golden_rounds, "replicas": len(replicas)}
    if replayed.host_cpu is not None:
        plan["host"] = replayed.host_cpu
    if replayed.host_speed is not None:
        plan["host_speed"] = replayed.host_speed
    return plan


def default_baseline_key(app: str, traffic: str) -> str:
    """One deployment under one workload: '<app> · <traffic file or folder name>'."""
    return f"{app} · {Path(traffic).name}"


@flow(name="cluster-eval", on_failure=[notify_failure], on_crashed=[notify_failure],
      validate_parameters=True)
def cluster_eval(
    serve_config: str = EMBEDDED_CONFIG,
    traffic: str = NIGHTLY_SPEC,
    since: datetime | None = None,
    until: datetime | None = None,
    golden: str = GOLDEN,
    speedup: float = 1.0,
    golden_rounds: int = 2,
    tenant_burst: BurstOptions | None = None,
    thresholds: str | None = None,
    baseline_key: str | None = None,
    warehouse: str | None = None,
    out_dir: str | None = None,
    notification_block: str | None = None,
    teardown: bool = False,
    deploy_timeout_s: float = 900.0,
    request_timeout_s: float = 120.0,
    replay_timeout_s: float = 3600.0,
    otlp: OtlpTarget | None = None,
    prometheus: PrometheusTarget | None = None,
) -> Any:
    """Evaluate the serving cluster: deploy, replay, score, check, gate, report.

    Args:
        serve_config: ServeConfigV2 file applied before the run (deploy or reconfigure).
        traffic: a traffic file (.jsonl/.parquet), a capture directory (with ``since`` /
            ``until``) or a workload spec (.yaml) built on the spot.
        since: start of the capture window (capture directory only).
        until: end of the capture window (capture directory only).
        golden: golden set, pinned to every replica and sent once as the baseline.
        speedup: divide the traffic's arrival offsets by this.
        golden_rounds: times the pinned golden set goes to every replica.
        tenant_burst: the tenant-burst phase after the traffic (``enabled: false`` skips it).
        thresholds: thresholds YAML; default checks/thresholds.yaml.
        baseline_key: which earlier nights this one is compared with (check history);
            default '<app> · <traffic name>'. Change it when the workload changes;
            "" for a one-off run with no baseline (history not judged).
        warehouse: DuckDB file; default ``<CLUSTER_EVAL_HOME>/warehouse.duckdb``.
        out_dir: where ``<run_id>/`` goes; default ``<CLUSTER_EVAL_HOME>/runs``.
        notification_block: notification block (``slug/name`` or name) told on failure.
        teardown: stop the stack (Serve apps and the local Ray head) at the end.
        deploy_timeout_s: wait this long for the stack to become healthy (per attempt).
        request_timeout_s: per-request deadline of the replay.
        replay_timeout_s: the whole replay task's time limit.
        otlp: after the report, send the run's spans to this OTLP/HTTP collector
            (``endpoint``, ``headers_from_env``: header name → environment variable
            NAME, ``timeout_s``); off by default; a failed export never changes the
            verdict (docs/exports.md).
        prometheus: after the report, write the run's metrics to a ``.prom`` file for
            node_exporter's textfile collector (``textfile``) or push them to a
            Pushgateway (``pushgateway``, ``job``); off by default; a failed export
            never changes the verdict (docs/exports.md).
    """
    logger = get_run_logger()
    settings = get_settings()
    run_id = str(current_run.id or f"local-{int(time.time())}")
    started = datetime.now(UTC)
    db = pipeline.resolve(warehouse) if warehouse else settings.warehouse_path
    paths = pipeline.RunPaths.create(
        pipeline.resolve(out_dir) if out_dir else settings.runs_dir, run_id)
    limits = pipeline.resolve(thresholds) if thresholds else None
    golden_path = pipeline.resolve(golden)
    burst = tenant_burst if tenant_burst is not None else BurstOptions()
    logger.info("run %s → %s", run_id, paths.run_dir)
    try:
        stack = deploy_or_reconfigure.with_options(
            timeout_seconds=deploy_timeout_s * 1.2 + 60)(
            pipeline.resolve(serve_config), settings, deploy_timeout_s)
        if not stack.replica_ids:
            raise InfrastructureFailure("no RUNNING replica after deploy")
        prepare_traffic(pipeline.resolve(traffic), paths, since, until)
        baseline_statuses = baseline(golden_path, stack.replica_ids[0], settings, paths,
                                     request_timeout_s)
        replayed = replay.with_options(timeout_seconds=replay_timeout_s)(
            paths, golden_path, stack, settings, speedup, golden_rounds, burst,
            request_timeout_s)
        score(paths, replayed, limits)
        key = default_baseline_key(stack.app, traffic) if baseline_key is None \
            else baseline_key or None  # "": no baseline (a one-off experiment)
        plan = _plan(baseline_statuses, replayed, golden_rounds, stack.replica_ids)
        load_warehouse(db, _run_info(run_id, started, stack, settings, plan, key), paths,
                       replayed)
        gate = evaluate(db, run_id, limits, paths.data_docs)
        page = report(db, run_id, gate, paths, limits)
        if otlp is not None:
            export_otlp(db, run_id, otlp, limits)
        if prometheus is not None:
            export_prometheus(db, run_id, prometheus)
    except RunFailed as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc), name=ERRORED)
    finally:
        if teardown:
            teardown_stack(settings)
    summary = {"run_id": run_id, "verdict": gate.verdict.value, "passed": gate.passed,
               "warehouse": str(db), "report": str(page),
               "data_docs": str(paths.data_docs / "index.html"), "message": gate.message}
    if gate.verdict is Verdict.INVALID:
        logger.error("%s", gate.message)
        return Failed(message=gate.message, name=INVALID)
    if gate.verdict is Verdict.FAIL:
        logger.error("%s", gate.message)
        return Failed(message=gate.message)
    logger.info("%s", gate.message)
    return summary
