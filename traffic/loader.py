"""Load a traffic file (or a directory of capture files), validating every record.

A capture is production data: a few lines will be broken (a crashed writer, a client
that sent nonsense, a clock step). Dropping the whole night's replay for one bad line
would be worse than replaying the rest, so each bad line is written to a quarantine
JSONL file with where it was and why, and the good lines are kept. The load fails —
with :class:`~traffic.errors.TrafficFormatError` naming the first bad lines — only when
the bad share passes ``max_bad_share``, because then the file itself is suspect.

JSONL is read line by line (not with ``polars.read_ndjson``) because a columnar reader
fails the whole file on the first bad line and cannot say which line it was; Parquet is
read with polars and reports 1-based row numbers instead of lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from traffic.errors import TrafficFormatError
from traffic.format import (
    FORMAT_VERSION,
    PARQUET_JSON_COLUMNS,
    TrafficRecord,
    parse_capture_file_name,
)

__all__ = ["BadLine", "LoadResult", "load_capture_dir", "load_traffic"]

PARQUET_VERSION_KEY = "cluster_eval.traffic_format"
_RAW_LIMIT = 4000  # characters of a bad line kept in quarantine: enough to see, not a dump
_NAMED_IN_ERROR = 3


@dataclass(frozen=True)
class BadLine:
    """One quarantined line: where it was and why it was refused."""

    file: str
    line: int
    field: str | None
    reason: str
    raw: str = ""
    unit: str = "line"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            self.unit: self.line,
            "field": self.field,
            "reason": self.reason,
            "raw": self.raw,
        }

    def describe(self) -> str:
        where = f"{Path(self.file).name} {self.unit} {self.line}"
        return (
            f"{where} field {self.field!r}: {self.reason}"
            if self.field
            else f"{where}: {self.reason}"
        )


@dataclass
class LoadResult:
    """Good records sorted by arrival, arrivals as float seconds from the first one."""

    records: list[TrafficRecord]
    n_total: int
    n_bad: int
    quarantine_path: Path | None
    start: datetime | None = None  # absolute time of the first arrival, if the file had one
    sources: list[Path] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)

    @property
    def n_good(self) -> int:
        return len(self.records)


def load_traffic(
    path: str | Path,
    *,
    quarantine_path: str | Path | None = None,
    max_bad_share: float = 0.05,
    strict_clock: bool = False,
) -> LoadResult:
    """Load one JSONL or Parquet traffic file.

    ``quarantine_path`` defaults to ``<file>.quarantine.jsonl`` beside the input and is
    written only when a line is bad. With ``strict_clock`` a record that arrives before
    the one above it is bad (a capture's clock must not step back); without it the
    records are simply sorted.
    """
    path = Path(path)
    if not path.is_file():
        raise TrafficFormatError("no such traffic file", file=path)
    intake = _Intake(strict_clock=strict_clock)
    _feed(intake, path, clock=str(path))
    default_quarantine = path.with_name(path.name + ".quarantine.jsonl")
    return intake.finish(
        sources=[path],
        quarantine_path=Path(quarantine_path) if quarantine_path else default_quarantine,
        max_bad_share=max_bad_share,
        label=path,
    )


def load_capture_dir(
    directory: str | Path,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    quarantine_path: str | Path | None = None,
    max_bad_share: float = 0.05,
    strict_clock: bool = False,
) -> LoadResult:
    """Load the capture files of ``directory`` whose records fall in ``[since, until)``.

    Files are those :mod:`traffic.capture` writes (named by the UTC time they were
    opened), so files opened after ``until`` or superseded before ``since`` are not even
    read. Naive ``since``/``until`` are UTC. Records outside the window are not counted.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TrafficFormatError("no such capture directory", file=directory)
    since, until = _aware(since), _aware(until)
    files = _files_in_window(directory, since, until)
    intake = _Intake(strict_clock=strict_clock, since=since, until=until)
    for path in files:
        parsed = parse_capture_file_name(path.name)
        _feed(intake, path, clock=parsed.writer if parsed is not None else str(path))
    return intake.finish(
        sources=files,
        quarantine_path=Path(quarantine_path)
        if quarantine_path
        else directory / "quarantine.jsonl",
        max_bad_share=max_bad_share,
        label=directory,
    )


# --- reading: each yields (position, raw dict) or a BadLine -------------------------


def _feed(intake: _Intake, path: Path, *, clock: str) -> None:
    try:
        intake.feed(_read_file(path), clock=clock)
    except OSError as exc:  # permissions, a vanished file: the file, not a line, is bad
        raise TrafficFormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc


def _read_file(path: Path) -> Iterator[tuple[str, int, str, dict[str, Any]] | BadLine]:
    if path.suffix == ".parquet":
        return _read_parquet(path)
    return _read_jsonl(path)


def _read_jsonl(path: Path) -> Iterator[tuple[str, int, str, dict[str, Any]] | BadLine]:
    name = str(path)
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue  # blank lines (a trailing newline) are not records
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield BadLine(
                    name,
                    number,
                    None,
                    f"bad JSON: {exc.msg} at column {exc.colno}",
                    text.rstrip("\n")[:_RAW_LIMIT],
                )
                continue
            if not isinstance(value, dict):
                yield BadLine(
                    name,
                    number,
                    None,
                    f"a record is a JSON object, not {type(value).__name__}",
                    text.rstrip("\n")[:_RAW_LIMIT],
                )
                continue
            yield name, number, "line", value


def _read_parquet(path: Path) -> Iterator[tuple[str, int, str, dict[str, Any]] | BadLine]:
    import polars as pl

    name = str(path)
    try:
        version = pl.read_parquet_metadata(path).get(PARQUET_VERSION_KEY)
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for a broken file
        raise TrafficFormatError(f"not a readable Parquet file ({exc})", file=path) from exc
    if version is not None and version != str(FORMAT_VERSION):
        raise TrafficFormatError(
            f"traffic format version {version}, this reader knows {FORMAT_VERSION}", file=path
        )
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        bad = _decode_json_columns(row)
        if bad is not None:
            column, reason = bad
            yield BadLine(name, number, column, reason, str(row.get(column))[:_RAW_LIMIT], "row")
            continue
        yield name, number, "row", {k: v for k, v in row.items() if v is not None}


def _decode_json_columns(row: dict[str, Any]) -> tuple[str, str] | None:
    for column in PARQUET_JSON_COLUMNS:
        value = row.get(column)
        if isinstance(value, str):
            try:
                row[column] = json.loads(value)
            except json.JSONDecodeError as exc:
                return column, f"bad JSON in the {column} column: {exc.msg}"
    return None


# --- validation and assembly ---------------------------------------------------------


class _Intake:
    """Validates raw records one by one and keeps good ones and bad ones apart."""

    def __init__(
        self,
        *,
        strict_clock: bool,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.strict_clock = strict_clock
        self.since, self.until = since, until
        self.windowed = since is not None or until is not None
        self.good: list[TrafficRecord] = []
        self.bad: list[BadLine] = []
        self.n_total = 0
        self._seen: dict[str, str] = {}
        self._timestamps: bool | None = None  # the kind of arrival of the first good record
        # last arrival per clock: one writer's clock must not step back, two writers interleave
        self._last: dict[str, tuple[float | datetime, str]] = {}

    def feed(
        self,
        items: Iterable[tuple[str, int, str, dict[str, Any]] | BadLine],
        *,
        clock: str,
    ) -> None:
        """Validate ``items``; ``clock`` names whose clock stamped them (file or writer)."""
        for item in items:
            if isinstance(item, BadLine):
                self.n_total += 1
                self.bad.append(item)
                continue
            file, number, unit, raw = item
            try:
                record = TrafficRecord.model_validate(raw)
            except ValidationError as exc:
                self.n_total += 1
                field_name, reason = _first_error(exc)
                self.bad.append(BadLine(file, number, field_name, reason, _raw(raw), unit))
                continue
            if self.windowed and not self._in_window(record):
                continue
            self.n_total += 1
            problem = self._check(record, f"{Path(file).name} {unit} {number}", clock)
            if problem is not None:
                field_name, reason = problem
                self.bad.append(BadLine(file, number, field_name, reason, _raw(raw), unit))
                continue
            self.good.append(record)

    def _in_window(self, record: TrafficRecord) -> bool:
        arrival = record.arrival
        if not isinstance(arrival, datetime):
            return True  # reported as bad by _check: a window needs timestamps
        if self.since is not None and arrival < self.since:
            return False
        return self.until is None or arrival < self.until

    def _check(self, record: TrafficRecord, where: str, clock: str) -> tuple[str, str] | None:
        arrival = record.arrival
        stamped = isinstance(arrival, datetime)
        if self.windowed and not stamped:
            return "arrival", "a date window needs absolute timestamps, got an offset"
        if self._timestamps is not None and stamped != self._timestamps:
            return "arrival", "file mixes offsets and timestamps; use one kind"
        if record.request_id in self._seen:
            return "request_id", f"duplicate of {self._seen[record.request_id]}"
        last = self._last.get(clock)
        if self.strict_clock and last is not None and arrival < last[0]:  # type: ignore[operator]
            return "arrival", f"clock went backwards: {arrival} is before {last[0]} ({last[1]})"
        self._seen[record.request_id] = where
        self._timestamps = stamped
        self._last[clock] = (arrival, where)
        return None

    def finish(
        self,
        *,
        sources: list[Path],
        quarantine_path: Path,
        max_bad_share: float,
        label: Path,
    ) -> LoadResult:
        written: Path | None = None
        if self.bad:
            written = _write_quarantine(self.bad, quarantine_path)
        if self.n_total == 0:
            raise TrafficFormatError("holds no traffic records", file=label)
        share = len(self.bad) / self.n_total
        if share > max_bad_share:
            first = self.bad[0]
            named = "; ".join(bad.describe() for bad in self.bad[:_NAMED_IN_ERROR])
            more = (
                f" and {len(self.bad) - _NAMED_IN_ERROR} more"
                if len(self.bad) > _NAMED_IN_ERROR
                else ""
            )
            raise TrafficFormatError(
                f"{len(self.bad)} of {self.n_total} records are malformed "
                f"({share:.1%} > {max_bad_share:.1%} allowed): {named}{more}; "
                f"all listed in {written}",
                file=first.file,
                line=first.line,
                field=first.field,
                unit=first.unit,
            )
        records, start = _normalise(self.good)
        return LoadResult(
            records=records,
            n_total=self.n_total,
            n_bad=len(self.bad),
            quarantine_path=written,
            start=start,
            sources=sources,
            bad=list(self.bad),
        )


def _normalise(records: list[TrafficRecord]) -> tuple[list[TrafficRecord], datetime | None]:
    """Sort by arrival (stable, so ties keep file order) and make arrivals offsets."""
    if not records:
        return [], None
    ordered = sorted(records, key=lambda r: _sort_key(r.arrival))
    first = ordered[0].arrival
    start = first if isinstance(first, datetime) else None
    out = []
    for record in ordered:
        arrival = record.arrival
        if isinstance(arrival, datetime) and isinstance(first, datetime):
            offset = (arrival - first).total_seconds()
        else:
            offset = float(arrival) - float(first)  # type: ignore[arg-type]
        out.append(record.model_copy(update={"arrival": offset}))
    return out, start


def _sort_key(arrival: float | datetime) -> float:
    return arrival.timestamp() if isinstance(arrival, datetime) else float(arrival)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    """The field and reason of a validation error, in words a producer can act on."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    # a union (``arrival: float | datetime``) adds the member name; the field is enough
    if loc and loc[0] == "arrival":
        loc = ["arrival"]
        errors = exc.errors(include_url=False)
        reason = " / ".join(dict.fromkeys(e["msg"] for e in errors if e["loc"][:1] == ("arrival",)))
        return "arrival", reason
    reason = "missing" if error["type"] == "missing" else error["msg"]
    return ".".join(loc) or "(record)", reason


def _raw(raw: dict[str, Any]) -> str:
    return json.dumps(raw, default=str, ensure_ascii=False)[:_RAW_LIMIT]


def _write_quarantine(bad: list[BadLine], path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for item in bad:
                handle.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
    except OSError as exc:
        first = bad[0]
        raise TrafficFormatError(
            f"cannot write the quarantine file {path} ({exc.strerror or exc}); "
            f"first bad record: {first.describe()}",
            file=first.file,
            line=first.line,
            field=first.field,
            unit=first.unit,
        ) from exc
    return path


def _files_in_window(directory: Path, since: datetime | None, until: datetime | None) -> list[Path]:
    """Capture files that can hold records in the window, oldest first.

    A file holds its writer's records from its opening time until that writer opens its
    next file, so the last file a writer opened at or before ``since`` is still needed.
    Several writers (replicas) share a directory, so this is decided writer by writer:
    another writer's newer file says nothing about how long this one's stays open.
    A ``.jsonl`` file beside a ``.parquet`` file of the same name is the journal the
    capture writer keeps while it builds that Parquet file; the finished file wins.
    """
    by_writer: dict[str, list[tuple[datetime, int, str, Path]]] = {}
    for path in directory.iterdir():
        parsed = parse_capture_file_name(path.name)
        if parsed is None or not path.is_file():
            continue
        if parsed.suffix == ".jsonl" and path.with_suffix(".parquet").is_file():
            continue
        by_writer.setdefault(parsed.writer, []).append(
            (parsed.opened, parsed.sequence, path.name, path)
        )
    chosen: list[tuple[datetime, str, Path]] = []
    for named in by_writer.values():
        named.sort()
        for index, (opened, _, name, path) in enumerate(named):
            if until is not None and opened >= until:
                break
            next_opened = named[index + 1][0] if index + 1 < len(named) else None
            if since is not None and next_opened is not None and next_opened <= since:
                continue
            chosen.append((opened, name, path))
    return [path for _, _, path in sorted(chosen)]


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
