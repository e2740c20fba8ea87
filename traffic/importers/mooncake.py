"""Read Mooncake-style traces: arrival times, lengths, and the hashes of prompt blocks.

One JSON object per line, as in Mooncake's published traces (kvcache-ai/Mooncake,
``FAST25-release/traces``)::

    {"timestamp": 27482, "input_length": 6955, "output_length": 52,
     "hash_ids": [46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 2353, 2354]}

``timestamp`` is milliseconds from the trace's start. ``hash_ids`` names the prompt's
blocks of ``block_size`` tokens (512 in Mooncake's traces), the last one partial: two
prompts whose leading hash ids are equal share those leading tokens. That is the prefix
reuse the trace recorded, and the text the importer makes up for each block
(:mod:`traffic.importers.block_text`) keeps it, token for token.

**Sessions.** The trace names none. A request continues the conversation of an earlier
request whose whole prompt, up to its partial last block, is a prefix of its own (turn
k + 1 of a chat carries turn k's prompt); otherwise it starts one. Two requests that only
share a beginning (a system prompt, a document asked about twice) are different
sessions: they still share those blocks in the cache. Thinning keeps or drops sessions
whole.

A line that is not a JSON object with these fields becomes one
:class:`~traffic.loader.BadLine` naming its line and field; the others are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from traffic.errors import TrafficFormatError
from traffic.importers.options import TraceRequest
from traffic.loader import BadLine

__all__ = ["read_mooncake", "trace_reuse"]

_RAW_LIMIT = 4000


class _Refused(ValueError):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def read_mooncake(
    path: Path, *, tenant: str, tenant_column: str | None
) -> Iterator[TraceRequest | BadLine]:
    """Every request of ``path`` in file order, or a :class:`BadLine` for each bad line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise TrafficFormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    session_of: dict[tuple[int, ...], str] = {}  # a prompt's full blocks → its session
    turns: dict[str, int] = {}
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = _row(raw)
                request_tenant = _tenant(row, tenant, tenant_column)
            except _Refused as exc:
                text = raw.decode("utf-8", "replace").rstrip("\n")[:_RAW_LIMIT]
                yield BadLine(str(path), number, exc.field, exc.reason, text)
                continue
            blocks = tuple(row["hash_ids"])
            session = _continued(blocks, session_of) or f"line-{number}"
            if len(blocks) > 1:
                session_of[blocks[:-1]] = session
            turns[session] = turns.get(session, 0) + 1
            yield TraceRequest(
                session_id=session,
                turn=turns[session],
                line=number,
                tenant_id=request_tenant,
                time=row["timestamp"] / 1000.0,
                context_tokens=row["input_length"],
                generated_tokens=row["output_length"],
                blocks=blocks,
            )


def _continued(blocks: tuple[int, ...], session_of: dict[tuple[int, ...], str]) -> str | None:
    """The session of the longest earlier prompt this one extends, if any."""
    for length in range(len(blocks), 0, -1):
        found = session_of.get(blocks[:length])
        if found is not None:
            return found
    return None


def _row(raw: bytes) -> dict[str, Any]:
    try:
        row = json.loads(raw)
    except UnicodeDecodeError:
        raise _Refused(None, "not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise _Refused(None, f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(row, dict):
        raise _Refused(None, "not a JSON object")
    for name in ("timestamp", "input_length", "output_length", "hash_ids"):
        if name not in row:
            raise _Refused(name, "missing")
    timestamp = row["timestamp"]
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) \
            or not math.isfinite(timestamp) or timestamp < 0:
        raise _Refused("timestamp", f"{timestamp!r} is not milliseconds ≥ 0")
    for name, least in (("input_length", 1), ("output_length", 0)):
        value = row[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise _Refused(name, f"{value!r} is not a whole number ≥ {least}")
    hash_ids = row["hash_ids"]
    if not isinstance(hash_ids, list) or not hash_ids or not all(
        isinstance(h, int) and not isinstance(h, bool) for h in hash_ids
    ):
        raise _Refused("hash_ids", "not a non-empty list of integers")
    return row


def _tenant(row: dict[str, Any], tenant: str, column: str | None) -> str:
    if column is None:
        return tenant
    value = row.get(column)
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise _Refused(column, f"{value!r} is not a tenant id")
    return str(value)


def trace_reuse(rows: list[dict[str, Any]], block_size: int) -> float:
    """The trace's own share of prompt tokens reused: per request, its leading blocks that
    earlier requests already had (``block_size`` tokens each, the last one the remainder
    of ``input_length``), over all prompt tokens. What an import must reproduce."""
    seen: set[int] = set()
    reused = total = 0
    for row in rows:
        leading = 0
        for hash_id in row["hash_ids"]:
            if hash_id not in seen:
                break
            leading += 1
        reused += min(leading * block_size, row["input_length"])
        total += row["input_length"]
        seen.update(row["hash_ids"])
    return reused / total if total else 0.0
