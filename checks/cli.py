"""``cluster-eval evaluate`` and ``cluster-eval report``: thin wrappers over checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Warehouse = Annotated[Path, typer.Option("--warehouse", help="DuckDB warehouse file.")]
RunId = Annotated[str, typer.Option("--run-id", help="Run to evaluate (already loaded).")]


def evaluate(
    warehouse: Warehouse,
    run_id: RunId,
    thresholds: Annotated[Path | None, typer.Option(
        "--thresholds", help="Thresholds YAML (default: checks/thresholds.yaml).")] = None,
    data_docs: Annotated[Path | None, typer.Option(
        "--data-docs", help="Write Great Expectations Data Docs (HTML) here.")] = None,
) -> None:
    """Score the run's spans, compute the five checks, run the gate; exit 1 on breach."""
    from checks.errors import ChecksError
    from checks.evaluate import evaluate_run
    from warehouse.errors import WarehouseError

    try:
        result = evaluate_run(warehouse, run_id, thresholds, data_docs)
    except (ChecksError, WarehouseError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(result.message)
    raise typer.Exit(0 if result.passed else 1)


def report(
    warehouse: Warehouse,
    run_id: RunId,
    out: Annotated[Path, typer.Option("--out", help="Directory for report.html.")],
) -> None:
    """Print each check's buckets and write a static HTML report with a chart per check."""
    from checks.report import print_report, write_report
    from warehouse.errors import WarehouseError

    try:
        print_report(warehouse, run_id)
        page = write_report(warehouse, run_id, out)
    except WarehouseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"report: {page}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("report")(report)
