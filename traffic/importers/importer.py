"""``import_trace``: a public trace file → traffic records the loader and replay accept.

Read (format by name) → bad rows aside → sessions → window → thinning (timed traces) or
layout (untimed ones) → records. Traces without text (Azure, BurstGPT) get prompts from
the builders' task pool, picked by the recorded prompt length exactly as the
``azure-trace`` arrival process does (:meth:`TaskPool.pick` with ``context_tokens``).
Block-hash traces (Mooncake) get text made up block by block in the served model's
tokenizer, so their shared prefixes are shared tokens (:mod:`traffic.importers.block_text`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from traffic.builders.pool import shared_pool
from traffic.builders.sources import SHIPPED_DATA_DIR
from traffic.errors import TrafficFormatError, WorkloadError
from traffic.format import TrafficRecord
from traffic.importers.block_text import BlockText
from traffic.importers.csv_traces import AZURE, BURSTGPT, read_csv_trace
from traffic.importers.mooncake import read_mooncake
from traffic.importers.options import ImportOptions, TraceRequest
from traffic.importers.shaping import (
    Window,
    group_sessions,
    layout,
    resolve_window,
    thin,
    within,
)
from traffic.importers.sharegpt import read_sharegpt
from traffic.importers.truncate import truncate_middle
from traffic.loader import DEFAULT_MAX_SPAN_S, BadLine, write_quarantine

__all__ = ["IMPORT_FORMATS", "ImportResult", "TraceFormat", "import_trace"]

DEFAULT_MAX_TOKENS = 128  # a turn whose recorded answer is unknown (the last one)
_NAMED_IN_ERROR = 3

Reader = Callable[..., Iterator[TraceRequest | BadLine]]


@dataclass(frozen=True)
class TraceFormat:
    """A readable trace format: its reader and what its clock is."""

    read: Reader
    clock: Literal["timestamps", "offsets", "none"]


IMPORT_FORMATS: dict[str, TraceFormat] = {
    "azure": TraceFormat(partial(read_csv_trace, trace=AZURE), "timestamps"),
    "burstgpt": TraceFormat(partial(read_csv_trace, trace=BURSTGPT), "offsets"),
    "sharegpt": TraceFormat(read_sharegpt, "none"),
    "mooncake": TraceFormat(read_mooncake, "offsets"),
}


@dataclass
class ImportResult:
    """The records (arrivals: seconds from the window start) and what was left out."""

    records: list[TrafficRecord]
    n_read: int  # requests read from good rows / conversations
    n_in_window: int  # requests of the sessions inside the window
    window_s: float  # the window's length in trace seconds
    trace_rate: float | None  # requests/s of the trace inside the window (timed traces)
    bad: list[BadLine] = field(default_factory=list)
    quarantine_path: Path | None = None
    # the window's start as a time of day, for traces with timestamps (arrival 0 is then)
    clock_start: datetime | None = None


def import_trace(
    path: str | Path, options: ImportOptions, *, quarantine_path: str | Path
) -> ImportResult:
    """Import ``path`` as ``options.format``; bad rows go to ``quarantine_path``.

    Raises :class:`TrafficFormatError` when the file is unusable or its bad share passes
    ``options.max_bad_share``, :class:`WorkloadError` when the options cannot be met.
    """
    path = Path(path)
    if options.format not in IMPORT_FORMATS:
        known = ", ".join(sorted(IMPORT_FORMATS))
        raise WorkloadError(f"unknown trace format {options.format!r}; known: {known}")
    if not path.is_file():
        raise TrafficFormatError("no such trace file", file=path)
    trace = IMPORT_FORMATS[options.format]
    requests: list[TraceRequest] = []
    bad: list[BadLine] = []
    for item in trace.read(
        path, tenant=options.tenant or options.format, tenant_column=options.tenant_column
    ):
        (bad if isinstance(item, BadLine) else requests).append(item)  # type: ignore[arg-type]
    sessions = group_sessions(requests)
    written = write_quarantine(bad, Path(quarantine_path)) if bad else None
    _check_bad_share(path, bad, len(sessions), options.max_bad_share, written)
    if trace.clock == "none":
        if options.rate is None:
            raise WorkloadError(f"{options.format} traces have no times: give --rate")
        window = resolve_window(options.since, options.until, zero=0.0, timestamps=False)
        chosen = layout(
            sessions,
            rate=options.rate,
            think_time_s=options.think_time_s,
            seed=options.seed,
            window=window,
        )
        in_window, trace_rate = sum(len(s) for s in chosen), None
        window_s = _span(chosen, window)
    else:
        zero = min(r.time for r in requests if r.time is not None)
        window = resolve_window(
            options.since, options.until, zero=zero, timestamps=trace.clock == "timestamps"
        )
        windowed = within(sessions, window)
        in_window = sum(len(s) for s in windowed)
        window_s = _span(windowed, window)
        trace_rate = in_window / window_s if window_s > 0 else None
        chosen = windowed
        if options.rate is not None:
            chosen = thin(windowed, options.rate, window_s, options.seed)
    kept = sorted((r for s in chosen for r in s), key=lambda r: (r.time, r.session_id, r.turn))
    if not kept:
        raise WorkloadError(f"no requests of {path} fall in the window")
    _check_span(kept)
    return ImportResult(
        records=_records(kept, options, window.start),
        n_read=len(requests),
        n_in_window=in_window,
        window_s=window_s,
        trace_rate=trace_rate,
        bad=bad,
        quarantine_path=written,
        clock_start=datetime.fromtimestamp(window.start, UTC)
        if trace.clock == "timestamps" else None,
    )


def _span(sessions: list[list[TraceRequest]], window: Window) -> float:
    """The window's length: to ``until`` when given, else to the last request kept."""
    if window.end is not None:
        return window.end - window.start
    last = max((r.time for s in sessions for r in s if r.time is not None), default=window.start)
    return last - window.start


def _check_span(kept: list[TraceRequest]) -> None:
    """Refuse what the loader would refuse: a file longer than its ``max_span_s``."""
    span = (kept[-1].time or 0.0) - (kept[0].time or 0.0)
    if span > DEFAULT_MAX_SPAN_S:
        raise WorkloadError(
            f"the imported requests span {span / 86_400:.1f} days; a traffic file loads at "
            f"most {DEFAULT_MAX_SPAN_S / 86_400:g} days (the loader's max_span_s): "
            "give --since/--until"
        )


def _check_bad_share(
    path: Path, bad: list[BadLine], n_good: int, max_share: float, written: Path | None
) -> None:
    """Fail as the loader does when too many rows are bad (or none is good)."""
    total = n_good + len(bad)
    if total == 0:
        raise TrafficFormatError("holds no requests", file=path)
    share = len(bad) / total
    if bad and (share > max_share or n_good == 0):
        named = "; ".join(b.describe() for b in bad[:_NAMED_IN_ERROR])
        more = f" and {len(bad) - _NAMED_IN_ERROR} more" if len(bad) > _NAMED_IN_ERROR else ""
        first = bad[0]
        raise TrafficFormatError(
            f"{len(bad)} of {total} rows are malformed ({share:.1%} > {max_share:.1%} "
            f"allowed): {named}{more}; all listed in {written}",
            file=first.file,
            line=first.line,
            field=first.field,
        )


def _records(
    requests: list[TraceRequest], options: ImportOptions, start: float
) -> list[TrafficRecord]:
    """One record per request; textless ones get a pool prompt of the recorded length."""
    rng = random.Random(f"{options.seed}:tasks")
    pool = None
    block_text = None
    records = []
    for request in requests:
        tags = {
            "source": f"import:{options.format}",
            "session_id": request.session_id,
            "turn": str(request.turn),
            "trace_line": str(request.line),
        }
        expect = None
        capped = False
        body: dict[str, Any]
        if request.blocks is not None:
            block_text = block_text or BlockText.load(
                options.tokenizer, block_size=options.block_size,
                block_tokens=options.block_tokens, seed=options.seed)
            messages, capped = block_text.messages(
                request.blocks, request.context_tokens or 1, options.max_prompt_tokens)
            body = {"model": options.model, "messages": messages,
                    "temperature": options.temperature}
            budget = DEFAULT_MAX_TOKENS if request.generated_tokens is None \
                else request.generated_tokens
            tags["trace_context_tokens"] = str(request.context_tokens)
            tags["trace_blocks"] = str(len(request.blocks))
        elif request.messages is None:
            pool = pool or shared_pool(options.data_dir or SHIPPED_DATA_DIR)
            target = max(1, request.context_tokens or 1)
            if options.max_prompt_tokens is not None:
                target = min(target, options.max_prompt_tokens)
            task = pool.pick(options.tasks, rng, context_tokens=target)
            body = task.body(model=options.model, temperature=options.temperature)
            expect = task.expect
            tags |= {"task": task.kind, "task_source": task.source_id}
            tags["trace_context_tokens"] = str(request.context_tokens)
            budget = (
                task.max_tokens if request.generated_tokens is None else request.generated_tokens
            )
        else:
            body = {
                "model": options.model,
                "messages": [dict(m) for m in request.messages],
                "temperature": options.temperature,
            }
            budget = (
                DEFAULT_MAX_TOKENS if request.generated_tokens is None else request.generated_tokens
            )
        if request.generated_tokens is not None:
            tags["trace_generated_tokens"] = str(request.generated_tokens)
        if options.max_prompt_tokens is not None and request.blocks is None:
            cut = truncate_middle(body["messages"], options.max_prompt_tokens)
            capped = cut != body["messages"]
            body["messages"] = cut
        if capped:
            tags["truncated"] = "middle"
        if options.max_tokens is not None:
            budget = min(budget, options.max_tokens)
        body["max_tokens"] = max(1, budget)
        assert request.time is not None
        records.append(
            TrafficRecord(
                request_id=f"{options.prefix}-{request.line:07d}-{request.turn:03d}",
                arrival=round(request.time - start, 6),
                tenant_id=request.tenant_id,
                body=body,
                expect=expect,
                tags=tags,
            )
        )
    return records
