"""A judged run's spans, sent to an OpenTelemetry collector over OTLP/HTTP.

One trace per request sent, one span each, timed by the request's own send time and
latency (not the export's clock), named and attributed after the OpenTelemetry GenAI
semantic conventions (``chat <model>``, ``gen_ai.*``), plus what only cluster-eval
knows under ``cluster_eval.*``: the replica, its queue depth, the prefix-cache hits,
the tenant, the request class, the bucket each check put the request in, its rubric
scores and the run's verdict. Phoenix, Langfuse, Jaeger or any OTel collector takes
them (docs/exports.md).

What never leaves: prompt and completion text, request headers, header values. The
collector's credentials come from environment variables named in the target (the
names are configuration, the values are read at export time and sent only as HTTP
headers). An endpoint with credentials in its URL is refused, so no log line or error
message can carry them.

Reads the warehouse read-only (``otlp.sql``), builds the spans with the official SDK
on a ``TracerProvider`` of its own (never the global one) and sends them in batches
with ``OTLPSpanExporter``, synchronously, so the caller learns whether they arrived.
Trace and span ids derive from the run and span ids: exporting a run twice sends the
same ids, which a collector treats as the same traces.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from checks.compute import BUCKET_CHECKS

if TYPE_CHECKING:
    from checks.thresholds import Thresholds

__all__ = [
    "SERVICE_NAME",
    "OtlpConfigError",
    "OtlpDeliveryError",
    "OtlpExportError",
    "OtlpTarget",
    "OtlpExportResult",
    "export_run",
    "span_attributes",
]

SERVICE_NAME = "cluster-eval"
TRACES_PATH = "/v1/traces"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # an HTTP token (RFC 9110)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_EXPORTER_LOGGER = "opentelemetry.exporter"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# --- errors ------------------------------------------------------------------------


class OtlpExportError(Exception):
    """Base class: the run's spans were not (all) exported.

        OtlpExportError
        ├── OtlpConfigError     the target or the run cannot be exported as asked
        └── OtlpDeliveryError   the collector did not take a batch
    """


class OtlpConfigError(OtlpExportError):
    """A bad target (endpoint, header, missing environment variable) or an unknown run."""


class OtlpDeliveryError(OtlpExportError):
    """The collector refused or could not be reached; ``sent`` spans had arrived before."""

    def __init__(self, message: str, *, sent: int):
        super().__init__(message)
        self.sent = sent


# --- the target --------------------------------------------------------------------


class OtlpTarget(BaseModel):
    """Where the spans go. Header *values* are never part of it: ``headers_from_env``
    maps a header name to the name of the environment variable holding its value
    (``{"Authorization": "PHOENIX_AUTH"}``)."""

    # hide_input_in_errors: a refused endpoint or header value may be the secret itself,
    # and the flow reports a bad parameter with pydantic's own message
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    endpoint: str = Field(description="OTLP/HTTP traces URL; a bare base URL gets /v1/traces.")
    headers_from_env: dict[str, str] = Field(
        default_factory=dict, description="Header name → environment variable NAME.")
    timeout_s: float = Field(default=10.0, gt=0, le=600,
                             description="Per batch, retries included.")
    batch_size: int = Field(default=512, ge=1, le=10_000, description="Spans per request.")

    @field_validator("endpoint")
    @classmethod
    def _plain_http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials (user:password@); "
                             "put them in a header read from an environment variable")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment (it may hold a token); "
                             "put credentials in a header read from an environment variable")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"has a bad port: {exc}") from None
        path = parts.path if parts.path not in ("", "/") else TRACES_PATH
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @field_validator("headers_from_env")
    @classmethod
    def _names_only(cls, value: dict[str, str]) -> dict[str, str]:
        for header, env_name in value.items():
            if not _HEADER_NAME.match(header):
                raise ValueError(f"{header!r} is not an HTTP header name")
            if not _ENV_NAME.match(env_name):
                # the value is not repeated: it may be the secret itself
                raise ValueError(f"header {header}: not an environment variable name "
                                 "(give the variable's NAME, not its value)")
        return value

    @classmethod
    def parse(cls, **values: Any) -> OtlpTarget:
        """Validate, raising :class:`OtlpConfigError` naming the field (never a value
        that could be a secret: pydantic's ``input_value`` is left out)."""
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'target'}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False))
            raise OtlpConfigError(f"OTLP target: {problems}") from None

    def headers(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The headers, values read from ``environ``; a missing variable is an error
        that names the variable."""
        missing = [name for name in self.headers_from_env.values() if not environ.get(name)]
        if missing:
            raise OtlpConfigError(
                f"OTLP header variable(s) not set: {', '.join(sorted(set(missing)))}")
        return {header: environ[name] for header, name in self.headers_from_env.items()}


@dataclass(frozen=True)
class OtlpExportResult:
    run_id: str
    spans: int
    batches: int
    endpoint: str


# --- reading the run ---------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    verdict: str | None
    response_model: str | None
    server: tuple[str, int | None] | None


def _sql() -> str:
    return (resources.files("exports") / "otlp.sql").read_text()


def _served_model(config_yaml: str | None) -> str | None:
    """The first application's ``served_model_name`` in the run's ServeConfig: the name
    the engine answered under (the span row keeps the request's model, not the
    response's)."""
    try:
        config = yaml.safe_load(config_yaml) if config_yaml else None
    except yaml.YAMLError:
        return None
    apps = config.get("applications") if isinstance(config, dict) else None
    args = apps[0].get("args") if apps and isinstance(apps[0], dict) else None
    name = args.get("served_model_name") if isinstance(args, dict) else None
    return name if isinstance(name, str) and name else None


def _server(serve_url: str | None) -> tuple[str, int | None] | None:
    """``server.address`` / ``server.port`` of the serving endpoint the run replayed
    against, or ``None`` when unknown or when the URL carries credentials."""
    if not serve_url:
        return None
    try:
        parts = urlsplit(serve_url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return parts.hostname, port


def _read_run(con: Any, run_id: str) -> _Run:
    row = con.execute(
        "SELECT verdict, config, json_extract_string(cluster, '$.serve_url') "
        "FROM runs WHERE run_id = $run_id", {"run_id": run_id}).fetchall()
    if not row:
        raise OtlpConfigError(f"run {run_id!r} is not in the warehouse")
    verdict, config, serve_url = row[0]
    return _Run(verdict=verdict, response_model=_served_model(config), server=_server(serve_url))


def _rows(con: Any, run_id: str, thresholds: Any, chunk: int) -> Iterator[list[dict[str, Any]]]:
    from checks.compute import stage_buckets

    # temp macros, span_quality and the checks' bucket assignment (span_buckets), with
    # the run's thresholds: nothing written to the file
    stage_buckets(con, run_id, thresholds)
    cursor = con.execute(_sql(), {"run_id": run_id})
    names = [d[0] for d in cursor.description]
    while batch := cursor.fetchmany(chunk):
        yield [dict(zip(names, row, strict=True)) for row in batch]


# --- one span's attributes ---------------------------------------------------------


def _operation(endpoint: str | None) -> str:
    return "text_completion" if endpoint and endpoint.rstrip("/").endswith("/completions") \
        and "chat" not in endpoint else "chat"


def span_attributes(row: Mapping[str, Any], run_id: str, verdict: str | None,
                    response_model: str | None = None,
                    server: tuple[str, int | None] | None = None) -> dict[str, Any]:
    """The OTel attributes of one ``otlp.sql`` row (nulls left out)."""
    failed = row["status"] != "ok"
    cached, prompt = row["cached_tokens"], row["prompt_tokens"]
    attributes: dict[str, Any] = {
        # GenAI semantic conventions (client inference span)
        "gen_ai.operation.name": _operation(row["endpoint"]),
        "gen_ai.provider.name": "vllm",
        "gen_ai.request.model": row["request_model"],
        "gen_ai.request.max_tokens": row["max_tokens"],
        "gen_ai.request.temperature": row["temperature"],
        "gen_ai.request.stream": row["stream"],
        "gen_ai.response.model": None if failed else response_model,
        "gen_ai.response.finish_reasons": [row["finish_reason"]] if row["finish_reason"]
        else None,
        "gen_ai.usage.input_tokens": prompt,
        "gen_ai.usage.output_tokens": row["completion_tokens"],
        "gen_ai.usage.cache_read.input_tokens": cached,
        "gen_ai.response.time_to_first_chunk":
            row["ttft_ms"] / 1000 if row["stream"] and row["ttft_ms"] is not None else None,
        "error.type": (row["error_class"] or row["status"]) if failed else None,
        "http.response.status_code": row["http_status"],
        "server.address": server[0] if server else None,
        "server.port": server[1] if server else None,
        # cluster-eval's own
        "cluster_eval.run_id": run_id,
        "cluster_eval.verdict": verdict,
        "cluster_eval.span_id": row["span_id"],
        "cluster_eval.request_id": row["request_id"],
        "cluster_eval.mode": row["mode"],
        "cluster_eval.tenant": row["tenant_id"],
        "cluster_eval.request_class": row["request_class"] or None,
        "cluster_eval.status": row["status"],
        "cluster_eval.replica_id": row["replica_id"],
        "cluster_eval.pinned_replica": row["pinned_replica"],
        "cluster_eval.queue_depth": row["replica_queue_depth"],
        "cluster_eval.engine_running": row["engine_running"],
        "cluster_eval.engine_waiting": row["engine_waiting"],
        "cluster_eval.kv_cache_usage": row["kv_cache_usage"],
        "cluster_eval.kv_cache_usage_peak": row["kv_cache_usage_peak"],
        "cluster_eval.cached_tokens": cached,
        "cluster_eval.cache_hit_ratio": cached / prompt if cached is not None and prompt
        else None,
        "cluster_eval.config_version": row["config_version"],
        "cluster_eval.schedule_lag_ms": row["schedule_lag_ms"],
        "cluster_eval.ttft_ms": row["ttft_ms"],
        "cluster_eval.latency_ms": row["latency_ms"],
        "cluster_eval.quality": row["quality"],
    }
    for check in BUCKET_CHECKS:
        attributes[f"cluster_eval.bucket.{check}"] = row[f"bucket_{check}"]
    attributes["cluster_eval.bucket.kv_cache_eviction.prefix_reuse"] = \
        row["bucket_kv_cache_eviction_prefix_reuse"]
    for rubric, score in (row["scores"] or {}).items():
        attributes[f"cluster_eval.score.{rubric}"] = score
    return {key: value for key, value in attributes.items() if value is not None}


def _span_name(attributes: Mapping[str, Any]) -> str:
    model = attributes.get("gen_ai.request.model")
    operation = attributes["gen_ai.operation.name"]
    return f"{operation} {model}" if model else operation


def _nanoseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND * 1000


# --- sending -----------------------------------------------------------------------


class _RunScopedIds:
    """Trace and span ids derived from ``(run_id, span_id)``, set before each span."""

    def __init__(self) -> None:
        self._trace_id = 0
        self._span_id = 0

    def use(self, run_id: str, span_id: str) -> None:
        digest = hashlib.sha256(f"{run_id}\0{span_id}".encode()).digest()
        self._trace_id = int.from_bytes(digest[:16], "big") or 1
        self._span_id = int.from_bytes(digest[16:24], "big") or 1

    def generate_trace_id(self) -> int:
        return self._trace_id

    def generate_span_id(self) -> int:
        return self._span_id

    def is_trace_id_random(self) -> bool:
        return False


@contextmanager
def _exporter_log_kept() -> Iterator[list[logging.LogRecord]]:
    """The OTLP exporter's own log records, kept for the error message instead of
    printed (its text would name the exception, not what to do)."""
    logger = logging.getLogger(_EXPORTER_LOGGER)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, propagate = Keep(level=logging.DEBUG), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _reason(records: list[logging.LogRecord]) -> str:
    """Why the collector did not take the batch, from the exporter's records: the HTTP
    status, or the kind of connection failure (no URL, no header)."""
    for record in reversed(records):
        args = record.args if isinstance(record.args, tuple) else ()
        status = next((a for a in args if isinstance(a, int) and 100 <= a < 600), None)
        if status is not None:
            return f"HTTP {status}"
        error = next((a for a in args if isinstance(a, BaseException)), None)
        if error is not None:
            found = _ERRNO.search(str(error))
            return f"{type(error).__name__}: {found.group(1).strip()}" if found \
                else type(error).__name__
    return "no answer within the timeout"


def export_run(db_path: str | Path, run_id: str, target: OtlpTarget,
               environ: Mapping[str, str], thresholds: Thresholds | Path | None = None
               ) -> OtlpExportResult:
    """Export every span of ``run_id`` to ``target``; raise :class:`OtlpExportError`
    when a batch does not arrive (``sent`` says how many did)."""
    from opentelemetry import context as otel_context
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from checks.thresholds import Thresholds, load_thresholds
    from warehouse import opened
    from warehouse.errors import WarehouseError

    headers = target.headers(environ)
    limits = thresholds if isinstance(thresholds, Thresholds) else load_thresholds(thresholds)
    ids = _RunScopedIds()
    built = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": SERVICE_NAME}),
                              sampler=ALWAYS_ON, id_generator=ids)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(built))
    tracer = provider.get_tracer("cluster_eval.exports.otlp")
    exporter = OTLPSpanExporter(endpoint=target.endpoint, headers=headers,
                                timeout=target.timeout_s)
    root = otel_context.Context()  # no parent: every request is its own trace
    sent = batches = 0
    try:
        with opened(db_path, read_only=True) as con, _exporter_log_kept() as records:
            run = _read_run(con, run_id)
            for rows in _rows(con, run_id, limits, target.batch_size):
                for row in rows:
                    attributes = span_attributes(row, run_id, run.verdict, run.response_model,
                                                 run.server)
                    start = _nanoseconds(row["sent_at"])
                    ids.use(run_id, row["span_id"])
                    span = tracer.start_span(_span_name(attributes), context=root,
                                             kind=SpanKind.CLIENT, attributes=attributes,
                                             start_time=start)
                    if row["status"] != "ok":
                        span.set_status(Status(StatusCode.ERROR, attributes["error.type"]))
                    span.end(end_time=start + round((row["latency_ms"] or 0.0) * 1_000_000))
                batch = built.get_finished_spans()
                built.clear()
                if exporter.export(batch) is not SpanExportResult.SUCCESS:
                    raise OtlpDeliveryError(
                        f"the collector at {target.endpoint} did not take batch "
                        f"{batches + 1} ({len(batch)} spans): {_reason(records)}; "
                        f"{sent} spans of run {run_id} had arrived", sent=sent)
                sent += len(batch)
                batches += 1
    except WarehouseError as exc:
        raise OtlpConfigError(str(exc)) from exc
    finally:
        exporter.shutdown()
        provider.shutdown()
    return OtlpExportResult(run_id=run_id, spans=sent, batches=batches,
                            endpoint=target.endpoint)

