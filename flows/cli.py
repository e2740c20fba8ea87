"""``cluster-eval run``: the nightly flow, run here and now without a server or worker.

The same flow the ``nightly-cluster-eval`` deployment runs; Prefect runs it
ephemerally (a temporary local API) unless ``PREFECT_API_URL`` points at a server,
in which case the run shows in that server's UI too. Exit code, from the final
state (never from its message): 0 PASS, 1 FAIL (the gate breached), 2 an
infrastructure or configuration failure (or a crash), 3 INVALID (the measurement
could not be trusted: docs/checks.md, "The verdict").
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "run_command"]


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)


def exit_code(state_type: str, state_name: str | None) -> int:
    """0 PASS, 1 FAIL, 2 errored or crashed, 3 INVALID — from the state's type and name."""
    from flows.cluster_eval import ERRORED, INVALID

    if state_type == "COMPLETED":
        return 0
    if state_type != "FAILED" or state_name == ERRORED:
        return 2
    return 3 if state_name == INVALID else 1


def run_command(
    serve_config: Annotated[Path, typer.Option(
        "--serve-config", help="ServeConfigV2 file to apply.")] = Path(
        "serving/configs/embedded-cpu.yaml"),
    traffic: Annotated[str, typer.Option(
        "--traffic", help="Traffic file, capture directory or workload spec YAML.")] =
        "traffic/specs/embedded-nightly.yaml",
    since: Annotated[datetime | None, typer.Option(help="Capture window start (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Capture window end (UTC).")] = None,
    speedup: Annotated[float, typer.Option(min=1e-6, help="Divide arrival offsets by N.")] = 1.0,
    golden_rounds: Annotated[int, typer.Option(
        min=0, help="Pinned golden rounds per replica.")] = 2,
    burst: Annotated[str | None, typer.Option(
        "--burst", help='Tenant burst options as JSON, e.g. \'{"enabled": false}\'.')] = None,
    thresholds: Annotated[Path | None, typer.Option(help="Thresholds YAML.")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="DuckDB warehouse file.")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Folder for <run_id>/.")] = None,
    notification_block: Annotated[str | None, typer.Option(
        help="Notification block (slug/name) told on failure.")] = None,
    teardown: Annotated[bool, typer.Option(help="Stop the stack at the end.")] = False,
    request_timeout: Annotated[float, typer.Option(help="Per-request deadline, s.")] = 120.0,
) -> None:
    """Run the nightly evaluation flow locally (no server, no worker)."""
    from flows.cluster_eval import cluster_eval
    from flows.plan import BurstOptions

    try:
        burst_options = BurstOptions.model_validate(json.loads(burst)) if burst else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--burst") from exc
    state: Any = cluster_eval(
        serve_config=str(serve_config), traffic=traffic, since=since, until=until,
        speedup=speedup, golden_rounds=golden_rounds, tenant_burst=burst_options,
        thresholds=str(thresholds) if thresholds else None,
        warehouse=str(warehouse) if warehouse else None,
        out_dir=str(out_dir) if out_dir else None,
        notification_block=notification_block, teardown=teardown,
        request_timeout_s=request_timeout, return_state=True,
    )
    if state.is_completed():
        summary = state.result()
        typer.echo(summary["message"])
        for key in ("warehouse", "report", "data_docs"):
            typer.echo(f"{key}: {summary[key]}")
    else:
        typer.echo(f"{state.name}: {state.message}", err=True)
    raise typer.Exit(exit_code(state.type.value, state.name))
