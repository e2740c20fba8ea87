"""``cluster-eval traffic …`` commands.

``traffic_app`` is the sub-app; other traffic commands (``replay``) add themselves to it
with ``@traffic_app.command()``. Heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "traffic_app"]

traffic_app = typer.Typer(
    no_args_is_help=True, help="Captured traffic: build workloads and the golden set, replay."
)


def register(app: typer.Typer) -> None:
    app.add_typer(traffic_app, name="traffic")


@traffic_app.command("build")
def build(
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Workload spec YAML (traffic/specs/).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file: .jsonl or .parquet.")
    ] = None,
    golden: Annotated[bool, typer.Option("--golden", help="Build the golden set instead.")] = False,
    arrivals: Annotated[
        str | None, typer.Option(help="poisson, gamma, azure-trace or multi-tenant-day.")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Mean requests/s (poisson, gamma).")] = None,
    cv: Annotated[
        float | None, typer.Option(help="Burstiness of gamma gaps (1 = Poisson).")
    ] = None,
    requests: Annotated[
        int | None, typer.Option(help="Expected requests (multi-tenant-day).")
    ] = None,
    trace: Annotated[Path | None, typer.Option(help="Azure trace CSV (azure-trace).")] = None,
    duration: Annotated[float | None, typer.Option(help="Source seconds to keep.")] = None,
    count: Annotated[int | None, typer.Option(help="At most this many requests.")] = None,
    tasks: Annotated[
        str | None, typer.Option(help="Task kinds, comma separated: json,tool,qa,math,doc_qa.")
    ] = None,
    tenants: Annotated[
        str | None, typer.Option(help="Tenants with weights: acme:3,globex:1.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Same seed, same file.")] = None,
    speedup: Annotated[float | None, typer.Option(help="Divide arrival offsets by this.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Cap on each request's max_tokens.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Workload name (request id prefix).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data sets folder; default: traffic/data.")
    ] = None,
) -> None:
    """Build a workload (or the golden set) from the shipped public data sets."""
    from traffic.errors import TrafficError

    try:
        if golden:
            _build_golden(out, data_dir)
            return
        arrival_params = {
            "process": arrivals,
            "rate": rate,
            "cv": cv,
            "requests": requests,
            "path": str(trace) if trace else None,
        }
        overrides: dict[str, Any] = {
            "arrivals": {k: v for k, v in arrival_params.items() if v is not None},
            "tasks": _split(tasks),
            "tenants": _tenants(tenants),
            "seed": seed,
            "speedup": speedup,
            "duration_s": duration,
            "max_requests": count,
            "max_tokens": max_tokens,
            "name": name,
            "data_dir": str(data_dir) if data_dir else None,
        }
        if out is None:
            raise typer.BadParameter("--out is required", param_hint="--out")
        _build_workload(spec, out, overrides)
    except TrafficError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _build_golden(out: Path | None, data_dir: Path | None) -> None:
    from traffic.builders import GOLDEN_PATH, build_golden
    from traffic.writer import write_traffic

    path = write_traffic(build_golden(data_dir), out or GOLDEN_PATH)
    typer.echo(f"golden set written to {path}")


def _build_workload(spec_path: Path | None, out: Path, overrides: dict[str, Any]) -> None:
    from collections import Counter

    from traffic.builders import build_workload, load_spec
    from traffic.builders.spec import spec_from_mapping
    from traffic.writer import write_traffic

    if spec_path is not None:
        spec = load_spec(spec_path, **overrides)
    else:
        if not overrides["arrivals"].get("process"):
            raise typer.BadParameter("give --spec FILE or --arrivals NAME", param_hint="--arrivals")
        spec = spec_from_mapping({k: v for k, v in overrides.items() if v is not None})
    records = build_workload(spec)
    write_traffic(records, out)
    tenants = Counter(r.tenant_id for r in records)
    offsets = [r.arrival for r in records if isinstance(r.arrival, float)]  # built: offsets
    span = max(offsets) - min(offsets)
    typer.echo(
        f"{len(records)} requests over {span:.1f} s "
        f"({', '.join(f'{t}: {n}' for t, n in sorted(tenants.items()))}) written to {out}"
    )


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def _tenants(value: str | None) -> list[dict[str, Any]] | None:
    """``acme:3,globex:1`` → tenant entries; a missing weight means 1."""
    if not value:
        return None
    out = []
    for part in _split(value) or []:
        tenant, _, weight = part.partition(":")
        try:
            out.append({"id": tenant, "weight": float(weight) if weight else 1.0})
        except ValueError as exc:
            raise typer.BadParameter(
                f"bad tenant weight in {part!r}", param_hint="--tenants"
            ) from exc
    return out


@traffic_app.command("inspect")
def inspect(
    file: Annotated[Path, typer.Argument(help="A traffic file (.jsonl or .parquet).")],
    window: Annotated[
        float, typer.Option(min=1, help="Seconds per window of the rate over time.")
    ] = 60.0,
    min_shared_tokens: Annotated[
        int, typer.Option(min=1, help="Smallest shared context followed (as kv_cache_eviction).")
    ] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """What a traffic file holds: counts, rate over time, tenants, sessions, sizes, shared
    contexts and bad lines. Reads only."""
    from traffic.errors import TrafficError
    from traffic.inspect import describe, inspect_traffic

    try:
        summary = inspect_traffic(file, window_s=window, min_shared_tokens=min_shared_tokens)
    except TrafficError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(summary.model_dump_json(indent=2) if as_json else describe(summary))


@traffic_app.command("mix")
def mix_command(
    spec: Annotated[Path, typer.Argument(help="A mix spec YAML: sources, each a tenant.")],
    out: Annotated[Path, typer.Option("--out", help="Output traffic file: .jsonl or .parquet.")],
) -> None:
    """One workload from several sources (imports, traffic files, specs), clocks aligned."""
    from collections import Counter

    from traffic.errors import TrafficError
    from traffic.mix import load_mix_spec, mix
    from traffic.writer import write_traffic

    try:
        parsed = load_mix_spec(spec)
        records, sources = mix(parsed, spec.resolve().parent, out=out)
    except TrafficError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    write_traffic(records, out)
    span = max(float(r.arrival) for r in records) if records else 0.0  # type: ignore[arg-type]
    typer.echo(f"{len(records)} requests over {span:.1f} s written to {out}")
    for source in sources:
        tenants = Counter(r.tenant_id for r in records if r.tags["mix_source"] == source.name)
        typer.echo(f"  {source.name}: {len(source.records)} requests "
                   f"({', '.join(f'{t}: {n}' for t, n in sorted(tenants.items()))})")
