"""One workload from several sources: ``cluster-eval traffic mix SPEC --out FILE``.

A night's traffic often comes from more than one place: a big tenant's production
trace, a small tenant's batch, a synthetic probe. A mix spec names each source and the
tenant it stands for, and the mix is one traffic file, in arrival order::

    name: chat-and-batch
    align: start                 # or clock
    sources:
      - name: chat
        tenant: chat
        import: {trace: conversation_trace.jsonl, format: mooncake, until: 600,
                 rate: 0.2, block_tokens: 16}
      - name: batch
        tenant: batch
        offset_s: 120
        traffic: batch.jsonl
      - name: probe
        spec: ../traffic/specs/poisson-smoke.yaml

A source is exactly one of ``import`` (a trace through ``traffic import``: ``trace``
plus that command's options), ``traffic`` (a traffic file, read by the loader) or
``spec`` (a workload spec, built). Relative paths are relative to the spec file.

**Clocks.** Each source's arrivals count from its own start (an import's window start,
a file's first record, a spec's zero). ``align: start`` starts every source at the
mix's zero, plus its ``offset_s``. ``align: clock`` keeps the sources' real times
apart: each starts at its clock start (an import of a trace with timestamps, a traffic
file with absolute arrivals) minus the earliest one, plus ``offset_s``; a source with
no clock is an error naming it. ``tenant`` replaces every record's tenant (default: the
source's own). Request ids are prefixed with the source's name (default its tenant, or
``source-N``) so two sources never collide, and every record gets
``tags.mix_source``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from traffic.errors import WorkloadError
from traffic.format import TrafficRecord

__all__ = ["MixSource", "MixSpec", "MixedSource", "load_mix_spec", "mix"]


class MixSource(BaseModel):
    """One source of a mix: exactly one of ``import``, ``traffic``, ``spec``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, min_length=1, pattern=r"^[\w.-]+$")
    tenant: str | None = Field(default=None, min_length=1)
    offset_s: float = Field(default=0.0, ge=0)
    import_: dict[str, Any] | None = Field(default=None, alias="import")
    traffic: Path | None = None
    spec: Path | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MixSource:
        given = [k for k, v in (("import", self.import_), ("traffic", self.traffic),
                                ("spec", self.spec)) if v is not None]
        if len(given) != 1:
            raise ValueError("a source is exactly one of import, traffic or spec"
                             + (f" (this one gives {' and '.join(given)})" if given else ""))
        if self.import_ is not None and "trace" not in self.import_:
            raise ValueError("import: needs 'trace' (the trace file) beside its options")
        return self


class MixSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "mix"
    align: Literal["start", "clock"] = "start"
    sources: list[MixSource] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> MixSpec:
        names = [name_of(s, i) for i, s in enumerate(self.sources)]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"source names must differ (give 'name'): {', '.join(repeated)}")
        return self


def name_of(source: MixSource, index: int) -> str:
    return source.name or source.tenant or f"source-{index + 1}"


@dataclass
class MixedSource:
    """What one source gave: its records (offsets from its own start) and its clock."""

    name: str
    records: list[TrafficRecord]
    clock_start: datetime | None


def load_mix_spec(path: str | Path) -> MixSpec:
    """Read and check a mix spec; a :class:`WorkloadError` names the file and the field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WorkloadError(f"cannot read mix spec {path}: {exc}") from exc
    try:
        return MixSpec.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise WorkloadError(f"mix spec {path}: {where + ': ' if where else ''}{message}") \
            from exc


def _read(source: MixSource, name: str, base: Path, quarantine: Path) -> MixedSource:
    if source.import_ is not None:
        from traffic.importers import ImportOptions, import_trace

        options = dict(source.import_)
        trace = base / Path(options.pop("trace"))
        for key in ("tokenizer", "data_dir"):
            if options.get(key) is not None:
                options[key] = base / Path(options[key])
        try:
            parsed = ImportOptions.model_validate(options)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            raise WorkloadError(f"source {name!r}: import.{where}: "
                                f"{error['msg'].removeprefix('Value error, ')}") from exc
        result = import_trace(trace, parsed, quarantine_path=quarantine)
        return MixedSource(name, result.records, result.clock_start)
    if source.traffic is not None:
        from traffic.loader import load_traffic

        loaded = load_traffic(base / source.traffic, quarantine_path=quarantine)
        return MixedSource(name, loaded.records, loaded.start)
    from traffic.builders import build_workload, load_spec

    assert source.spec is not None
    return MixedSource(name, build_workload(load_spec(base / source.spec)), None)


def mix(spec: MixSpec, base: Path, *, out: Path | None = None
        ) -> tuple[list[TrafficRecord], list[MixedSource]]:
    """The mixed records in arrival order, and what each source gave.

    ``base`` is the folder relative paths start from (the spec file's). Bad lines of a
    source go to ``<out>.<name>.quarantine.jsonl`` (without ``out``: a temporary folder,
    dropped)."""
    with tempfile.TemporaryDirectory() as scratch:
        stem = out or Path(scratch) / "mix"
        sources = [_read(s, name, base, stem.with_name(f"{stem.name}.{name}.quarantine.jsonl"))
                   for s, name in ((s, name_of(s, i)) for i, s in enumerate(spec.sources))]
    starts = _starts(spec, sources)
    mixed = []
    for source, mixed_source, start in zip(spec.sources, sources, starts, strict=True):
        for record in mixed_source.records:
            offset = record.arrival
            assert isinstance(offset, float | int)  # importers, loader, builder: offsets
            mixed.append(record.model_copy(update={
                "request_id": f"{mixed_source.name}-{record.request_id}",
                "arrival": round(start + source.offset_s + float(offset), 6),
                "tenant_id": source.tenant or record.tenant_id,
                "tags": {**record.tags, "mix_source": mixed_source.name},
            }))
    mixed.sort(key=lambda r: r.arrival)  # stable: a source's own order within a tie
    return mixed, sources


def _starts(spec: MixSpec, sources: list[MixedSource]) -> list[float]:
    """Each source's start on the mix's clock (before its offset_s)."""
    if spec.align == "start":
        return [0.0] * len(sources)
    clockless = [s.name for s in sources if s.clock_start is None]
    if clockless:
        raise WorkloadError(
            f"align: clock needs every source to have times of day; {', '.join(clockless)} "
            "has none (a spec, a trace with offsets, a file of offsets): use align: start "
            "and offset_s")
    zero = min(s.clock_start for s in sources if s.clock_start is not None)
    return [(s.clock_start - zero).total_seconds() for s in sources
            if s.clock_start is not None]
