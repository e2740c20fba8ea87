"""``cluster-eval baseline show|accept|reset``: the team's say over the history baseline.

After an intended change (a new model, a new GPU type) the nights after it are worse
or better than the old normal on purpose. ``accept`` makes one night the start of
the new normal (it joins the baseline even if the history check failed it);
``reset`` starts the key's baseline over from the next night. Both are recorded in
``baseline_events`` with their time and reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Warehouse = Annotated[Path, typer.Option("--warehouse", help="DuckDB warehouse file.")]
Reason = Annotated[str, typer.Option("--reason", help="Why: kept with the event.")]
Thresholds = Annotated[Path | None, typer.Option(
    "--thresholds", help="Thresholds YAML for history.nights (default: the shipped one).")]

baseline_app = typer.Typer(no_args_is_help=True, help=__doc__.split("\n")[0])


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@baseline_app.command("show")
def show(
    warehouse: Warehouse,
    key: Annotated[str | None, typer.Option("--key", help="One baseline key (default: all).")]
        = None,
    thresholds: Thresholds = None,
) -> None:
    """The nights the next run of each key will be judged against, and the events."""
    from checks import baseline
    from checks.errors import ThresholdsError
    from checks.thresholds import load_thresholds
    from warehouse import opened
    from warehouse.errors import WarehouseError

    try:
        nights = load_thresholds(thresholds).history.nights
        with opened(warehouse, read_only=True) as con:
            for k in [key] if key else baseline.keys(con):
                status = baseline.current_baseline(con, k, nights)
                typer.echo(f"{k}: {status.describe()}")
                for run_id in status.nights:
                    (started,), = con.execute(
                        "SELECT started_at FROM runs WHERE run_id = $r", {"r": run_id}
                    ).fetchall()
                    typer.echo(f"  {started:%Y-%m-%d %H:%M} {run_id}")
                for _, action, event_run, at, reason in baseline.events(con, k):
                    typer.echo(f"  {at:%Y-%m-%d %H:%M} {action} {event_run or ''} — {reason}")
    except (ThresholdsError, WarehouseError) as exc:
        raise _fail(str(exc)) from exc


@baseline_app.command("accept")
def accept(
    warehouse: Warehouse,
    run_id: Annotated[str, typer.Option("--run-id", help="The night to accept.")],
    reason: Reason,
) -> None:
    """Accept a night as the new normal of its key (the baseline restarts from it)."""
    from checks import baseline
    from checks.errors import ChecksError
    from warehouse import opened
    from warehouse.errors import WarehouseError

    try:
        with opened(warehouse) as con:
            key = baseline.accept(con, run_id, reason)
    except (ChecksError, WarehouseError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{key}: accepted {run_id} as the new normal")


@baseline_app.command("reset")
def reset(
    warehouse: Warehouse,
    key: Annotated[str, typer.Option("--key", help="The baseline key to start over.")],
    reason: Reason,
) -> None:
    """Start a key's baseline over: only nights after now will form it."""
    from checks import baseline
    from warehouse import opened
    from warehouse.errors import WarehouseError

    try:
        with opened(warehouse) as con:
            baseline.reset(con, key, reason)
    except (WarehouseError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{key}: baseline reset; the next nights establish it again")


def register(app: typer.Typer) -> None:
    app.add_typer(baseline_app, name="baseline")
