"""Reading one answer: telemetry headers and an OpenAI chat stream into span fields.

Split from the replay engine because it is a different concern (what a response
means, not when a request leaves) and is tested through it. Public names are for
``traffic.replay`` only; the contract they implement is docs/architecture.md
(telemetry headers, the final chunk's ``cluster_eval`` object, Span columns).

Whatever a server sends, the answer is read into typed span fields or refused whole:

* the envelope (a chunk, ``choices``, a choice, its ``delta``, ``tool_calls``, a call,
  its ``function``) in a shape a chat completion never has raises :class:`BadResponse`,
  and the span is a ``protocol_error``;
* a leaf of the wrong type costs that field only: a count that is not an integer in
  int64's range is null, a finish reason or tool name that is not a string is its JSON
  text, a ``usage`` that is not an object is ignored.

The checks are type tests on values already parsed, a few per chunk: nothing next to
the JSON parse on the hot path.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from traffic.headers import (
    HEADER_CACHED_TOKENS,
    HEADER_CONFIG_VERSION,
    HEADER_ENGINE_RUNNING,
    HEADER_ENGINE_WAITING,
    HEADER_KV_USAGE,
    HEADER_KV_USAGE_PEAK,
    HEADER_PROMPT_TOKENS,
    HEADER_QUEUE_DEPTH,
    HEADER_REPLICA_ID,
)
from traffic.spans import Span, as_float, as_int, as_text

__all__ = [
    "Answer",
    "BadResponse",
    "StreamError",
    "apply_headers",
    "http_error_class",
    "read_sse",
    "response_headers",
]


_INT_HEADERS = {
    HEADER_QUEUE_DEPTH: "replica_queue_depth",
    HEADER_ENGINE_RUNNING: "engine_running",
    HEADER_ENGINE_WAITING: "engine_waiting",
    HEADER_PROMPT_TOKENS: "prompt_tokens",
    HEADER_CACHED_TOKENS: "cached_tokens",
}
_FLOAT_HEADERS = {
    HEADER_KV_USAGE: "kv_cache_usage",
    HEADER_KV_USAGE_PEAK: "kv_cache_usage_peak",
}
_STR_HEADERS = {
    HEADER_REPLICA_ID: "replica_id",
    HEADER_CONFIG_VERSION: "config_version",
}
_TELEMETRY_KEYS = {
    **{k.removeprefix("x-").replace("-", "_"): (v, as_int) for k, v in _INT_HEADERS.items()},
    **{k.removeprefix("x-").replace("-", "_"): (v, as_float) for k, v in _FLOAT_HEADERS.items()},
    **{k.removeprefix("x-").replace("-", "_"): (v, as_text) for k, v in _STR_HEADERS.items()},
}


def response_headers(response: httpx.Response) -> dict[str, str]:
    """``x-*`` headers and content-type as a plain dict, decoded once.

    ``httpx.Headers.get`` scans and decodes every header on each call; a dozen lookups
    per response showed up as the largest single cost of a request.
    """
    out = {}
    for key, value in response.headers.raw:
        key = key.lower()
        if key.startswith(b"x-") or key == b"content-type":
            out[key.decode("latin-1")] = value.decode("latin-1")
    return out


def apply_headers(span: Span, headers: dict[str, str]) -> None:
    """Telemetry headers (docs/architecture.md) into span columns; bad values → null."""
    if not headers:
        return
    for name, attr in _STR_HEADERS.items():
        value = headers.get(name)
        if value is not None:
            setattr(span, attr, value)
    for name, attr in _INT_HEADERS.items():
        value = headers.get(name)
        if value is not None:
            setattr(span, attr, as_int(value))
    for name, attr in _FLOAT_HEADERS.items():
        value = headers.get(name)
        if value is not None:
            setattr(span, attr, as_float(value))


def _apply_cluster_eval(span: Span, obj: Any) -> None:
    """Merge the final chunk's ``cluster_eval`` object (end-of-request values win).

    Keys are accepted as ``kv_cache_usage_peak`` or ``x-kv-cache-usage-peak``.
    """
    if not isinstance(obj, dict):
        return
    for key, value in obj.items():
        spec = _TELEMETRY_KEYS.get(str(key).lower().removeprefix("x-").replace("-", "_"))
        if spec is not None and value is not None:
            attr, coerce = spec
            parsed = coerce(value)
            if parsed is not None:
                setattr(span, attr, parsed)


class StreamError(Exception):
    """The server put an ``error`` object in the stream of a 200 response."""


class BadResponse(Exception):
    """Valid JSON in a shape no chat completion has (a list, a string ``delta``, …)."""


class Answer:
    """Accumulates an OpenAI chat completion from streamed chunks (or one JSON body)."""

    __slots__ = ("text", "calls", "finish_reason", "usage", "cluster_eval", "done", "first_token")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.cluster_eval: Any = None
        self.done = False
        self.first_token: float | None = None

    def chunk(self, obj: Any, now: float) -> None:
        if type(obj) is not dict:
            raise BadResponse(f"a chunk is a {type(obj).__name__}, not an object")
        choices = obj.get("choices")
        if "error" in obj and not choices:
            err = obj["error"]
            kind = err.get("type") if isinstance(err, dict) else None
            raise StreamError(kind if isinstance(kind, str) and kind else "StreamError")
        if choices:
            if type(choices) is not list:
                raise BadResponse("choices is not a list")
            for choice in choices:
                if type(choice) is not dict:
                    raise BadResponse("a choice is not an object")
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or choice.get("message") or {}
                if type(delta) is not dict:
                    raise BadResponse("a delta is not an object")
                content = delta.get("content")
                if content:
                    self.text.append(content if type(content) is str else json.dumps(content))
                calls = delta.get("tool_calls")
                if calls:
                    self._tool_calls(calls)
                if self.first_token is None and (
                    content or calls or delta.get("reasoning_content") or delta.get("reasoning")
                ):
                    self.first_token = now
                finish = choice.get("finish_reason")
                if finish:
                    self.finish_reason = as_text(finish)
        if obj.get("usage"):
            self.usage = obj["usage"]
        if obj.get("cluster_eval") is not None:
            self.cluster_eval = obj["cluster_eval"]

    def _tool_calls(self, calls: Any) -> None:
        if type(calls) is not list:
            raise BadResponse("tool_calls is not a list")
        for i, call in enumerate(calls):
            if type(call) is not dict:
                raise BadResponse("a tool call is not an object")
            index = call.get("index", i)
            slot = self.calls.setdefault(
                index if type(index) is int else i, {"name": "", "arguments": ""}
            )
            fn = call.get("function") or {}
            if type(fn) is not dict:
                raise BadResponse("a tool call's function is not an object")
            name = fn.get("name")
            if name:
                slot["name"] += name if type(name) is str else json.dumps(name)
            args = fn.get("arguments")
            if args:
                slot["arguments"] += args if type(args) is str else json.dumps(args)

    def fill(self, span: Span) -> None:
        span.output_text = "".join(self.text) if self.text or self.finish_reason else None
        if self.calls:
            span.tool_calls = json.dumps([self.calls[k] for k in sorted(self.calls)])
        span.finish_reason = self.finish_reason
        _apply_cluster_eval(span, self.cluster_eval)
        usage = self.usage
        if type(usage) is not dict:
            return  # absent, or not an object: the headers' counts stand
        # a count the server sent but that is not one leaves the headers' value
        prompt = as_int(usage.get("prompt_tokens"))
        if prompt is not None:
            span.prompt_tokens = prompt
        completion = as_int(usage.get("completion_tokens"))
        if completion is not None:
            span.completion_tokens = completion
        details = usage.get("prompt_tokens_details")
        cached = as_int(details.get("cached_tokens")) if type(details) is dict else None
        if cached is not None:
            span.cached_tokens = cached


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body undecoded (identity encoding was asked for), or as read already.

    ``aiter_raw`` skips httpx's decoder chain; a response built with its content
    already in memory (``MockTransport``) has no raw stream left, only ``content``.
    """
    if response.is_stream_consumed:
        yield response.content
        return
    async for data in response.aiter_raw():
        yield data


async def read_sse(response: httpx.Response, answer: Answer, clock: Callable[[], float]) -> None:
    """Read an OpenAI-style SSE stream.

    OpenAI-compatible servers send only ``data:`` lines (one JSON chunk each, then
    ``[DONE]``), so this reads exactly that subset of SSE over the raw byte stream:
    a general SSE decoder on top of ``aiter_lines`` costs several times more CPU per
    chunk on the hot path and adds a dependency for nothing we use.
    """
    buffer = b""
    async for data in _raw_chunks(response):
        if answer.done:
            continue  # read to the end all the same: an unread body costs the connection
        buffer += data
        if b"\n" not in data:
            continue
        *lines, buffer = buffer.split(b"\n")
        now = clock()
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, event:/id: fields
            payload = line[5:].strip()
            if payload == b"[DONE]":
                answer.done = True
                break
            if payload:
                answer.chunk(json.loads(payload), now)
    if not answer.done and buffer.startswith(b"data:"):
        payload = buffer[5:].strip()
        if payload == b"[DONE]":
            answer.done = True
        elif payload:
            answer.chunk(json.loads(payload), clock())


def http_error_class(status: int, body: bytes) -> str:
    """The OpenAI error ``type`` when the body has one, else ``HTTP <status>``."""
    try:
        obj = json.loads(body)
        err = obj.get("error", obj) if isinstance(obj, dict) else None
        kind = err.get("type") if isinstance(err, dict) else None
        if isinstance(kind, str) and kind:
            return kind
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}"
