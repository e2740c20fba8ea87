"""Reading one answer: telemetry headers and an OpenAI chat stream into span fields.

Split from the replay engine because it is a different concern (what a response
means, not when a request leaves) and is tested through it. Public names are for
``traffic.replay`` only; the contract they implement is docs/architecture.md
(telemetry headers, the final chunk's ``cluster_eval`` object, Span columns).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from traffic.spans import Span

__all__ = [
    "Answer",
    "StreamError",
    "apply_headers",
    "http_error_class",
    "read_sse",
    "response_headers",
]


_INT_HEADERS = {
    "x-replica-queue-depth": "replica_queue_depth",
    "x-engine-running": "engine_running",
    "x-engine-waiting": "engine_waiting",
    "x-prompt-tokens": "prompt_tokens",
    "x-cached-tokens": "cached_tokens",
}
_FLOAT_HEADERS = {
    "x-kv-cache-usage": "kv_cache_usage",
    "x-kv-cache-usage-peak": "kv_cache_usage_peak",
}
_STR_HEADERS = {"x-replica-id": "replica_id", "x-config-version": "config_version"}
_TELEMETRY_KEYS = {
    **{k.removeprefix("x-").replace("-", "_"): (v, int) for k, v in _INT_HEADERS.items()},
    **{k.removeprefix("x-").replace("-", "_"): (v, float) for k, v in _FLOAT_HEADERS.items()},
    **{k.removeprefix("x-").replace("-", "_"): (v, str) for k, v in _STR_HEADERS.items()},
}


def _number(value: Any, kind: type) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


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
            setattr(span, attr, _number(value, int))
    for name, attr in _FLOAT_HEADERS.items():
        value = headers.get(name)
        if value is not None:
            setattr(span, attr, _number(value, float))


def _apply_cluster_eval(span: Span, obj: Any) -> None:
    """Merge the final chunk's ``cluster_eval`` object (end-of-request values win).

    Keys are accepted as ``kv_cache_usage_peak`` or ``x-kv-cache-usage-peak``.
    """
    if not isinstance(obj, dict):
        return
    for key, value in obj.items():
        spec = _TELEMETRY_KEYS.get(str(key).lower().removeprefix("x-").replace("-", "_"))
        if spec is not None and value is not None:
            attr, kind = spec
            parsed = _number(value, kind)
            if parsed is not None:
                setattr(span, attr, parsed)


class StreamError(Exception):
    """The server put an ``error`` object in the stream of a 200 response."""


class Answer:
    """Accumulates an OpenAI chat completion from streamed chunks (or one JSON body)."""

    __slots__ = ("text", "calls", "finish_reason", "usage", "cluster_eval", "done", "first_token")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.cluster_eval: Any = None
        self.done = False
        self.first_token: float | None = None

    def chunk(self, obj: dict[str, Any], now: float) -> None:
        if "error" in obj and not obj.get("choices"):
            err = obj["error"]
            kind = err.get("type") if isinstance(err, dict) else None
            raise StreamError(kind or "StreamError")
        for choice in obj.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content")
            if content:
                self.text.append(content)
            calls = delta.get("tool_calls")
            if calls:
                for i, call in enumerate(calls):
                    slot = self.calls.setdefault(
                        call.get("index", i), {"name": "", "arguments": ""}
                    )
                    fn = call.get("function") or {}
                    if fn.get("name"):
                        slot["name"] += fn["name"]
                    args = fn.get("arguments")
                    if args:
                        slot["arguments"] += args if isinstance(args, str) else json.dumps(args)
            if self.first_token is None and (
                content or calls or delta.get("reasoning_content") or delta.get("reasoning")
            ):
                self.first_token = now
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if obj.get("usage"):
            self.usage = obj["usage"]
        if obj.get("cluster_eval") is not None:
            self.cluster_eval = obj["cluster_eval"]

    def fill(self, span: Span) -> None:
        span.output_text = "".join(self.text) if self.text or self.finish_reason else None
        if self.calls:
            span.tool_calls = json.dumps([self.calls[k] for k in sorted(self.calls)])
        span.finish_reason = self.finish_reason
        _apply_cluster_eval(span, self.cluster_eval)
        usage = self.usage or {}
        if usage.get("prompt_tokens") is not None:
            span.prompt_tokens = usage["prompt_tokens"]
        if usage.get("completion_tokens") is not None:
            span.completion_tokens = usage["completion_tokens"]
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
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
