"""The ``cluster-eval export`` group: each exporter module adds its own command to it."""

from __future__ import annotations

import typer

EXPORT_HELP = "Export a judged run to where a team already looks."


def export_group(app: typer.Typer) -> typer.Typer:
    """The ``export`` sub-app, created by the first exporter that registers: each
    exporter module adds its own command to it without knowing the others."""
    for group in app.registered_groups:
        if group.name == "export" and group.typer_instance is not None:
            return group.typer_instance
    group_app = typer.Typer(no_args_is_help=True, help=EXPORT_HELP)
    app.add_typer(group_app, name="export")
    return group_app
