"""The captured-traffic format, version 1 (documented in docs/traffic-format.md).

One record per request as production sent it. ``arrival`` is either seconds from the
start of the capture (a float) or an absolute timestamp; the loader normalises both to
offsets. ``expect`` is optional and only feeds the rubrics: replay never sends it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FORMAT_VERSION",
    "PARQUET_JSON_COLUMNS",
    "Expect",
    "ExpectedToolCall",
    "TrafficRecord",
    "CaptureFileName",
    "capture_file_name",
    "capture_file_time",
    "parse_capture_file_name",
    "to_json_dict",
    "to_parquet_row",
]

FORMAT_VERSION = 1
# Parquet has no nested "any JSON" type that survives every reader, so these columns
# hold JSON text; in JSONL they are plain nested objects.
PARQUET_JSON_COLUMNS = ("body", "expect", "tags")
# Capture files are named by the UTC time they were opened, so a name sort is a time
# sort and a date window can skip whole files. The optional last part names the writer
# (host/pid) so replicas can share a directory:
# capture-20261123T134207.123456Z-000001-host1.4242.jsonl
CAPTURE_PREFIX = "capture-"
_CAPTURE_NAME = re.compile(r"^capture-(\d{8}T\d{6}\.\d{6})Z-(\d+)(?:-([\w.]+))?\.(jsonl|parquet)$")
_WRITER_UNSAFE = re.compile(r"[^\w.]")
# A string that looks like a number is a typo for an offset, not a Unix timestamp.
_NUMERIC = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
# No capture predates this: an earlier timestamp is a zeroed or reset clock (1970-01-01
# from a Unix time of 0), and one such record would push every other one decades away.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)


class ExpectedToolCall(BaseModel):
    """One function call the answer should make (BFCL convention).

    ``arguments`` maps each argument name to its allowed values; an empty list or a
    list holding ``""`` marks the argument optional.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, list[Any]] = Field(default_factory=dict)


class Expect(BaseModel):
    """What a correct answer looks like; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    json_schema: dict[str, Any] | None = Field(
        default=None, description="Schema the answer must validate against."
    )
    tool_calls: list[ExpectedToolCall] | None = Field(
        default=None, description="Calls the answer should make; [] means no call expected."
    )
    reference: str | None = Field(default=None, description="Reference answer (GSM8K, SQuAD).")
    context: str | None = Field(default=None, description="Grounding passage for groundedness.")
    answerable: bool | None = Field(
        default=None,
        description="False for questions the context cannot answer: a refusal is right.",
    )


class TrafficRecord(BaseModel):
    """One captured request."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1)
    arrival: float | datetime = Field(description="Offset in seconds, or an absolute time.")
    tenant_id: str = Field(min_length=1)
    endpoint: Literal["/v1/chat/completions"] = "/v1/chat/completions"
    body: dict[str, Any] = Field(description="The OpenAI chat request exactly as sent.")
    expect: Expect | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("arrival", mode="before")
    @classmethod
    def _strict_arrival(cls, value: Any) -> Any:
        """Refuse what pydantic's lax mode would silently turn into a wrong time.

        ``true`` would become 1.0 and ``"12.5"`` 1970-01-01T00:00:12.5; both are bugs
        in the producer, so they are reported as wrong types instead.
        """
        if isinstance(value, bool):
            raise ValueError("arrival must be a number of seconds or an ISO timestamp, not a bool")
        if isinstance(value, str) and _NUMERIC.match(value):
            raise ValueError("arrival is a numeric string: write offsets as JSON numbers")
        return value

    @field_validator("arrival")
    @classmethod
    def _aware(cls, value: float | datetime) -> float | datetime:
        """Naive timestamps are UTC, so files from different hosts sort together."""
        if isinstance(value, datetime):
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
            if value < EARLIEST_TIMESTAMP:
                raise ValueError(
                    f"timestamp {value.isoformat()} is before 2000-01-01: a zeroed or reset "
                    "clock, not a capture time"
                )
            return value
        if not math.isfinite(value):
            raise ValueError("arrival must be a finite number")
        return value


def to_json_dict(record: TrafficRecord) -> dict[str, Any]:
    """The JSONL form: ``body`` exactly as sent, ``expect`` without its unset fields."""
    out: dict[str, Any] = {
        "request_id": record.request_id,
        "arrival": _arrival_json(record.arrival),
        "tenant_id": record.tenant_id,
        "endpoint": record.endpoint,
        "body": record.body,
    }
    if record.expect is not None:
        out["expect"] = record.expect.model_dump(mode="json", exclude_none=True)
    if record.tags:
        out["tags"] = dict(record.tags)
    return out


def to_parquet_row(record: TrafficRecord) -> dict[str, Any]:
    """The Parquet form: the same fields with ``body``, ``expect`` and ``tags`` as JSON text."""
    row = to_json_dict(record)
    row["arrival"] = record.arrival
    for column in PARQUET_JSON_COLUMNS:
        value = row.get(column)
        row[column] = None if value is None else json.dumps(value, ensure_ascii=False)
    return row


def _arrival_json(arrival: float | datetime) -> float | str:
    if isinstance(arrival, datetime):
        return arrival.isoformat().replace("+00:00", "Z")
    return arrival


def capture_file_name(opened_at: datetime, sequence: int, suffix: str, writer: str = "") -> str:
    """Name of a capture file opened at ``opened_at`` (``suffix``: ``.jsonl`` or ``.parquet``).

    ``writer`` (letters, digits, ``_`` and ``.``) keeps files of several writers apart.
    """
    stamp = opened_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%f")
    tag = "-" + _WRITER_UNSAFE.sub("_", writer) if writer else ""
    return f"{CAPTURE_PREFIX}{stamp}Z-{sequence:06d}{tag}{suffix}"


class CaptureFileName(NamedTuple):
    """The parts of a capture file's name."""

    opened: datetime
    sequence: int
    writer: str  # "" for a file named without a writer
    suffix: str  # ".jsonl" or ".parquet"


def parse_capture_file_name(name: str) -> CaptureFileName | None:
    """The parts of a capture file's name, or ``None`` when it is not one."""
    match = _CAPTURE_NAME.match(name)
    if match is None:
        return None
    opened = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    return CaptureFileName(opened, int(match.group(2)), match.group(3) or "", "." + match.group(4))


def capture_file_time(name: str) -> datetime | None:
    """When a capture file was opened, or ``None`` when the name is not a capture file's."""
    parsed = parse_capture_file_name(name)
    return parsed.opened if parsed is not None else None
