"""``cluster-eval export otlp``: one run's spans to an OpenTelemetry collector."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from exports.cli import export_group


def _header_names(values: list[str]) -> dict[str, str]:
    """``NAME=ENV_VAR`` options into a mapping; the value is never seen here."""
    pairs: dict[str, str] = {}
    for value in values:
        header, sep, env_name = value.partition("=")
        if not sep or not header.strip() or not env_name.strip():
            raise typer.BadParameter(
                "give HEADER=ENV_VAR, the header's name and the NAME of the environment "
                "variable holding its value", param_hint="--header-env")
        pairs[header.strip()] = env_name.strip()
    return pairs


def otlp(
    warehouse: Annotated[Path, typer.Option("--warehouse", help="DuckDB warehouse file.")],
    run_id: Annotated[str, typer.Option("--run-id", help="A run in the warehouse.")],
    endpoint: Annotated[str, typer.Option(
        "--endpoint", help="OTLP/HTTP traces URL (a bare base URL gets /v1/traces), e.g. "
                           "http://127.0.0.1:4318")],
    header_env: Annotated[list[str] | None, typer.Option(
        "--header-env", help="HEADER=ENV_VAR: send HEADER with the value of the environment "
                             "variable ENV_VAR (repeatable), e.g. "
                             "Authorization=OTLP_AUTHORIZATION")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds per batch, retries included.")] = 10.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Spans per request.")] = 512,
    thresholds: Annotated[Path | None, typer.Option(
        "--thresholds", help="Thresholds YAML the run was judged with (bucket edges; "
                             "default: checks/thresholds.yaml).")] = None,
) -> None:
    """Send every span of the run as one OTLP trace each (GenAI semantic conventions plus
    cluster_eval.* attributes; no prompt or completion text). Exit 0 when all arrived,
    2 on bad input or when the collector did not take them."""
    import duckdb

    from checks.cli import _check_warehouse
    from checks.errors import ChecksError
    from exports.otlp import OtlpExportError, OtlpTarget, export_run

    _check_warehouse(warehouse)
    if not warehouse.exists():
        raise _error(f"no warehouse at {warehouse}")
    try:
        target = OtlpTarget.parse(endpoint=endpoint, headers_from_env=_header_names(
            header_env or []), timeout_s=timeout, batch_size=batch_size)
        result = export_run(warehouse, run_id, target, os.environ, thresholds)
    except (OtlpExportError, ChecksError) as exc:
        raise _error(str(exc)) from None
    except duckdb.Error as exc:
        raise _error(f"cannot read the warehouse {warehouse}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise _error(f"{thresholds}: not a text file (not UTF-8 at byte {exc.start}); "
                     "thresholds are YAML") from None
    typer.echo(f"exported {result.spans} spans of run {result.run_id} to {result.endpoint} "
               f"in {result.batches} request(s)")


def _error(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    export_group(app).command("otlp")(otlp)
