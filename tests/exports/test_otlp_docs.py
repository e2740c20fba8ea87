"""docs/exports.md documents every attribute, option and the flow parameter of the OTLP
export."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from cluster_eval.settings import PROJECT_ROOT
from exports.otlp import BUCKET_CHECKS, span_attributes
from exports.otlp_cli import register

DOC = (PROJECT_ROOT / "docs" / "exports.md").read_text()
SECTION = DOC[DOC.index("## OpenTelemetry spans (OTLP)"):]


def full_row(status: str) -> dict:
    """An otlp.sql row with every column set."""
    row = {name: 1 for name in (
        "prompt_tokens", "completion_tokens", "cached_tokens", "replica_queue_depth",
        "engine_running", "engine_waiting", "http_status", "max_tokens")}
    row |= {name: 0.5 for name in ("latency_ms", "ttft_ms", "schedule_lag_ms", "kv_cache_usage",
                                   "kv_cache_usage_peak", "temperature", "quality")}
    row |= {name: "x" for name in (
        "span_id", "request_id", "mode", "tenant_id", "replica_id", "pinned_replica",
        "config_version", "request_model", "request_class", "finish_reason", "error_class",
        "bucket_kv_cache_eviction_prefix_reuse", *(f"bucket_{c}" for c in BUCKET_CHECKS))}
    return row | {"status": status, "endpoint": "/v1/chat/completions", "stream": True,
                  "sent_at": datetime(2026, 1, 1, tzinfo=UTC), "scores": {"completion": 1.0}}


def test_every_attribute_is_documented():
    keys = set()
    for status in ("ok", "timeout"):
        keys |= set(span_attributes(full_row(status), "r", "PASS", "model", ("h", 1)))
    assert "error.type" in keys and "gen_ai.response.model" in keys
    for key in keys:
        if key.startswith("cluster_eval.score."):
            key = "cluster_eval.score.<rubric>"
        elif key.startswith("cluster_eval.bucket.") and key.count(".") == 2:
            assert f"`{key.rsplit('.', 1)[1]}`" in SECTION, key
            key = "cluster_eval.bucket.<check>"
        assert f"`{key}`" in SECTION, key


def test_the_command_its_options_and_the_flow_parameter_are_documented():
    app = typer.Typer()
    register(app)
    (group,) = app.registered_groups
    (command,) = group.typer_instance.registered_commands
    assert f"cluster-eval export {command.name}" in SECTION
    root = typer.main.get_command(app)
    otlp = root.commands["export"].commands["otlp"]  # type: ignore[attr-defined]
    for param in otlp.params:
        for flag in param.opts:
            assert f"--{flag.lstrip('-')}" in SECTION, flag
    assert "otlp: {endpoint:" in SECTION and "headers_from_env" in SECTION
