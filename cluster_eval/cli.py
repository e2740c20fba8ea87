"""``cluster-eval`` command line.

Each package owns its commands in its own ``cli.py`` and registers them here, so this
file stays a table of contents. Heavy imports (ray, vllm, prefect, duckdb) happen
inside the commands, never at start-up.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import MutableMapping

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.split("\n")[0])

# package.cli modules that expose ``register(app: typer.Typer) -> None``
_COMMAND_MODULES = [
    "serving.cli",
    "traffic.cli",
    "traffic.import_cli",
    "traffic.replay_cli",
    "checks.cli",
    "checks.baseline_cli",
    "flows.cli",
    "scenarios.cli",
    "exports.prometheus_cli",
    "exports.otlp_cli",
]


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
                continue  # package not built yet
            raise
        module.register(app)


_register_all()


def _check_settings() -> None:
    """A bad ``CLUSTER_EVAL_*`` variable is bad input: one line per variable naming it
    and what it must be (exit 2), never a traceback from deep inside a command. The
    value is not echoed: an environment can hold secrets."""
    from pydantic import ValidationError

    from cluster_eval.settings import Settings

    try:
        Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            print(f"error: environment variable CLUSTER_EVAL_{field.upper()}: {error['msg']}",
                  file=sys.stderr)
        raise SystemExit(2) from None


# Prefect's temporary server reports usage unless told not to; on a cluster without
# internet access that is an ERROR line in every run's log. A value already set wins.
NO_USAGE_REPORTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def no_usage_reports(environ: MutableMapping[str, str]) -> None:
    for name, value in NO_USAGE_REPORTS.items():
        environ.setdefault(name, value)


def main() -> None:
    """Run the CLI. A file that is not text, read by a command that expected YAML or
    JSON, is bad input (exit 2, one line), not a crash and never the gate's exit 1."""
    _check_settings()
    no_usage_reports(os.environ)
    try:
        app()
    except UnicodeDecodeError as exc:
        print(f"error: an input file is not text (not UTF-8 at byte {exc.start}); "
              "the file named in the command's options must be YAML, JSON or JSONL",
              file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
