"""``cluster-eval replay``: load traffic, build the mode's schedule, replay, write Parquet.

Thin on purpose: options → validated plan → one ``run_replay`` call. The
command is registered top level by ``cluster_eval/cli.py`` through ``register``.

Exit codes: 0 when the replay ran; 2 when it cannot say anything about the cluster:
the traffic is unusable, or every request failed to connect (``infrastructure: …``,
one line on stderr; the spans are written all the same).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "replay_command"]


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)


def _show_progress() -> bool:
    """A live bar only for a person at a terminal: never in CI logs or pipes."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("true", "1")


def replay_command(
    traffic: Annotated[Path, typer.Option("--traffic", help="Traffic file (.jsonl or .parquet).")],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for spans.parquet, telemetry.parquet.")
    ],
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible endpoint; default: the settings' serve_url."
    ),
    mode: str = typer.Option("replay", "--mode", help="replay, pinned or tenant-burst."),
    replicas: str | None = typer.Option(
        None, "--replicas", help="pinned: replica ids, comma separated (stack status)."
    ),
    speedup: float = typer.Option(1.0, "--speedup", min=1e-6, help="Divide arrival offsets by N."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Per-request deadline, s."),
    dashboard_url: str | None = typer.Option(
        None, "--dashboard-url", help="Ray dashboard: sample cluster telemetry beside the replay."
    ),
    metrics_url: str | None = typer.Option(
        None, "--metrics-url", help="Ray Prometheus endpoint; default: from the settings."
    ),
    serve_app: str | None = typer.Option(None, "--serve-app", help="Serve application to sample."),
    llm_deployment: str | None = typer.Option(
        None, "--llm-deployment", help="LLM deployment(s), comma separated; default: all."
    ),
    small_tenant: str | None = typer.Option(None, help="tenant-burst: the steady tenant."),
    big_tenant: str | None = typer.Option(None, help="tenant-burst: the bursting tenant."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes sharing the schedule."),
    transport: str = typer.Option("auto", "--transport", help="auto, aiohttp or httpx."),
) -> None:
    """Replay captured traffic against a serving cluster, open loop, one span per request."""
    from rich.console import Console
    from rich.table import Table

    from cluster_eval.settings import get_settings
    from traffic.errors import TrafficError
    from traffic.loader import load_traffic
    from traffic.replay import ReplayPlan, run_replay
    from traffic.sampler import SamplerConfig
    from traffic.schedule import TenantBurst, build_schedule, pick_burst_tenants
    from traffic.transport import ClientSpec, is_transport_kind, limits_for

    if not is_transport_kind(transport):
        raise typer.BadParameter(f"unknown transport {transport!r}", param_hint="--transport")
    settings = get_settings()
    console = Console(stderr=True)
    try:
        records = load_traffic(traffic).records
        burst = None
        if mode == "tenant-burst":
            small, big = (small_tenant, big_tenant)
            if small is None or big is None:
                small, big = pick_burst_tenants(records)
            burst = TenantBurst(small_tenant=small, big_tenant=big)
        ids = [r for r in (replicas or "").split(",") if r]
        schedule = build_schedule(mode, records, replicas=ids, burst=burst)
    except TrafficError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc

    plan = ReplayPlan(schedule, speedup=speedup, timeout_s=timeout)
    client = ClientSpec(
        base_url or settings.serve_url, transport, limits_for(plan.peak_rate / workers, timeout)
    )
    sampler = None
    if dashboard_url:
        deployments = tuple(d for d in (llm_deployment or "").split(",") if d) or None
        sampler = SamplerConfig(
            dashboard_url=dashboard_url,
            metrics_url=metrics_url or settings.metrics_url,
            app=serve_app,
            deployments=deployments,
        )
    console.print(
        f"replaying {len(schedule)} requests ({mode}) over {plan.duration_s:.1f} s "
        f"at {plan.rate:.1f} req/s → {client.base_url}"
    )
    result = run_replay(
        plan, out, client, workers=workers, sampler=sampler, progress=_show_progress()
    )

    table = Table(title="replay")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("spans", str(result.spans))
    for status, n in sorted(result.statuses.items()):
        table.add_row(f"  {status}", str(n))
    if result.lag_p50_ms is not None:
        table.add_row(
            "schedule lag p50 / p99 / max (ms)",
            f"{result.lag_p50_ms:.3f} / {result.lag_p99_ms:.3f} / {result.lag_max_ms:.3f}",
        )
    table.add_row(
        "telemetry samples (gaps)", f"{result.telemetry_samples} ({result.telemetry_gaps})"
    )
    table.add_row("spans.parquet", str(result.spans_path))
    if result.telemetry_path:
        table.add_row("telemetry.parquet", str(result.telemetry_path))
    Console().print(table)

    refused = result.statuses.get("connection_error", 0)
    if result.spans and refused == result.spans:
        typer.echo(
            f"infrastructure: all {refused} requests failed to connect to {client.base_url} "
            "(connection_error)",
            err=True,
        )
        raise typer.Exit(2)
