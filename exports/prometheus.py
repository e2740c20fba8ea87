"""Prometheus metrics of one judged run, for a textfile collector or a Pushgateway.

The run is read from the warehouse (read-only, ``exports/prometheus.sql``) and
rendered with ``prometheus_client`` in the text exposition format, from a dedicated
``CollectorRegistry`` (never the process-global one). Every metric carries ``app``
and ``baseline_key``: the nights with the same key are the comparable ones, so a
series stays continuous from night to night. The run id is a label of
``cluster_eval_run_info`` only.

    cluster_eval_run_verdict{verdict}              1 for the run's verdict, 0 for the others
    cluster_eval_run_info{run_id,config_hash,deployments}      1
    cluster_eval_run_timestamp_seconds             when the run finished (started, if unknown)
    cluster_eval_run_duration_seconds              deploy to warehouse load
    cluster_eval_check_status{check,status}        1 for pass / fail / not_judged, 0 for the others
    cluster_eval_check_breaches{check}             breached metric expectations
    cluster_eval_check_insufficient_buckets{check} buckets with fewer spans than min_samples
    cluster_eval_bucket_requests{check,bucket}     spans in the bucket
    cluster_eval_bucket_insufficient{check,bucket} 1 when the bucket is too thin to judge
    cluster_eval_bucket_quality{check,bucket}      mean quality (0-1)
    cluster_eval_bucket_error_share{check,bucket}  share of errors and timeouts (0-1)
    cluster_eval_bucket_p99_latency_seconds{check,bucket}
    cluster_eval_replay_spans_planned{mode}        requests the flow planned to send
    cluster_eval_replay_spans_received{mode}       spans recorded
    cluster_eval_replay_schedule_lag_p99_seconds   p99 of sent - intended
    cluster_eval_telemetry_gap_share               share of the replay's bins without a sample
    cluster_eval_replica_id_share                  pinned requests whose replica named itself
    cluster_eval_host_foreign_cpu_share            the host's CPU other work took during the
                                                   replay (a cluster on the flow's host only)
    cluster_eval_host_memory_probe_seconds         the host's memory probe around the replay:
                                                   higher is a slower host (the same only)

A value the warehouse holds as null (a bucket without a reference, no telemetry
window) is left out rather than written as NaN. docs/exports.md has the meaning of
each one, the alert rules and the dashboard.

Nothing secret is read: of the run's ``cluster`` JSON only the app and deployment
names, never the serve URL; a Pushgateway URL's user and password become a basic-auth
header and never appear in a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "METRICS",
    "PrometheusExportError",
    "PrometheusTarget",
    "RunMetrics",
    "export_run",
    "read_run",
    "registry_for",
    "render",
    "without_credentials",
]

VERDICTS = ("PASS", "FAIL", "INVALID")
STATUSES = ("pass", "fail", "not_judged")
BASE_LABELS = ("app", "baseline_key")

# name (as exposed) → help text; the docs table and the tests read this
METRICS: dict[str, str] = {
    "cluster_eval_run_verdict": "The run's verdict: 1 for the verdict it got, 0 for the others.",
    "cluster_eval_run_info": "The run behind these metrics (always 1).",
    "cluster_eval_run_timestamp_seconds": "When the run finished (Unix time; its start if the "
                                          "end is unknown).",
    "cluster_eval_run_duration_seconds": "From the run's start (deploy) to its warehouse load.",
    "cluster_eval_check_status": "Each check's outcome: 1 for pass, fail or not_judged, "
                                 "0 for the other two.",
    "cluster_eval_check_breaches": "Breached metric expectations of the check.",
    "cluster_eval_check_insufficient_buckets": "Buckets of the check with fewer spans than "
                                               "min_samples.",
    "cluster_eval_bucket_requests": "Spans in the bucket.",
    "cluster_eval_bucket_insufficient": "1 when the bucket has fewer spans than min_samples.",
    "cluster_eval_bucket_quality": "Mean quality of the bucket's spans (0-1).",
    "cluster_eval_bucket_error_share": "Share of the bucket's requests that errored or timed "
                                       "out (0-1).",
    "cluster_eval_bucket_p99_latency_seconds": "p99 end-to-end latency of the bucket's "
                                               "requests.",
    "cluster_eval_replay_spans_planned": "Requests the flow planned to send, per mode.",
    "cluster_eval_replay_spans_received": "Spans recorded, per mode.",
    "cluster_eval_replay_schedule_lag_p99_seconds": "p99 of (sent - intended send time) over "
                                                    "the timed modes.",
    "cluster_eval_telemetry_gap_share": "Share of the replay's telemetry bins without a "
                                        "sample (0-1).",
    "cluster_eval_replica_id_share": "Share of successful pinned requests whose replica "
                                     "named itself (0-1).",
    "cluster_eval_host_foreign_cpu_share": "Share of the host's CPU capacity other processes "
                                           "took while the replay ran (0-1).",
    "cluster_eval_host_memory_probe_seconds": "Median time of the host's memory probe with "
                                              "the cluster idle around the replay; higher "
                                              "is a slower host.",
}


class PrometheusExportError(Exception):
    """The run could not be read, rendered, written or pushed. The message names the
    run, file or (credential-free) URL; the verdict is never affected."""


class PrometheusTarget(BaseModel):
    """Where a run's metrics go: a ``.prom`` file for node_exporter's textfile
    collector, or a Pushgateway. Exactly one."""

    model_config = ConfigDict(extra="forbid")

    textfile: Path | None = Field(
        default=None,
        description="Write here, atomically (temp file + rename); must end in .prom.")
    pushgateway: str | None = Field(
        default=None,
        description="Pushgateway base URL (http:// or https://); user:password@ in it "
                    "becomes basic auth.")
    job: str = Field(default="cluster_eval", min_length=1,
                     description="Pushgateway job name of the pushed group.")
    timeout_s: float = Field(default=10.0, gt=0, le=300,
                             description="Pushgateway request timeout.")

    @model_validator(mode="after")
    def _one_destination(self) -> PrometheusTarget:
        if (self.textfile is None) == (self.pushgateway is None):
            raise ValueError("give exactly one of textfile or pushgateway")
        if self.textfile is not None and self.textfile.suffix != ".prom":
            raise ValueError(f"textfile {self.textfile} must end in .prom "
                             "(node_exporter's textfile collector reads only *.prom)")
        if self.pushgateway is not None:
            parts = urlsplit(self.pushgateway)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"pushgateway {without_credentials(self.pushgateway)!r} is "
                                 "not an http:// or https:// URL")
        return self


# --- reading the run ---------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    check: str
    bucket: str
    n: int | None
    insufficient: bool | None
    mean_quality: float | None
    error_share: float | None
    p99_latency_ms: float | None


@dataclass(frozen=True)
class CheckOutcome:
    check: str
    judged: bool
    breaches: int
    insufficient: int

    @property
    def status(self) -> str:
        if not self.judged:
            return "not_judged"
        return "fail" if self.breaches else "pass"


@dataclass(frozen=True)
class RunMetrics:
    """What one judged run exports."""

    run_id: str
    verdict: str
    app: str
    baseline_key: str
    config_hash: str
    deployments: str
    started_at: datetime | None
    finished_at: datetime | None
    checks: list[CheckOutcome]
    buckets: list[Bucket]
    spans: list[tuple[str, int | None, int]]  # mode, planned (None: not in the plan), received
    lag_p99_ms: float | None
    gap_share: float | None
    identified_share: float | None
    foreign_cpu_share: float | None = None
    host_probe_ms: float | None = None


@cache
def _queries() -> dict[str, str]:
    """The named sections of exports/prometheus.sql (``-- name: <query>``)."""
    text = (resources.files("exports") / "prometheus.sql").read_text()
    parts = re.split(r"^-- name: (\w+)\s*$", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _rows(con: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(_queries()[name], params)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _deployment_names(raw: str | None) -> str:
    import json

    try:
        names = json.loads(raw) if raw else []
    except ValueError:
        return ""
    return ",".join(str(n) for n in names) if isinstance(names, list) else ""


def read_run(db_path: str | Path, run_id: str) -> RunMetrics:
    """Read a judged run from the warehouse (read-only)."""
    import duckdb

    from checks.compute import CHECKS
    from warehouse import opened
    from warehouse.errors import WarehouseError

    params = {"run_id": run_id}
    try:
        with opened(db_path, read_only=True) as con:
            found = _rows(con, "run", params)
            if not found:
                raise PrometheusExportError(f"run {run_id!r} is not in the warehouse {db_path}")
            run = found[0]
            if run["verdict"] not in VERDICTS:
                raise PrometheusExportError(
                    f"run {run_id!r} has no verdict yet (never reached the gate); "
                    "judge it first: cluster-eval evaluate")
            checks = _rows(con, "checks", {**params, "checks": list(CHECKS)})
            buckets = _rows(con, "buckets", params)
            spans = _rows(con, "spans", params)
            (measured,) = _rows(con, "measurement", params)
    except WarehouseError as exc:
        raise PrometheusExportError(str(exc)) from exc
    except duckdb.Error as exc:
        raise PrometheusExportError(
            f"{db_path} is not a cluster-eval warehouse (or not one this version reads): "
            f"{exc}") from exc
    return RunMetrics(
        run_id=run_id, verdict=run["verdict"], app=run["app"] or "",
        baseline_key=run["baseline_key"] or "", config_hash=run["config_hash"] or "",
        deployments=_deployment_names(run["deployments"]),
        started_at=run["started_at"], finished_at=run["finished_at"],
        checks=[CheckOutcome(check=c["check"], judged=bool(c["judged"]),
                             breaches=int(c["breaches"]), insufficient=int(c["insufficient"]))
                for c in checks],
        buckets=[Bucket(**b) for b in buckets],
        spans=[(s["mode"], s["planned"], int(s["received"])) for s in spans],
        lag_p99_ms=measured["lag_p99_ms"], gap_share=measured["gap_share"],
        identified_share=measured["identified_share"],
        foreign_cpu_share=measured["foreign_cpu_share"],
        host_probe_ms=run["host_probe_ms"],
    )


# --- rendering ---------------------------------------------------------------------


class _RunCollector(Collector):
    """Yields the metric families of one run; registered on a dedicated registry."""

    def __init__(self, run: RunMetrics):
        self.run = run

    def _gauge(self, name: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, METRICS[name], labels=[*BASE_LABELS, *extra])

    def collect(self) -> Iterator[Metric]:
        run = self.run
        base = [run.app, run.baseline_key]

        verdict = self._gauge("cluster_eval_run_verdict", ["verdict"])
        for name in VERDICTS:
            verdict.add_metric([*base, name], 1.0 if name == run.verdict else 0.0)
        yield verdict

        info = InfoMetricFamily("cluster_eval_run", METRICS["cluster_eval_run_info"],
                                labels=list(BASE_LABELS))
        info.add_metric(base, {"run_id": run.run_id, "config_hash": run.config_hash,
                               "deployments": run.deployments})
        yield info

        moment = run.finished_at or run.started_at
        if moment is not None:
            stamp = self._gauge("cluster_eval_run_timestamp_seconds")
            stamp.add_metric(base, moment.timestamp())
            yield stamp
        if run.started_at is not None and run.finished_at is not None:
            duration = self._gauge("cluster_eval_run_duration_seconds")
            duration.add_metric(base, (run.finished_at - run.started_at).total_seconds())
            yield duration

        status = self._gauge("cluster_eval_check_status", ["check", "status"])
        breaches = self._gauge("cluster_eval_check_breaches", ["check"])
        thin = self._gauge("cluster_eval_check_insufficient_buckets", ["check"])
        for check in run.checks:
            for name in STATUSES:
                status.add_metric([*base, check.check, name],
                                  1.0 if name == check.status else 0.0)
            breaches.add_metric([*base, check.check], check.breaches)
            thin.add_metric([*base, check.check], check.insufficient)
        yield from (status, breaches, thin)

        yield from self._buckets(base)
        yield from self._fidelity(base)

    def _buckets(self, base: list[str]) -> Iterator[Metric]:
        requests = self._gauge("cluster_eval_bucket_requests", ["check", "bucket"])
        insufficient = self._gauge("cluster_eval_bucket_insufficient", ["check", "bucket"])
        quality = self._gauge("cluster_eval_bucket_quality", ["check", "bucket"])
        errors = self._gauge("cluster_eval_bucket_error_share", ["check", "bucket"])
        p99 = self._gauge("cluster_eval_bucket_p99_latency_seconds", ["check", "bucket"])
        for b in self.run.buckets:
            labels = [*base, b.check, b.bucket]
            if b.n is not None:
                requests.add_metric(labels, b.n)
            if b.insufficient is not None:
                insufficient.add_metric(labels, 1.0 if b.insufficient else 0.0)
            if b.mean_quality is not None:
                quality.add_metric(labels, b.mean_quality)
            if b.error_share is not None:
                errors.add_metric(labels, b.error_share)
            if b.p99_latency_ms is not None:
                p99.add_metric(labels, b.p99_latency_ms / 1000.0)
        yield from (requests, insufficient, quality, errors, p99)

    def _fidelity(self, base: list[str]) -> Iterator[Metric]:
        run = self.run
        planned = self._gauge("cluster_eval_replay_spans_planned", ["mode"])
        received = self._gauge("cluster_eval_replay_spans_received", ["mode"])
        for mode, wanted, got in run.spans:
            if wanted is not None:
                planned.add_metric([*base, mode], wanted)
            received.add_metric([*base, mode], got)
        yield from (planned, received)
        single = (("cluster_eval_replay_schedule_lag_p99_seconds",
                   None if run.lag_p99_ms is None else run.lag_p99_ms / 1000.0),
                  ("cluster_eval_telemetry_gap_share", run.gap_share),
                  ("cluster_eval_replica_id_share", run.identified_share),
                  ("cluster_eval_host_foreign_cpu_share", run.foreign_cpu_share),
                  ("cluster_eval_host_memory_probe_seconds",
                   None if run.host_probe_ms is None else run.host_probe_ms / 1000.0))
        for name, value in single:
            if value is not None:
                family = self._gauge(name)
                family.add_metric(base, value)
                yield family


def registry_for(run: RunMetrics) -> CollectorRegistry:
    """A dedicated registry holding only this run's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunCollector(run))
    return registry


def render(db_path: str | Path, run_id: str) -> str:
    """The run's metrics in the Prometheus text exposition format."""
    from prometheus_client import generate_latest

    return generate_latest(registry_for(read_run(db_path, run_id))).decode()


# --- delivering --------------------------------------------------------------------


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def without_credentials(text: str) -> str:
    """``text`` with the user:password@ of every URL in it replaced by ``***@``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def _write_textfile(registry: CollectorRegistry, path: Path) -> str:
    from prometheus_client import write_to_textfile

    if not path.parent.is_dir():
        raise PrometheusExportError(f"cannot write {path}: {path.parent} is not a directory")
    try:
        # temp file beside the target, then rename(2): the collector never reads half a file
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise PrometheusExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return str(path)


def _push(registry: CollectorRegistry, target: PrometheusTarget, run: RunMetrics) -> str:
    from urllib.error import HTTPError, URLError

    from prometheus_client import push_to_gateway
    from prometheus_client.exposition import basic_auth_handler, default_handler

    assert target.pushgateway is not None
    parts = urlsplit(target.pushgateway)
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    user, password = parts.username, parts.password

    def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes
                ) -> Any:
        if user is not None:
            return basic_auth_handler(url, method, timeout, headers, data,
                                      username=user, password=password)
        return default_handler(url, method, timeout, headers, data)

    # one group per baseline key: each night replaces the previous one of its key
    grouping = {"baseline_key": run.baseline_key} if run.baseline_key else {}
    try:
        push_to_gateway(url, job=target.job, registry=registry, grouping_key=grouping,
                        timeout=target.timeout_s, handler=handler)
    except HTTPError as exc:
        raise PrometheusExportError(
            f"the Pushgateway at {url} refused the push: HTTP {exc.code} {exc.reason}") from exc
    except (URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PrometheusExportError(
            f"cannot push to the Pushgateway at {url}: {without_credentials(str(reason))}"
        ) from exc
    return f"{url} (job {target.job})"


def export_run(db_path: str | Path, run_id: str, target: PrometheusTarget) -> str:
    """Read the run, render its metrics and deliver them; return where they went."""
    run = read_run(db_path, run_id)
    registry = registry_for(run)
    if target.textfile is not None:
        return _write_textfile(registry, target.textfile)
    return _push(registry, target, run)
