"""Cluster telemetry sampled beside the replay (≥ 1 Hz) into ``telemetry.parquet``.

Spans know what one request saw at arrival (telemetry headers); the sampler knows what
the *cluster* looked like: how many replicas were running or starting, the autoscaler
target, requests ongoing on replicas plus queued at handles, and vLLM's scheduler and
prefix-cache counters. The warehouse joins the two with ``ASOF JOIN telemetry ON
spans.sent_at >= telemetry.sampled_at``.

Two sources, both plain HTTP, as the orchestrator never imports ray:

* the Ray dashboard, ``GET {dashboard}/api/serve/applications/`` (Serve's
  ``ServeInstanceDetails``): applications → deployments → ``replicas[].state`` /
  ``replica_id`` and ``target_num_replicas``;
* Ray's Prometheus endpoint. Names as Ray 2.60 + vLLM 0.32 export them (Ray prefixes
  ``ray_``, vLLM's ``vllm:x`` becomes ``vllm_x``, counters get ``_total``):

  ================================================  ===================================
  ``ray_serve_replica_processing_queries``           ongoing on a replica (``replica``)
  ``ray_serve_num_ongoing_requests_at_replicas``     the handles' view of the same; used
                                                     only when no replica reports
  ``ray_serve_deployment_queued_queries``            waiting at a handle/proxy router
  ``ray_vllm_num_requests_running`` / ``_waiting``   per engine (``ReplicaId``)
  ``ray_vllm_kv_cache_usage_perc``                   0–1 per engine
  ``ray_vllm_prefix_cache_queries_total`` / hits     cumulative tokens
  ================================================  ===================================

Which deployment is "the LLM one" is a parameter (default: every deployment of the
application). A failed scrape is a gap, never a crash: a tick where both sources fail
writes no row; a tick where one fails writes its half and nulls for the other.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client.parser import text_string_to_metric_families

from traffic.columns import TIMESTAMP, arrow_schema, column

__all__ = [
    "TELEMETRY_SCHEMA",
    "MetricsSnapshot",
    "SamplerConfig",
    "SamplerResult",
    "ServeState",
    "TelemetrySample",
    "TelemetrySampler",
    "parse_metrics",
    "parse_serve_state",
    "run_sampler",
    "write_telemetry",
]


ONGOING = "ray_serve_replica_processing_queries"
ONGOING_AT_HANDLES = "ray_serve_num_ongoing_requests_at_replicas"
QUEUED = "ray_serve_deployment_queued_queries"
RUNNING = "ray_vllm_num_requests_running"
WAITING = "ray_vllm_num_requests_waiting"
KV_USAGE = "ray_vllm_kv_cache_usage_perc"
PREFIX_QUERIES = "ray_vllm_prefix_cache_queries"
PREFIX_HITS = "ray_vllm_prefix_cache_hits"
_WANTED = (
    ONGOING,
    ONGOING_AT_HANDLES,
    QUEUED,
    RUNNING,
    WAITING,
    KV_USAGE,
    PREFIX_QUERIES,
    PREFIX_HITS,
)

_STARTING = {"STARTING", "UPDATING", "RECOVERING"}


@dataclass(frozen=True)
class SamplerConfig:
    dashboard_url: str
    metrics_url: str
    app: str | None = None
    """Serve application to watch; ``None``: every application."""
    deployments: tuple[str, ...] | None = None
    """The LLM deployment(s); ``None``: every deployment of the application."""
    interval_s: float = 1.0
    timeout_s: float = 0.8


# --- parsing ---------------------------------------------------------------------------


@dataclass
class ServeState:
    """The selected deployments' replicas as the Serve controller reports them."""

    replicas: dict[str, str] = field(default_factory=dict)  # replica_id → state
    deployments: set[str] = field(default_factory=set)
    target: int | None = None

    @property
    def running(self) -> int:
        return sum(1 for s in self.replicas.values() if s == "RUNNING")

    @property
    def starting(self) -> int:
        return sum(1 for s in self.replicas.values() if s in _STARTING)


def parse_serve_state(
    payload: dict[str, Any], app: str | None = None, deployments: Iterable[str] | None = None
) -> ServeState:
    """Replica states and autoscaler target from ``/api/serve/applications/``."""
    wanted = set(deployments) if deployments is not None else None
    state = ServeState()
    targets: list[int] = []
    for app_name, app_details in (payload.get("applications") or {}).items():
        if app is not None and app_name != app:
            continue
        for dep_name, dep in (app_details.get("deployments") or {}).items():
            if wanted is not None and dep_name not in wanted:
                continue
            state.deployments.add(dep_name)
            if isinstance(dep.get("target_num_replicas"), int):
                targets.append(dep["target_num_replicas"])
            for replica in dep.get("replicas") or ():
                state.replicas[str(replica["replica_id"])] = str(replica.get("state", ""))
    state.target = sum(targets) if targets else None
    return state


@dataclass
class MetricsSnapshot:
    """The Prometheus half of one sample, already reduced to the selected deployments."""

    ongoing: dict[str, float] = field(default_factory=dict)  # replica → ongoing
    queued: float = 0.0
    running: dict[str, float] = field(default_factory=dict)  # ReplicaId → running
    waiting: dict[str, float] = field(default_factory=dict)
    kv_usage: dict[str, float] = field(default_factory=dict)
    prefix_queries: float | None = None
    prefix_hits: float | None = None

    @property
    def queue_depth(self) -> float:
        return sum(self.ongoing.values()) + self.queued


def _relevant_lines(text: str) -> str:
    """Keep only the families we read before parsing.

    Ray's ``/metrics`` runs to thousands of lines (every core-worker and GCS metric);
    the parser is pure Python, so dropping the rest first makes a scrape cost
    milliseconds instead of tens of them.
    """
    keep = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[2].startswith(_WANTED):
                keep.append(line)
        elif line.startswith(_WANTED):
            keep.append(line)
    return "\n".join(keep) + "\n"


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    by_name: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(_relevant_lines(text)):
        for sample in family.samples:
            by_name[sample.name].append((sample.labels, float(sample.value)))
    return by_name


def _counter(
    by_name: dict[str, list[tuple[dict[str, str], float]]], base: str
) -> list[tuple[dict[str, str], float]]:
    """Counter samples: ``base_total`` when exported (Ray also emits a deprecated gauge)."""
    return by_name.get(base + "_total") or by_name.get(base) or []


def parse_metrics(
    text: str,
    *,
    app: str | None = None,
    deployments: Iterable[str] | None = None,
    replica_ids: Iterable[str] | None = None,
) -> MetricsSnapshot:
    """Reduce Ray's Prometheus text to the selected deployments.

    Serve metrics are selected by their ``deployment`` / ``application`` labels; vLLM
    metrics only carry ``ReplicaId``, so they are selected by the replica ids the
    dashboard reported for those deployments (all engines when it did not answer).
    """
    by_name = _samples(text)
    deps = set(deployments) if deployments is not None else None
    ids = set(replica_ids) if replica_ids is not None else None

    def serve_ok(labels: dict[str, str]) -> bool:
        if app is not None and labels.get("application", app) != app:
            return False
        return deps is None or labels.get("deployment") in deps

    def engine_id(labels: dict[str, str]) -> str | None:
        rid = labels.get("ReplicaId", "")
        return rid if ids is None or rid in ids else None

    snap = MetricsSnapshot()
    for labels, value in by_name.get(ONGOING, ()):
        if serve_ok(labels) and labels.get("replica") and (ids is None or labels["replica"] in ids):
            snap.ongoing[labels["replica"]] = snap.ongoing.get(labels["replica"], 0.0) + value
    if not snap.ongoing:
        at_handles = [v for lb, v in by_name.get(ONGOING_AT_HANDLES, ()) if serve_ok(lb)]
        if at_handles:
            snap.ongoing["(handles)"] = sum(at_handles)
    snap.queued = sum(v for lb, v in by_name.get(QUEUED, ()) if serve_ok(lb))
    for name, target in ((RUNNING, snap.running), (WAITING, snap.waiting)):
        for labels, value in by_name.get(name, ()):
            rid = engine_id(labels)
            if rid is not None:
                target[rid] = target.get(rid, 0.0) + value
    for labels, value in by_name.get(KV_USAGE, ()):
        rid = engine_id(labels)
        if rid is not None:
            snap.kv_usage[rid] = max(snap.kv_usage.get(rid, 0.0), value)
    for base, attr in ((PREFIX_QUERIES, "prefix_queries"), (PREFIX_HITS, "prefix_hits")):
        values = [v for lb, v in _counter(by_name, base) if engine_id(lb) is not None]
        if values:
            setattr(snap, attr, sum(values))
    return snap


# --- one sample ------------------------------------------------------------------------


@dataclass(slots=True)
class TelemetrySample:
    """One sample of the cluster; its fields, in order, are the columns of
    ``telemetry.parquet`` (:data:`TELEMETRY_SCHEMA`, derived: :mod:`traffic.columns`)."""

    sampled_at: float = column(TIMESTAMP)  # epoch seconds in memory
    replica_count: int | None = None
    replicas_starting: int | None = None
    target_replicas: int | None = None
    queue_depth: float | None = None
    engine_running: float | None = None
    engine_waiting: float | None = None
    kv_cache_usage: float | None = None
    prefix_cache_queries: float | None = None
    prefix_cache_hits: float | None = None
    replicas: str | None = None



TELEMETRY_SCHEMA = arrow_schema(TelemetrySample)

def _combine(
    at: float, serve: ServeState | None, metrics: MetricsSnapshot | None
) -> TelemetrySample:
    sample = TelemetrySample(sampled_at=at)
    per_replica: dict[str, dict[str, Any]] = defaultdict(dict)
    if serve is not None:
        sample.replica_count = serve.running
        sample.replicas_starting = serve.starting
        sample.target_replicas = serve.target
        for rid, state in serve.replicas.items():
            per_replica[rid]["state"] = state
    if metrics is not None:
        sample.queue_depth = metrics.queue_depth
        sample.engine_running = sum(metrics.running.values())
        sample.engine_waiting = sum(metrics.waiting.values())
        sample.kv_cache_usage = max(metrics.kv_usage.values(), default=0.0)
        sample.prefix_cache_queries = metrics.prefix_queries
        sample.prefix_cache_hits = metrics.prefix_hits
        for key, values in (
            ("ongoing", metrics.ongoing),
            ("running", metrics.running),
            ("waiting", metrics.waiting),
            ("kv_cache_usage", metrics.kv_usage),
        ):
            for rid, value in values.items():
                per_replica[rid][key] = value
    sample.replicas = json.dumps(dict(sorted(per_replica.items())), sort_keys=True)
    return sample


class TelemetrySampler:
    """Scrapes both sources on an anchored schedule with its own HTTP client.

    Ticks are ``start + k × interval``; a tick that is missed because a scrape was
    slow is skipped, not squeezed in late, so samples stay evenly spaced.
    """

    def __init__(self, config: SamplerConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = client
        self.samples: list[TelemetrySample] = []
        self.gaps = 0  # ticks with no row: both sources failed
        self.partial = 0  # rows with one source missing (its columns null)

    async def _get(self, client: httpx.AsyncClient, url: str) -> httpx.Response:
        response = await client.get(url, timeout=self.config.timeout_s)
        response.raise_for_status()
        return response

    async def sample_once(self, client: httpx.AsyncClient) -> TelemetrySample | None:
        at = time.time()
        cfg = self.config
        dash_url = cfg.dashboard_url.rstrip("/") + "/api/serve/applications/"
        dash, prom = await asyncio.gather(
            self._get(client, dash_url), self._get(client, cfg.metrics_url), return_exceptions=True
        )
        serve: ServeState | None = None
        metrics: MetricsSnapshot | None = None
        if isinstance(dash, httpx.Response):
            try:
                serve = parse_serve_state(dash.json(), cfg.app, cfg.deployments)
            except (ValueError, KeyError, TypeError, AttributeError):
                serve = None
        if isinstance(prom, httpx.Response):
            try:
                metrics = parse_metrics(
                    prom.text,
                    app=cfg.app,
                    deployments=serve.deployments if serve else cfg.deployments,
                    replica_ids=serve.replicas.keys() if serve else None,
                )
            except ValueError:
                metrics = None
        if serve is None and metrics is None:
            self.gaps += 1
            return None
        if serve is None or metrics is None:
            self.partial += 1
        sample = _combine(at, serve, metrics)
        self.samples.append(sample)
        return sample

    async def run(self, stop: threading.Event | asyncio.Event) -> list[TelemetrySample]:
        """Sample until ``stop`` is set (checked every tick), then return the samples."""
        client = self._client or httpx.AsyncClient(trust_env=False)
        interval = self.config.interval_s
        start = time.monotonic()
        k = 0
        try:
            while not stop.is_set():
                await self.sample_once(client)
                k = max(k + 1, int((time.monotonic() - start) / interval) + 1)
                while not stop.is_set():
                    delay = start + k * interval - time.monotonic()
                    if delay <= 0:
                        break
                    await asyncio.sleep(min(delay, 0.1))
        finally:
            if self._client is None:
                await client.aclose()
        return self.samples


# --- output ----------------------------------------------------------------------------


def write_telemetry(samples: Sequence[TelemetrySample], path: Path) -> Path:
    columns: dict[str, list[Any]] = {f.name: [] for f in TELEMETRY_SCHEMA}
    for s in samples:
        for name in columns:
            columns[name].append(getattr(s, name))
    columns["sampled_at"] = [round(t * 1_000_000) for t in columns["sampled_at"]]
    arrays = [
        pa.array(columns[f.name], pa.int64()).cast(f.type)
        if f.name == "sampled_at"
        else pa.array(columns[f.name], f.type)
        for f in TELEMETRY_SCHEMA
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=TELEMETRY_SCHEMA), path)
    return path


@dataclass
class SamplerResult:
    path: Path
    samples: int
    gaps: int
    partial: int = 0


def run_sampler(config: SamplerConfig, stop: threading.Event, path: Path) -> SamplerResult:
    """Blocking: sample on a fresh event loop until ``stop``, write ``path``.

    Meant for a thread beside the replay (see ``run_replay``).
    """
    sampler = TelemetrySampler(config)
    samples = asyncio.run(sampler.run(stop))
    write_telemetry(samples, path)
    return SamplerResult(path, len(samples), sampler.gaps, sampler.partial)
