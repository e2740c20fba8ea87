"""Read ShareGPT-style conversations: the text of real multi-turn chats, without times.

The file is a JSON list (or JSON Lines) of ``{"id": …, "conversations": [{"from":
"human", "value": …}, {"from": "gpt", "value": …}, …]}``. Every human turn becomes one
request whose messages are all the turns before it — the *recorded* answers of the
model that was used then, not the answers the served model gives tonight — plus that
turn. All requests of a conversation carry its id as their session. The recorded answer
that followed a turn sets that request's ``max_tokens`` (≈ its length in tokens).

A conversation that cannot be used (a turn whose ``from`` is unknown, a value that is
not text, bytes that are not UTF-8, no human turn, a repeated id) becomes one
:class:`~traffic.loader.BadLine` with the line it starts on and the field, and the others
are kept. JSON that does not parse stops the read with the line and column.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from traffic.builders.tasks import approx_tokens
from traffic.errors import TrafficFormatError
from traffic.importers.options import TraceRequest
from traffic.loader import BadLine

__all__ = ["ROLES", "read_sharegpt"]

# ShareGPT's speaker names, and those of its common variants, as OpenAI chat roles
ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}
_RAW_LIMIT = 4000
_WHITESPACE = " \t\r\n"


def read_sharegpt(
    path: Path, *, tenant: str, tenant_column: str | None
) -> Iterator[TraceRequest | BadLine]:
    """The requests of every conversation in ``path``, or a :class:`BadLine` for each bad one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrafficFormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    # bad bytes become lone surrogates, so they are found in the value they are in
    text = data.decode("utf-8", "surrogateescape")
    seen: dict[str, int] = {}
    for line, item in _items(path, text):
        if isinstance(item, BadLine):
            yield item
            continue
        yield from _conversation(str(path), line, item, tenant, tenant_column, seen)


def _items(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Each top-level conversation with the line it starts on."""
    decoder = json.JSONDecoder()
    at = _skip(text, 0)
    if at == len(text):
        raise TrafficFormatError("holds no conversations", file=path)
    array = text[at] == "["
    if array:
        at = _skip(text, at + 1)
    line, counted = 1, 0
    while at < len(text):
        if array and text[at] == "]":
            if _skip(text, at + 1) != len(text):
                _fail(path, text, _skip(text, at + 1), "text after the closing ]")
            return
        line += text.count("\n", counted, at)
        counted = at
        try:
            item, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            _fail(path, text, exc.pos, f"bad JSON: {exc.msg}")
        yield line, item
        at = _skip(text, end)
        if array:
            if at < len(text) and text[at] == ",":
                at = _skip(text, at + 1)
            elif at >= len(text) or text[at] != "]":
                _fail(path, text, at, "bad JSON: expected , or ] between conversations")
    if array:
        _fail(path, text, len(text), "bad JSON: the list is not closed with ]")


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _fail(path: Path, text: str, at: int, reason: str) -> NoReturn:
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    raise TrafficFormatError(f"{reason} at column {column}", file=path, line=line)


def _conversation(
    name: str,
    line: int,
    item: Any,
    tenant: str,
    tenant_column: str | None,
    seen: dict[str, int],
) -> Iterator[TraceRequest | BadLine]:
    raw = json.dumps(item, ensure_ascii=False, default=str)
    raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:_RAW_LIMIT]

    def bad(field: str | None, reason: str) -> BadLine:
        return BadLine(name, line, field, reason, raw)

    if not isinstance(item, dict):
        yield bad(None, "a conversation is a JSON object")
        return
    turns = item.get("conversations")
    if not isinstance(turns, list):
        yield bad("conversations", "missing" if turns is None else "must be a list of turns")
        return
    session = item.get("id", f"line-{line}")
    if not isinstance(session, str | int) or isinstance(session, bool) or session == "":
        yield bad("id", "must be a non-empty string")
        return
    session = str(session)
    if _has_surrogate(session):
        yield bad("id", _not_utf8(session))
        return
    if tenant_column is not None:
        value = item.get(tenant_column)
        if not isinstance(value, str) or not value.strip():
            yield bad(tenant_column, "missing: the tenant field needs a non-empty string")
            return
        if _has_surrogate(value):
            yield bad(tenant_column, _not_utf8(value))
            return
        tenant = value.strip()
    messages: list[dict[str, str]] = []
    for index, turn in enumerate(turns):
        where = f"conversations.{index}"
        if not isinstance(turn, dict):
            yield bad(where, "a turn is a JSON object")
            return
        speaker, value = turn.get("from"), turn.get("value")
        if speaker not in ROLES:
            known = ", ".join(sorted(ROLES))
            yield bad(f"{where}.from", f"unknown speaker {speaker!r} (known: {known})")
            return
        if not isinstance(value, str):
            yield bad(f"{where}.value", "missing" if value is None else "must be text")
            return
        if _has_surrogate(value):
            yield bad(f"{where}.value", _not_utf8(value))
            return
        messages.append({"role": ROLES[speaker], "content": value})
    if session in seen:
        yield bad("id", f"duplicate of the conversation on line {seen[session]}")
        return
    if not any(m["role"] == "user" for m in messages):
        yield bad("conversations", "no human turn: nothing to send")
        return
    seen[session] = line
    turn_number = 0
    for index, message in enumerate(messages):
        if message["role"] != "user":
            continue
        turn_number += 1
        following = messages[index + 1] if index + 1 < len(messages) else None
        answer = following["content"] if following and following["role"] == "assistant" else None
        yield TraceRequest(
            session_id=session,
            turn=turn_number,
            line=line,
            tenant_id=tenant,
            generated_tokens=approx_tokens(len(answer)) if answer is not None else None,
            messages=tuple(dict(m) for m in messages[: index + 1]),
        )


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def _not_utf8(text: str) -> str:
    char = next(c for c in text if "\ud800" <= c <= "\udfff")
    if "\udc80" <= char <= "\udcff":  # where surrogateescape put a byte that is not UTF-8
        return f"not UTF-8: byte 0x{ord(char) - 0xDC00:02x}"
    return f"holds a lone surrogate \\u{ord(char):04x}, which is not Unicode text"
