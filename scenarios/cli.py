"""``cluster-eval scenarios list`` and ``cluster-eval scenarios run [NAME…]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

scenarios_app = typer.Typer(no_args_is_help=True, help="Fault-injection scenarios.")


def register(app: typer.Typer) -> None:
    app.add_typer(scenarios_app, name="scenarios")


@scenarios_app.command("list")
def list_command() -> None:
    """Scenarios in the catalog and the check each must fail."""
    from scenarios.model import catalog

    for scenario in catalog():
        summary = " ".join(scenario.description.split())
        caught_by = " + ".join([scenario.catches or "-", *scenario.also_fails])
        print(f"{scenario.name:<18} catches {caught_by:<22} {summary}")


@scenarios_app.command("run")
def run_command(
    names: Annotated[list[str] | None, typer.Argument(help="Scenarios; none: all.")] = None,
    repetitions: Annotated[int, typer.Option(min=1, help="Runs per scenario.")] = 1,
    warehouse: Annotated[Path | None, typer.Option(help="DuckDB file.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for runs and matrix.md.")] = None,
) -> None:
    """Run scenarios through the nightly flow; write scenario_results and matrix.md.

    Exit code 0 when the matrix is diagonal (each fault caught by its own check and
    nothing else failing), 1 otherwise.
    """
    from cluster_eval.settings import get_settings
    from scenarios.matrix import is_diagonal, markdown
    from scenarios.model import catalog
    from scenarios.runner import record, run_scenario

    settings = get_settings()
    db = warehouse or settings.warehouse_path
    out_dir = out or settings.home / "scenarios"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for scenario in catalog(names or None):
        for repetition in range(1, repetitions + 1):
            run = run_scenario(scenario, repetition, db=db, out_dir=out_dir)
            record(db, [run])
            runs.append(run)
            print(f"{scenario.name} #{repetition}: {run.state} in {run.wall_s:.0f} s — "
                  + ", ".join(f"{v.check}={v.status}" for v in run.verdicts)
                  + "".join(f" — NOT EXERCISED: {u}" for u in run.unreached), flush=True)
    table = markdown(runs)
    (out_dir / "matrix.md").write_text(table)
    print(table)
    raise typer.Exit(0 if is_diagonal(runs) else 1)
