"""``cluster-eval export prometheus``: one judged run's metrics to a ``.prom`` file for
node_exporter's textfile collector, or to a Pushgateway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exports.cli import export_group


def _bad_input(message: str) -> typer.Exit:
    """One line on stderr, exit 2 (bad input or an unreachable target)."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(2)


def prometheus(
    warehouse: Annotated[Path, typer.Option("--warehouse", help="DuckDB warehouse file.")],
    run_id: Annotated[str, typer.Option("--run-id", help="A judged run in the warehouse.")],
    textfile: Annotated[Path | None, typer.Option(
        "--textfile", help="Write a .prom file here (atomically) for node_exporter's "
                           "textfile collector.")] = None,
    pushgateway: Annotated[str | None, typer.Option(
        "--pushgateway", help="Push to this Pushgateway URL instead (user:password@ in "
                              "it becomes basic auth).")] = None,
    job: Annotated[str, typer.Option("--job", help="Pushgateway job name.")] = "cluster_eval",
    stdout: Annotated[bool, typer.Option(
        "--stdout", help="Print the metrics instead of writing or pushing them.")] = False,
) -> None:
    """A judged run's verdict, checks, buckets and replay fidelity as Prometheus metrics.

    Exit 0 written or pushed, 2 bad input or an unreachable target (docs/exports.md).
    """
    from pydantic import ValidationError

    from exports.prometheus import (
        PrometheusExportError,
        PrometheusTarget,
        export_run,
        render,
        without_credentials,
    )

    try:
        if stdout:
            if textfile is not None or pushgateway is not None:
                raise _bad_input("--stdout prints the metrics; give it without --textfile "
                                 "and --pushgateway")
            typer.echo(render(warehouse, run_id), nl=False)
            return
        if (textfile is None) == (pushgateway is None):
            raise _bad_input("give exactly one of --textfile PATH.prom, --pushgateway URL "
                             "or --stdout")
        try:
            target = PrometheusTarget(textfile=textfile, pushgateway=pushgateway, job=job)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            what = error["msg"].removeprefix("Value error, ")
            raise _bad_input(without_credentials(f"--{where}: {what}" if where else what)
                             ) from None
        where = export_run(warehouse, run_id, target)
    except PrometheusExportError as exc:
        raise _bad_input(without_credentials(str(exc))) from None
    typer.echo(f"metrics of run {run_id} → {without_credentials(where)}")


def register(app: typer.Typer) -> None:
    export_group(app).command("prometheus")(prometheus)
