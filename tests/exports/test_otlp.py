"""OTLP export of a judged run: every span reaches a 127.0.0.1 OTLP/HTTP receiver
with its GenAI and cluster_eval attributes and its real times, the collector's token
goes in the Authorization header and nowhere else, and a failed export is one clear
line. The runs are built span by span and judged by the project's own code."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import zlib
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from typer.testing import CliRunner

from checks.compute import BUCKET_CHECKS, run_checks
from checks.gate import validate_connection
from checks.thresholds import load_thresholds
from cluster_eval.cli import app
from exports.otlp import OtlpConfigError, OtlpDeliveryError, OtlpTarget, export_run
from tests.checks.conftest import T0, RunBuilder, document_question
from tests.checks.test_verdict import night, thresholds_file
from tests.conftest import loopback_server
from warehouse import RunInfo, connect, load_run, write_scores

TOKEN = "otlp-test-token-9f8e7d6c5b4a"       # the collector's credential (an env var)
URL_PASSWORD = "url-password-1a2b3c"          # a password in the recorded serve URL
PROMPT_TEXT = "the patient's name is Ada Lovelace"
COMPLETION_TEXT = "Ada's record says 42"
MODEL = "smollm2-135m-instruct"
SERVE_CONFIG = {"applications": [{"name": "llm", "args": {"served_model_name": MODEL},
                                  "deployments": [{"name": "LLMReplica", "num_replicas": 2}]}]}


# --- a receiver: OTLP/HTTP protobuf on 127.0.0.1 -------------------------------------


class Received:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], ExportTraceServiceRequest]] = []
        self.lock = threading.Lock()

    @property
    def spans(self) -> list[tuple[dict[str, Any], ProtoSpan]]:
        """(resource attributes, span) for every span received."""
        out = []
        for _, request in self.requests:
            for resource_spans in request.resource_spans:
                resource = attributes_of(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    out.extend((resource, span) for span in scope_spans.spans)
        return out


def receiver(received: Received, status: int = 200) -> type[BaseHTTPRequestHandler]:
    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            encoding = self.headers.get("Content-Encoding")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if self.path != "/v1/traces" or \
                    self.headers["Content-Type"] != "application/x-protobuf":
                self.send_response(404)
                self.end_headers()
                return
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with received.lock:
                received.requests.append(
                    ({k.lower(): v for k, v in self.headers.items()}, request))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    return Collector


def attributes_of(key_values: Any) -> dict[str, Any]:
    def value(v: Any) -> Any:
        kind = v.WhichOneof("value")
        if kind == "array_value":
            return [value(item) for item in v.array_value.values]
        return getattr(v, kind) if kind else None

    return {kv.key: value(kv.value) for kv in key_values}


# --- a judged night --------------------------------------------------------------------


def judged_night(tmp_path: Path) -> tuple[Path, RunBuilder, str]:
    """The verdict tests' healthy night (pinned golden rounds on two replicas, two
    tenants replaying) plus spans every check sorts: a timed-out request, a burst of
    load, cached and uncached prompts, a shared context used twice on one replica.
    Loaded with the ledger the flow writes, checked and judged."""
    b = night(tmp_path, "night-1", 1)
    b.config = SERVE_CONFIG
    for s in b.spans:  # what replay records besides the builder's columns
        s.update(endpoint="/v1/chat/completions", completion_tokens=12, http_status=200,
                 replica_queue_depth=3, request_body=json.dumps(
                     {"model": MODEL, "max_tokens": 64, "temperature": 0.0,
                      "messages": [{"role": "user", "content": PROMPT_TEXT}]}),
                 output_text=COMPLETION_TEXT, kv_cache_usage=0.25)
    b.spans[0]["cached_tokens"] = 90                      # a prefix-cache hit
    timed_out = b.span(0.0, at=30.5, tenant="globex", status="timeout", latency_ms=120_000,
                       prompt_tokens=None, cached_tokens=None)
    b.spans[-1].update(error_class="RequestTimeout", finish_reason=None, endpoint="/v1/chat/"
                       "completions", request_body=json.dumps({"model": MODEL}))
    document = "shared context " * 400
    for k in range(2):                                    # a followed shared context
        b.span(0.8, at=40.5 + k, tenant="acme", replica="rep-a", prompt_tokens=1200,
               cached_tokens=1100 * k, body=document_question(document, f"q{k}?"))
        b.spans[-1]["endpoint"] = "/v1/chat/completions"
    for t in range(44, 50):                               # a burst: queue far above its mean
        b.sample(t, queue_depth=40 if t == 46 else 1, replicas=2)
    b.span(0.7, at=46.2, tenant="acme", mode="tenant_burst")
    b.spans[-1]["endpoint"] = "/v1/chat/completions"
    b.plan = {"planned": {"pinned": 48, "replay": 40 + 4, "tenant_burst": 1},
              "golden_rounds": 2, "replicas": 2}
    db = load(tmp_path, b)
    return db, b, timed_out


def limits_file(tmp_path: Path) -> Path:
    """The verdict tests' thresholds with 10 s pattern windows (the night is ~60 s)."""
    return Path(thresholds_file(tmp_path, traffic_pattern_drift={"window_s": 10}))


def load(tmp_path: Path, b: RunBuilder) -> Path:
    db = tmp_path / "w.duckdb"
    spans, telemetry = tmp_path / f"{b.run_id}-spans.parquet", tmp_path / f"{b.run_id}-tel.parquet"
    pl.DataFrame(b.spans).write_parquet(spans)
    pl.DataFrame(b.telemetry).write_parquet(telemetry)
    load_run(db, RunInfo(run_id=b.run_id, started_at=b.started_at,
                         finished_at=b.started_at + timedelta(minutes=5), config=b.config,
                         cluster={"replicas": ["rep-a", "rep-b"], "app": "llm",
                                  "serve_url": f"http://admin:{URL_PASSWORD}@127.0.0.1:8000"},
                         plan=b.plan, baseline_key=b.baseline_key),
             spans, telemetry)
    thresholds = load_thresholds(limits_file(tmp_path))
    with connect(db) as con:
        write_scores(con, b.run_id, pl.DataFrame(b.scores, schema=["span_id", "rubric", "score"],
                                                 orient="row"))
        run_checks(con, b.run_id, thresholds)
        validate_connection(con, b.run_id, thresholds)
    return db


class KeptLog(logging.Handler):
    """Every log record of the process while installed, as text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")


@pytest.fixture(scope="module")
def night_db(tmp_path_factory) -> tuple[Path, RunBuilder, str, Path]:
    """The judged night (built once: the gate takes seconds) and its thresholds file."""
    tmp_path = tmp_path_factory.mktemp("night")
    db, builder, timed_out = judged_night(tmp_path)
    return db, builder, timed_out, limits_file(tmp_path)


@pytest.fixture(scope="module")
def exported(night_db):
    """The night exported to a receiver, the token in the environment, every log record
    of the export kept."""
    db, builder, timed_out, limits = night_db
    received, log = Received(), KeptLog()
    root = logging.getLogger()
    level = root.level
    root.addHandler(log)
    root.setLevel(logging.DEBUG)
    try:
        with loopback_server(receiver(received)) as url:
            target = OtlpTarget.parse(endpoint=url, headers_from_env={
                "Authorization": "OTLP_TEST_AUTHORIZATION"}, batch_size=20)
            result = export_run(db, builder.run_id, target,
                                {"OTLP_TEST_AUTHORIZATION": f"Bearer {TOKEN}"}, limits)
    finally:
        root.removeHandler(log)
        root.setLevel(level)
    spans = {attributes_of(s.attributes)["cluster_eval.span_id"]: (resource, s)
             for resource, s in received.spans}
    return {"db": db, "builder": builder, "timed_out": timed_out, "received": received,
            "result": result, "spans": spans, "log": "\n".join(log.lines), "limits": limits}


# --- every span arrives, with what it knows ------------------------------------------------


def test_every_span_of_the_run_arrives_once_as_its_own_trace(exported):
    builder, received = exported["builder"], exported["received"]
    assert len(received.spans) == len(builder.spans) == exported["result"].spans
    assert set(exported["spans"]) == {s["span_id"] for s in builder.spans}
    assert len({s.trace_id for _, s in received.spans}) == len(builder.spans)
    assert all(not s.parent_span_id for _, s in received.spans)
    assert len(received.requests) == exported["result"].batches == -(-len(builder.spans) // 20)
    assert all(resource["service.name"] == "cluster-eval" for resource, _ in received.spans)


def test_a_span_is_timed_by_its_request_not_by_the_export(exported):
    for row in exported["builder"].spans:
        _, span = exported["spans"][row["span_id"]]
        start_ns = round((row["sent_at"] - T0).total_seconds() * 1e6) * 1000 \
            + int(T0.timestamp()) * 10**9
        assert span.start_time_unix_nano == start_ns
        assert span.end_time_unix_nano - span.start_time_unix_nano == \
            round(row["latency_ms"] * 1e6)


def test_genai_attributes_follow_the_semantic_conventions(exported):
    row = exported["builder"].spans[0]
    _, span = exported["spans"][row["span_id"]]
    attributes = attributes_of(span.attributes)
    assert span.name == f"chat {MODEL}"
    assert span.kind == ProtoSpan.SPAN_KIND_CLIENT
    assert span.status.code == ProtoStatus.STATUS_CODE_UNSET
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == MODEL   # the run's served_model_name
    assert attributes["gen_ai.usage.input_tokens"] == 100
    assert attributes["gen_ai.usage.output_tokens"] == 12
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 90
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.temperature"] == 0.0
    assert attributes["http.response.status_code"] == 200
    assert "error.type" not in attributes


def test_a_failed_request_is_an_error_span_with_its_error_type(exported):
    _, span = exported["spans"][exported["timed_out"]]
    attributes = attributes_of(span.attributes)
    assert span.status.code == ProtoStatus.STATUS_CODE_ERROR
    assert span.status.message == "RequestTimeout"
    assert attributes["error.type"] == "RequestTimeout"
    assert attributes["cluster_eval.status"] == "timeout"
    assert "gen_ai.response.model" not in attributes       # nothing answered
    assert "gen_ai.usage.input_tokens" not in attributes   # unknown, not 0
    assert attributes["cluster_eval.score.completion"] == 0.0


def test_cluster_eval_attributes_carry_replica_load_cache_tenant_scores_and_verdict(exported):
    with connect(exported["db"], read_only=True) as con:
        verdict = con.execute("SELECT verdict FROM runs").fetchall()[0][0]
    assert verdict in ("PASS", "FAIL", "INVALID")
    row = exported["builder"].spans[0]
    attributes = attributes_of(exported["spans"][row["span_id"]][1].attributes)
    assert attributes["cluster_eval.run_id"] == "night-1"
    assert attributes["cluster_eval.verdict"] == verdict
    assert attributes["cluster_eval.replica_id"] == "rep-a"
    assert attributes["cluster_eval.mode"] == "pinned"
    assert attributes["cluster_eval.queue_depth"] == 3
    assert attributes["cluster_eval.cached_tokens"] == 90
    assert attributes["cluster_eval.cache_hit_ratio"] == pytest.approx(0.9)
    assert attributes["cluster_eval.tenant"] == "acme"
    assert attributes["cluster_eval.request_class"] == "completion"
    assert attributes["cluster_eval.score.completion"] == pytest.approx(0.8)
    assert attributes["cluster_eval.quality"] == pytest.approx(0.8)
    assert attributes["cluster_eval.bucket.replica_skew"] == "rep-a"
    assert attributes["cluster_eval.bucket.kv_cache_eviction"] == "high"
    assert "cluster_eval.bucket.tenant_fairness" not in attributes  # pinned: not a tenant's


def test_each_check_bucket_holds_the_spans_its_check_table_counted(exported):
    """The export's per-span buckets and the check tables' per-bucket n agree, check by
    check: exports/otlp.sql labels spans as checks/sql/<check>.sql does."""
    attributes = [attributes_of(s.attributes) for _, s in exported["received"].spans]
    with connect(exported["db"], read_only=True) as con:
        for check in BUCKET_CHECKS:
            where = "AND dimension = 'cache_hit'" if check == "kv_cache_eviction" else ""
            counted = dict(con.execute(
                f'SELECT bucket, n FROM "check_{check}" WHERE n > 0 {where}').fetchall())
            exported_buckets = Counter(a[f"cluster_eval.bucket.{check}"] for a in attributes
                                       if f"cluster_eval.bucket.{check}" in a)
            assert dict(exported_buckets) == counted, check
        reuse = dict(con.execute("SELECT bucket, n FROM check_kv_cache_eviction WHERE n > 0 "
                                 "AND dimension = 'prefix_reuse'").fetchall())
    exported_reuse = Counter(a["cluster_eval.bucket.kv_cache_eviction.prefix_reuse"]
                             for a in attributes
                             if "cluster_eval.bucket.kv_cache_eviction.prefix_reuse" in a)
    assert dict(exported_reuse) == reuse == {"first_use": 1, "retained": 1}
    drift = Counter(a.get("cluster_eval.bucket.traffic_pattern_drift") for a in attributes)
    assert {"steady", "burst"} <= set(drift)    # the night has both patterns


# --- no secret, no content -----------------------------------------------------------------


def test_the_token_goes_in_the_header_and_nowhere_else(exported):
    headers = [h for h, _ in exported["received"].requests]
    assert all(h["authorization"] == f"Bearer {TOKEN}" for h in headers)
    for resource, span in exported["received"].spans:
        text = json.dumps([resource, attributes_of(span.attributes), span.name,
                           span.status.message])
        for secret in (TOKEN, URL_PASSWORD, "OTLP_TEST_AUTHORIZATION"):
            assert secret not in text
        assert PROMPT_TEXT not in text and COMPLETION_TEXT not in text
        assert "Lovelace" not in text and "shared context" not in text
    assert TOKEN not in exported["log"] and URL_PASSWORD not in exported["log"]


def test_a_server_address_with_credentials_is_left_out(exported):
    attributes = attributes_of(next(iter(exported["spans"].values()))[1].attributes)
    assert "server.address" not in attributes and "server.port" not in attributes


def test_the_warehouse_is_only_read(exported):
    before = exported["db"].read_bytes()
    with loopback_server(receiver(Received())) as url:
        export_run(exported["db"], "night-1", OtlpTarget.parse(endpoint=url), {},
                   exported["limits"])
    assert exported["db"].read_bytes() == before


# --- targets and failures --------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "problem"), [
    ("http://user:pw@collector:4318", "must not carry credentials"),
    ("http://collector:4318/v1/traces?api_key=abc", "must not carry a query"),
    ("ftp://collector", "http:// or https:// URL"),
])
def test_an_endpoint_that_could_leak_a_credential_is_refused(endpoint, problem):
    with pytest.raises(OtlpConfigError) as raised:
        OtlpTarget.parse(endpoint=endpoint)
    assert problem in str(raised.value)
    assert "pw@" not in str(raised.value) and "abc" not in str(raised.value)


def test_a_refused_target_given_as_a_flow_parameter_does_not_echo_it():
    """The flow validates its ``otlp`` parameter with pydantic's own message."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        OtlpTarget(endpoint="http://u:pw-in-url-77@collector:4318",
                   headers_from_env={"Authorization": f"Bearer {TOKEN}"})
    assert "pw-in-url-77" not in str(raised.value) and TOKEN not in str(raised.value)
    assert "must not carry credentials" in str(raised.value)


def test_a_bare_collector_url_gets_the_traces_path():
    assert OtlpTarget.parse(endpoint="http://otel:4318").endpoint == "http://otel:4318/v1/traces"
    assert OtlpTarget.parse(endpoint="https://cloud.langfuse.com/api/public/otel/v1/traces"
                            ).endpoint == "https://cloud.langfuse.com/api/public/otel/v1/traces"


def test_a_header_value_instead_of_a_variable_name_is_refused_without_echoing_it():
    with pytest.raises(OtlpConfigError) as raised:
        OtlpTarget.parse(endpoint="http://otel:4318",
                         headers_from_env={"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in str(raised.value)
    assert "environment variable" in str(raised.value)


def test_a_missing_header_variable_is_named(night_db):
    db, builder, _, limits = night_db
    target = OtlpTarget.parse(endpoint="http://127.0.0.1:9",
                              headers_from_env={"Authorization": "NOT_SET_ANYWHERE"})
    with pytest.raises(OtlpConfigError, match="NOT_SET_ANYWHERE"):
        export_run(db, builder.run_id, target, {}, limits)


def test_a_collector_that_answers_400_is_a_delivery_error(night_db):
    db, builder, _, limits = night_db
    with loopback_server(receiver(Received(), status=400)) as url:
        with pytest.raises(OtlpDeliveryError, match="HTTP 400") as raised:
            export_run(db, builder.run_id, OtlpTarget.parse(endpoint=url, timeout_s=2), {},
                       limits)
    assert raised.value.sent == 0


def _refused_port() -> int:
    import socket

    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_exports_a_run_and_says_how_many_spans(night_db, monkeypatch):
    db, builder, _, limits = night_db
    received = Received()
    monkeypatch.setenv("OTLP_TEST_AUTHORIZATION", f"Bearer {TOKEN}")
    with loopback_server(receiver(received)) as url:
        result = CliRunner().invoke(app, [
            "export", "otlp", "--warehouse", str(db), "--run-id", builder.run_id,
            "--endpoint", url, "--header-env", "Authorization=OTLP_TEST_AUTHORIZATION",
            "--thresholds", str(limits)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"exported {len(builder.spans)} spans of run night-1 to "
                                     f"{url}/v1/traces in 1 request(s)")
    assert len(received.spans) == len(builder.spans)
    assert TOKEN not in result.output


def test_cli_a_refused_endpoint_is_one_line_without_traceback_or_secret(night_db, monkeypatch,
                                                                       caplog):
    db, builder, _, limits = night_db
    monkeypatch.setenv("OTLP_TEST_AUTHORIZATION", f"Bearer {TOKEN}")
    port = _refused_port()
    result = CliRunner().invoke(app, [
        "export", "otlp", "--warehouse", str(db), "--run-id", builder.run_id,
        "--endpoint", f"http://127.0.0.1:{port}", "--timeout", "1.5",
        "--header-env", "Authorization=OTLP_TEST_AUTHORIZATION",
        "--thresholds", str(limits)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: the collector at http://127.0.0.1:{port}/v1/traces "
                               "did not take batch 1")
    assert "Connection refused" in lines[0] and "0 spans of run night-1 had arrived" in lines[0]
    assert TOKEN not in result.output and TOKEN not in caplog.text


@pytest.mark.parametrize(("args", "message"), [
    (["--endpoint", "http://u:topsecret@127.0.0.1:4318"], "must not carry credentials"),
    (["--endpoint", "http://127.0.0.1:4318", "--header-env", "Authorization"],
     "HEADER=ENV_VAR"),
    (["--endpoint", "http://127.0.0.1:4318", "--header-env", "Authorization=UNSET_VAR_X"],
     "UNSET_VAR_X"),
])
def test_cli_bad_targets_are_one_line(tmp_path, args, message):
    db = tmp_path / "w.duckdb"
    connect(db).close()
    result = CliRunner().invoke(app, ["export", "otlp", "--warehouse", str(db),
                                      "--run-id", "r", *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "topsecret" not in result.output
    assert message in result.output


def test_cli_an_unknown_run_is_one_line(tmp_path):
    db = tmp_path / "w.duckdb"
    connect(db).close()
    result = CliRunner().invoke(app, ["export", "otlp", "--warehouse", str(db), "--run-id",
                                      "no-such-run", "--endpoint", "http://127.0.0.1:4318"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: run 'no-such-run' is not in the warehouse"


def test_the_served_model_comes_from_the_runs_config():
    from exports.otlp import _served_model

    assert _served_model(yaml.safe_dump(SERVE_CONFIG)) == MODEL
    assert _served_model("applications: [{name: llm}]") is None
    assert _served_model(": not yaml :") is None


# --- the flow's optional step ----------------------------------------------------------------


@pytest.fixture
def flow_task(monkeypatch):
    """The flow's export_otlp task body, its run logger a plain logger the test reads
    (no Prefect server: the task's function is called directly)."""
    from flows import cluster_eval as flow_module

    logger = logging.getLogger("tests.exports.flow_step")
    monkeypatch.setattr(flow_module, "get_run_logger", lambda: logger)
    return flow_module.export_otlp.fn


def test_flow_step_exports_the_run(night_db, flow_task, monkeypatch, caplog):
    db, builder, _, limits = night_db
    monkeypatch.setenv("OTLP_TEST_AUTHORIZATION", f"Bearer {TOKEN}")
    received = Received()
    caplog.set_level(logging.DEBUG)
    with loopback_server(receiver(received)) as url:
        flow_task(db, builder.run_id, OtlpTarget.parse(endpoint=url, headers_from_env={
            "Authorization": "OTLP_TEST_AUTHORIZATION"}), limits)
    assert len(received.spans) == len(builder.spans)
    assert f"exported {len(builder.spans)} spans to {url}/v1/traces" in caplog.text
    assert TOKEN not in caplog.text


def test_flow_step_a_refused_collector_is_a_warning_and_the_step_returns(
        night_db, flow_task, monkeypatch, caplog):
    db, builder, _, limits = night_db
    monkeypatch.setenv("OTLP_TEST_AUTHORIZATION", f"Bearer {TOKEN}")
    port = _refused_port()
    caplog.set_level(logging.DEBUG)
    assert flow_task(db, builder.run_id, OtlpTarget.parse(
        endpoint=f"http://127.0.0.1:{port}", timeout_s=1.5,
        headers_from_env={"Authorization": "OTLP_TEST_AUTHORIZATION"}), limits) is None
    warnings = [r for r in caplog.records if r.name == "tests.exports.flow_step"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert warnings[0].getMessage().startswith(
        f"OTLP export failed, the verdict stands: the collector at http://127.0.0.1:{port}"
        "/v1/traces did not take batch 1")
    assert TOKEN not in caplog.text


def test_flow_step_an_unexpected_error_is_named_not_quoted(night_db, flow_task, monkeypatch,
                                                          caplog):
    """An exporter bug's message could hold anything: only its type is logged."""
    from flows import pipeline

    def broken(*args, **kwargs):
        raise RuntimeError(f"header was Bearer {TOKEN}")

    monkeypatch.setattr(pipeline, "export_otlp", broken)
    db, builder, _, limits = night_db
    caplog.set_level(logging.DEBUG)
    flow_task(db, builder.run_id, OtlpTarget.parse(endpoint="http://127.0.0.1:9"), limits)
    assert "OTLP export failed, the verdict stands: RuntimeError" in caplog.text
    assert TOKEN not in caplog.text
