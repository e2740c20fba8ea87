"""``cluster-eval evaluate`` and ``cluster-eval report``: thin wrappers over checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Warehouse = Annotated[Path, typer.Option("--warehouse", help="DuckDB warehouse file.")]
RunId = Annotated[str, typer.Option("--run-id", help="Run to evaluate (already loaded).")]

_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


def _bad_input(message: str) -> typer.Exit:
    """One line on stderr, exit 2: bad input, never the gate's exit 1."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(2)


def _check_warehouse(path: Path) -> None:
    """Refuse a file that exists but is not a DuckDB database, before DuckDB reads it."""
    if path.is_dir():
        raise _bad_input(f"--warehouse {path} is a directory, not a DuckDB file")
    try:
        with path.open("rb") as handle:
            header = handle.read(12)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _bad_input(f"cannot read the warehouse {path}: {exc}") from exc
    if header and header[8:12] != _DUCKDB_MAGIC:
        raise _bad_input(f"--warehouse {path} is not a DuckDB database file")


def evaluate(
    warehouse: Warehouse,
    run_id: RunId,
    thresholds: Annotated[Path | None, typer.Option(
        "--thresholds", help="Thresholds YAML (default: checks/thresholds.yaml).")] = None,
    data_docs: Annotated[Path | None, typer.Option(
        "--data-docs", help="Write Great Expectations Data Docs (HTML) here.")] = None,
    score: Annotated[bool, typer.Option(
        "--score/--no-score",
        help="Score the spans first; --no-score judges the scores already loaded "
             "(new thresholds on a stored night).")] = True,
) -> None:
    """Score the run's spans, compute the checks, run the gate: exit 0 PASS, 1 FAIL,
    3 INVALID, 2 bad input."""
    import duckdb

    from checks.errors import ChecksError
    from checks.evaluate import evaluate_run
    from warehouse.errors import WarehouseError

    _check_warehouse(warehouse)
    try:
        result = evaluate_run(warehouse, run_id, thresholds, data_docs, score=score)
    except (ChecksError, WarehouseError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except duckdb.IOException as exc:
        raise _bad_input(f"cannot open the warehouse {warehouse}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise _bad_input(
            f"{thresholds or 'the thresholds file'}: not a text file "
            f"(not UTF-8 at byte {exc.start}); thresholds are YAML") from exc
    typer.echo(result.message)
    # 0 PASS, 1 FAIL, 3 INVALID (docs/checks.md, "The verdict")
    raise typer.Exit({"PASS": 0, "FAIL": 1, "INVALID": 3}[result.verdict])


def report(
    warehouse: Warehouse,
    run_id: RunId,
    out: Annotated[Path, typer.Option("--out", help="Directory for report.html.")],
    thresholds: Annotated[Path | None, typer.Option(
        "--thresholds", help="The thresholds YAML the run was checked with; the timeline "
                             "shades the checks' windows with it (default: "
                             "checks/thresholds.yaml).")] = None,
) -> None:
    """Print each check's buckets and write a static HTML report: the timeline of the
    night, the 30-night trend of its judged metrics and a chart per check."""
    import duckdb

    from checks.errors import ThresholdsError
    from checks.report import print_report, write_report
    from checks.thresholds import load_thresholds
    from warehouse import opened
    from warehouse.errors import WarehouseError

    _check_warehouse(warehouse)
    try:
        limits = load_thresholds(thresholds)
    except ThresholdsError as exc:
        raise _bad_input(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise _bad_input(f"{thresholds}: not a text file (not UTF-8 at byte {exc.start}); "
                         "thresholds are YAML") from exc
    try:
        with opened(warehouse, read_only=True) as con:
            ((found,),) = con.execute("SELECT count(*) FROM runs WHERE run_id = $run_id",
                                      {"run_id": run_id}).fetchall()
        if not found:
            raise _bad_input(f"run {run_id!r} is not in the warehouse {warehouse}")
        print_report(warehouse, run_id)
        page = write_report(warehouse, run_id, out, limits)
    except WarehouseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except duckdb.Error as exc:  # a DuckDB file without the runs table
        raise _bad_input(f"{warehouse} is not a cluster-eval warehouse: {exc}") from exc
    typer.echo(f"report: {page}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("report")(report)
