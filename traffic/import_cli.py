"""``cluster-eval traffic import``: a public trace file → a traffic file.

Thin: the options become an :class:`~traffic.importers.ImportOptions`, one call to
:func:`~traffic.importers.import_trace`, one write. Bad input is one ``error:`` line and
exit 2, as for every other traffic command.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from traffic.cli import traffic_app

__all__ = ["import_command", "register"]


def register(app: typer.Typer) -> None:
    """``traffic import`` lives under the ``traffic`` sub-app (traffic/cli.py adds it)."""
    traffic_app.command("import")(import_command)


def import_command(
    trace: Annotated[Path, typer.Argument(help="The trace file (CSV or JSON).")],
    format: Annotated[str, typer.Option("--format", help="azure, burstgpt, sharegpt or mooncake.")],
    out: Annotated[Path, typer.Option("--out", help="Output traffic file: .jsonl or .parquet.")],
    since: Annotated[
        str | None,
        typer.Option(help="Window start: seconds from the first request, or an ISO timestamp."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="Window end (exclusive), like --since.")] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Target requests/s: whole sessions are dropped (sharegpt: required)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 0,
    max_prompt_tokens: Annotated[
        int | None, typer.Option(help="Cut longer prompts in the middle (≈ 4 chars/token).")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on each max_tokens.")] = None,
    tenant: Annotated[
        str | None, typer.Option(help="One tenant for every request (default: the format).")
    ] = None,
    tenant_column: Annotated[
        str | None, typer.Option(help="Take the tenant from this column / conversation key.")
    ] = None,
    think_time: Annotated[
        float, typer.Option(help="Seconds between turns of a conversation (sharegpt).")
    ] = 10.0,
    tasks: Annotated[
        str | None,
        typer.Option(help="Task kinds whose prompts stand in for textless traces."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="The body's model name.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data sets folder for the prompts; default traffic/data.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Request id prefix.")] = None,
    block_size: Annotated[
        int, typer.Option(help="Tokens per hash block in the trace (mooncake: 512).")
    ] = 512,
    block_tokens: Annotated[
        int | None,
        typer.Option(help="Tokens each block becomes (mooncake); smaller shrinks prompts alike."),
    ] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="Served model's tokenizer.json (mooncake); default: the prepared one."),
    ] = None,
    quarantine: Annotated[
        Path | None, typer.Option(help="Bad rows go here; default <out>.quarantine.jsonl.")
    ] = None,
    max_bad_share: Annotated[
        float, typer.Option(help="Fail when more than this share of rows is bad.")
    ] = 0.05,
) -> None:
    """Import a public trace (Azure, BurstGPT, ShareGPT, Mooncake) as a traffic file."""
    from pydantic import ValidationError

    from traffic.errors import TrafficError

    try:
        _import(
            trace,
            out,
            quarantine or out.with_name(out.name + ".quarantine.jsonl"),
            {
                "format": format,
                "since": _edge(since, "--since"),
                "until": _edge(until, "--until"),
                "rate": rate,
                "seed": seed,
                "max_prompt_tokens": max_prompt_tokens,
                "max_tokens": max_tokens,
                "tenant": tenant,
                "tenant_column": tenant_column,
                "think_time_s": think_time,
                "tasks": [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
                "model": model,
                "data_dir": data_dir,
                "name": name,
                "block_size": block_size,
                "block_tokens": block_tokens,
                "tokenizer": tokenizer,
                "max_bad_share": max_bad_share,
            },
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        typer.echo(f"error: {where + ': ' if where else ''}{message}", err=True)
        raise typer.Exit(2) from exc
    except (TrafficError, _BadFlag) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


class _BadFlag(ValueError):
    """A flag value that cannot be read; reported like every other bad input."""


def _edge(value: str | None, flag: str) -> float | datetime | None:
    """Seconds from the trace's first request, or an ISO timestamp."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _BadFlag(f"{flag}: {value!r} is neither seconds nor an ISO timestamp") from None


def _import(trace: Path, out: Path, quarantine: Path, raw: dict[str, object]) -> None:
    from collections import Counter

    from traffic.importers import ImportOptions, import_trace
    from traffic.writer import write_traffic

    options = ImportOptions.model_validate({k: v for k, v in raw.items() if v is not None})
    result = import_trace(trace, options, quarantine_path=quarantine)
    write_traffic(result.records, out)
    tenants = Counter(r.tenant_id for r in result.records)
    offsets = [r.arrival for r in result.records if isinstance(r.arrival, float)]  # all are
    span = max(offsets) - min(offsets)
    typer.echo(
        f"{len(result.records)} requests over {span:.1f} s "
        f"({', '.join(f'{t}: {n}' for t, n in sorted(tenants.items()))}) written to {out}"
    )
    if result.trace_rate is not None:
        typer.echo(
            f"window {result.window_s:.1f} s: {result.n_in_window} requests in the trace "
            f"({result.trace_rate:.3g} req/s), {len(result.records)} kept "
            f"({len(result.records) / result.window_s:.3g} req/s)"
            if result.window_s > 0
            else f"window: {result.n_in_window} requests"
        )
        if options.rate is not None and options.rate > result.trace_rate:
            typer.echo(
                f"note: the trace has {result.trace_rate:.3g} req/s, below --rate "
                f"{options.rate:g}; nothing was thinned (replay --speedup makes it faster)"
            )
    if result.bad:
        first = result.bad[0]
        typer.echo(
            f"{len(result.bad)} bad rows quarantined in {result.quarantine_path} "
            f"(first: {first.describe()})"
        )
