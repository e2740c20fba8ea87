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

Lines are read as bytes and decoded strictly: bytes that are not UTF-8, a JSON ``NaN``,
a number past what Python reads, nesting past :data:`MAX_DEPTH` and a lone surrogate are
each a quarantined line naming its field, never a traceback and never a silent U+FFFD.
After every line is read, a record whose arrival lies more than ``max_span_s`` from the
median arrival is quarantined too: one zeroed clock must not move a night by decades.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from traffic.errors import TrafficFormatError
from traffic.format import (
    FORMAT_VERSION,
    PARQUET_JSON_COLUMNS,
    TrafficRecord,
    parse_capture_file_name,
    to_json_dict,
)

__all__ = [
    "DEFAULT_MAX_SPAN_S",
    "MAX_DEPTH",
    "BadLine",
    "LoadResult",
    "load_capture_dir",
    "load_traffic",
    "write_quarantine",
]

PARQUET_VERSION_KEY = "cluster_eval.traffic_format"
# A record more than this from the median arrival is a broken clock, not traffic. A
# week holds any nightly replay (a day at most) with room; pass more to load longer.
DEFAULT_MAX_SPAN_S = 7 * 86_400.0
# Nesting deeper than this is refused: chat bodies with JSON schemas stay far below it,
# and every later step (pydantic, json.dumps, the replay) stays far from recursion limits.
MAX_DEPTH = 100
_RAW_LIMIT = 4000  # characters of a bad line kept in quarantine: enough to see, not a dump
_NAMED_IN_ERROR = 3
_JSON_WHITESPACE = b" \t\r\n"  # what JSON calls whitespace; a line of only these is blank
_SURROGATE = re.compile("[\ud800-\udfff]")
# json.dumps escapes control characters but not these, and str.splitlines breaks at them
_LINE_BREAKS = {code: f"\\u{code:04x}" for code in (0x85, 0x2028, 0x2029)}


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
    max_span_s: float = DEFAULT_MAX_SPAN_S,
) -> LoadResult:
    """Load one JSONL or Parquet traffic file.

    ``quarantine_path`` defaults to ``<file>.quarantine.jsonl`` beside the input and is
    written only when a line is bad. With ``strict_clock`` a record that arrives before
    the one above it is bad (a capture's clock must not step back); without it the
    records are simply sorted. A record arriving more than ``max_span_s`` seconds from
    the median arrival is bad.
    """
    path = Path(path)
    if not path.is_file():
        raise TrafficFormatError("no such traffic file", file=path)
    intake = _Intake(strict_clock=strict_clock, max_span_s=max_span_s)
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
    max_span_s: float | None = None,
) -> LoadResult:
    """Load the capture files of ``directory`` whose records fall in ``[since, until)``.

    Files are those :mod:`traffic.capture` writes (named by the UTC time they were
    opened), so files opened after ``until`` or superseded before ``since`` are not even
    read. Naive ``since``/``until`` are UTC. Records outside the window are not counted.
    ``max_span_s`` defaults to the window's length when both ends are given, else to
    :data:`DEFAULT_MAX_SPAN_S`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TrafficFormatError("no such capture directory", file=directory)
    since, until = _aware(since), _aware(until)
    if max_span_s is None:
        closed = since is not None and until is not None
        max_span_s = (until - since).total_seconds() if closed else DEFAULT_MAX_SPAN_S  # type: ignore[operator]
    files = _files_in_window(directory, since, until)
    intake = _Intake(
        strict_clock=strict_clock, max_span_s=max_span_s, since=since, until=until
    )
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


# --- reading: each yields a _Raw record or a BadLine -----------------------------------


class _Raw(NamedTuple):
    """A parsed JSON object and where it came from, before validation."""

    file: str
    number: int
    unit: str
    value: dict[str, Any]
    text: str  # the line as read, for the quarantine


def _feed(intake: _Intake, path: Path, *, clock: str) -> None:
    try:
        intake.feed(_read_file(path), clock=clock)
    except OSError as exc:  # permissions, a vanished file: the file, not a line, is bad
        raise TrafficFormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc


def _read_file(path: Path) -> Iterator[_Raw | BadLine]:
    if path.suffix == ".parquet":
        return _read_parquet(path)
    return _read_jsonl(path)


def _read_jsonl(path: Path) -> Iterator[_Raw | BadLine]:
    name = str(path)
    with path.open("rb") as handle:
        for number, data in enumerate(handle, start=1):
            if number == 1 and data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]  # some editors and exporters write one
            if not data.strip(_JSON_WHITESPACE):
                continue  # blank lines (a trailing newline) are not records
            yield _parse_line(name, number, data)


def _parse_line(name: str, number: int, data: bytes) -> _Raw | BadLine:
    text = data.rstrip(b"\r\n").decode("utf-8", "backslashreplace")[:_RAW_LIMIT]
    undecodable = None
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # keep going with the bad bytes as lone surrogates, to name the field they are in
        undecodable = f"not UTF-8: byte 0x{data[exc.start]:02x} at byte {exc.start + 1}"
        decoded = data.decode("utf-8", "surrogateescape")
    try:
        value = _strict_json(decoded)
    except _NotJSON as exc:
        return BadLine(name, number, None, undecodable or exc.reason, text)
    if not isinstance(value, dict):
        reason = f"a record is a JSON object, not {_json_type(value)}"
        return BadLine(name, number, None, undecodable or reason, text)
    problem = _find_problem(value)
    if problem is not None:
        path, reason, surrogate = problem
        if surrogate and undecodable:
            reason = undecodable  # the lone surrogate is where the bad byte was
        return BadLine(name, number, path, reason, text)
    return _Raw(name, number, "line", value, text)


def _read_parquet(path: Path) -> Iterator[_Raw | BadLine]:
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
        text = _raw(row)
        bad = _decode_json_columns(row)
        if bad is not None:
            column, reason = bad
            yield BadLine(name, number, column, reason, text, "row")
            continue
        yield _Raw(name, number, "row", {k: v for k, v in row.items() if v is not None}, text)


def _decode_json_columns(row: dict[str, Any]) -> tuple[str, str] | None:
    for column in PARQUET_JSON_COLUMNS:
        value = row.get(column)
        if not isinstance(value, str):
            continue
        try:
            row[column] = _strict_json(value)
        except _NotJSON as exc:
            return column, f"{exc.reason} in the {column} column"
        problem = _find_problem(row[column], (column,))
        if problem is not None:
            return problem[0] or column, problem[1]
    return None


# --- strict JSON: what json.loads lets through but a record must not hold --------------


class _NotJSON(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Invalid:
    """Stands in, while parsing, for a value Python reads but a record must not hold."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _strict_json(text: str) -> Any:
    """``json.loads`` that marks NaN, overflowing numbers and huge integers as invalid."""
    try:
        return json.loads(
            text,
            parse_constant=_invalid_constant,
            parse_float=_checked_float,
            parse_int=_checked_int,
        )
    except json.JSONDecodeError as exc:
        raise _NotJSON(f"bad JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        reason = f"bad JSON: nested too deeply to parse (at most {MAX_DEPTH} levels)"
        raise _NotJSON(reason) from None


def _invalid_constant(name: str) -> _Invalid:
    return _Invalid(f"{name} is not a JSON number")


def _checked_float(text: str) -> float | _Invalid:
    value = float(text)
    return value if math.isfinite(value) else _Invalid(f"number {text} overflows a double")


def _checked_int(text: str) -> int | _Invalid:
    try:
        return int(text)
    except ValueError:  # past sys.get_int_max_str_digits(): Python refuses to read it
        digits = len(text.lstrip("-"))
        return _Invalid(f"an integer of {digits} digits is longer than Python reads")


def _find_problem(
    value: Any, prefix: tuple[str, ...] = ()
) -> tuple[str | None, str, bool] | None:
    """The first invalid value in document order: ``(field path, reason, is_surrogate)``.

    Walks iteratively, so a deep value is reported rather than overflowing the stack.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, prefix)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Invalid):
            return _dotted(path), node.reason, False
        if isinstance(node, str):
            found = _SURROGATE.search(node)
            if found:
                return _dotted(path), _surrogate_reason(found.group()), True
            continue
        if not isinstance(node, dict | list):
            continue
        if len(path) - len(prefix) >= MAX_DEPTH:
            shown = path[: len(prefix) + 2] if prefix else path[:2]
            return _dotted(shown), f"nested more than {MAX_DEPTH} levels deep", False
        if isinstance(node, dict):
            for key in node:
                found = _SURROGATE.search(key)
                if found:
                    return _dotted(path), f"a key {_surrogate_reason(found.group())}", True
            children = [(item, (*path, key)) for key, item in node.items()]
        else:
            children = [(item, (*path, str(index))) for index, item in enumerate(node)]
        stack.extend(reversed(children))
    return None


def _surrogate_reason(char: str) -> str:
    return f"holds a lone surrogate \\u{ord(char):04x}, which is not Unicode text"


def _dotted(path: tuple[str, ...]) -> str | None:
    if not path:
        return None
    # a key may hold the lone surrogate itself: show it escaped, as the quarantine can hold it
    return ".".join(part.encode("utf-8", "backslashreplace").decode("utf-8") for part in path)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


# --- validation and assembly ---------------------------------------------------------


class _Good(NamedTuple):
    record: TrafficRecord
    file: str
    number: int
    unit: str


class _Intake:
    """Validates raw records one by one and keeps good ones and bad ones apart."""

    def __init__(
        self,
        *,
        strict_clock: bool,
        max_span_s: float,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.strict_clock = strict_clock
        self.max_span_s = max_span_s
        self.since, self.until = since, until
        self.windowed = since is not None or until is not None
        self.good: list[_Good] = []
        self.bad: list[BadLine] = []
        self.n_total = 0
        self._files: dict[str, int] = {}  # file -> reading order, to list bad lines in order
        self._seen: dict[str, str] = {}
        self._timestamps: bool | None = None  # the kind of arrival of the first good record
        # last arrival per clock: one writer's clock must not step back, two writers interleave
        self._last: dict[str, tuple[float | datetime, str]] = {}

    def feed(self, items: Iterable[_Raw | BadLine], *, clock: str) -> None:
        """Validate ``items``; ``clock`` names whose clock stamped them (file or writer)."""
        for item in items:
            self._files.setdefault(item.file, len(self._files))
            if isinstance(item, BadLine):
                outcome: _Good | BadLine | None = item
            else:
                try:
                    outcome = self._take(item, clock)
                except Exception as exc:  # a bad line never stops the load, whatever it is
                    reason = f"unexpected {type(exc).__name__}: {exc}"
                    outcome = BadLine(item.file, item.number, None, reason, item.text, item.unit)
            if outcome is None:
                continue  # outside the date window: not part of this load
            self.n_total += 1
            if isinstance(outcome, BadLine):
                self.bad.append(outcome)
            else:
                self.good.append(outcome)

    def _take(self, item: _Raw, clock: str) -> _Good | BadLine | None:
        file, number, unit, raw, text = item
        try:
            record = TrafficRecord.model_validate(raw)
        except ValidationError as exc:
            field_name, reason = _first_error(exc)
            return BadLine(file, number, field_name, reason, text, unit)
        if self.windowed and not self._in_window(record):
            return None
        problem = self._check(record, f"{Path(file).name} {unit} {number}", clock)
        if problem is not None:
            return BadLine(file, number, problem[0], problem[1], text, unit)
        return _Good(record, file, number, unit)

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

    def _reject_far_arrivals(self) -> None:
        """Quarantine records more than ``max_span_s`` from the median arrival.

        The median, not the first or the mean, because one record decades away moves
        neither it nor the rest; a real capture of up to ``max_span_s`` loses nothing.
        """
        if not self.good:
            return
        keys = sorted(_sort_key(good.record.arrival) for good in self.good)
        median = keys[len(keys) // 2]
        kept = []
        for good in self.good:
            distance = abs(_sort_key(good.record.arrival) - median)
            if distance <= self.max_span_s:
                kept.append(good)
                continue
            arrival = good.record.arrival
            reason = (
                f"arrival {_when(arrival)} is {_duration(distance)} from the median arrival "
                f"{_when(_from_key(median, arrival))}; one load spans at most "
                f"{_duration(self.max_span_s)} (max_span_s): a broken clock, not traffic"
            )
            raw = json.dumps(to_json_dict(good.record), ensure_ascii=False)[:_RAW_LIMIT]
            self.bad.append(BadLine(good.file, good.number, "arrival", reason, raw, good.unit))
        self.good = kept

    def finish(
        self,
        *,
        sources: list[Path],
        quarantine_path: Path,
        max_bad_share: float,
        label: Path,
    ) -> LoadResult:
        self._reject_far_arrivals()
        self.bad.sort(key=lambda bad: (self._files.get(bad.file, 0), bad.line))
        written: Path | None = None
        if self.bad:
            written = write_quarantine(self.bad, quarantine_path)
        if self.n_total == 0:
            raise TrafficFormatError("holds no traffic records", file=label)
        share = len(self.bad) / self.n_total
        if share > max_bad_share or not self.good:
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
        records, start = _normalise([good.record for good in self.good])
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


def _from_key(key: float, like: float | datetime) -> float | datetime:
    return datetime.fromtimestamp(key, UTC) if isinstance(like, datetime) else key


def _when(arrival: float | datetime) -> str:
    if isinstance(arrival, datetime):
        return arrival.isoformat().replace("+00:00", "Z")
    return f"{arrival:g} s"


def _duration(seconds: float) -> str:
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.3g} h"
    if seconds < 3 * 365.25 * 86_400:
        return f"{seconds / 86_400:g} days"
    return f"{seconds / (365.25 * 86_400):.3g} years"


def _first_error(exc: ValidationError) -> tuple[str, str]:
    """The field and reason of a validation error, in words a producer can act on."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    # a union (``arrival: float | datetime``) adds the member name; the field is enough
    if loc and loc[0] == "arrival":
        loc = ["arrival"]
        errors = exc.errors(include_url=False)
        messages = (_plain(e["msg"]) for e in errors if e["loc"][:1] == ("arrival",))
        reason = " / ".join(dict.fromkeys(messages))
        return "arrival", reason
    reason = "missing" if error["type"] == "missing" else _plain(error["msg"])
    return ".".join(loc) or "(record)", reason


def _plain(message: str) -> str:
    """A validator's own message, without the "Value error, " pydantic puts before it."""
    return message.removeprefix("Value error, ")


def _raw(raw: dict[str, Any]) -> str:
    return json.dumps(raw, default=str, ensure_ascii=False)[:_RAW_LIMIT]


def _one_line(text: str) -> str:
    """Escape the code points that ``str.splitlines`` breaks a line at (JSON allows them)."""
    return text.translate(_LINE_BREAKS)


def write_quarantine(bad: list[BadLine], path: Path) -> Path:
    """Write ``bad`` to ``path`` as JSONL, one entry per bad line (the importers use it too)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a field name or raw text can never make the quarantine unwritable
        with path.open("w", encoding="utf-8", errors="backslashreplace") as handle:
            for item in bad:
                handle.write(_one_line(json.dumps(item.to_json(), ensure_ascii=False)) + "\n")
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
