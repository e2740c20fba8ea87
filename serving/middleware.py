"""ASGI middleware that puts cluster telemetry on every chat response and applies faults.

It wraps vLLM's own OpenAI app inside each replica, so request and response semantics
stay vLLM's; this layer only reads the request body (to apply sampling defaults and
drift), watches the response go out (to read usage) and adds ``x-*`` headers.

Non-streaming responses are small JSON bodies: they are buffered so the headers can
carry the token counts. Streaming responses send the at-arrival headers at once and
add a last SSE chunk ``{"object": "chat.completion.chunk", "choices": [],
"cluster_eval": {...}}`` before ``data: [DONE]`` holding what is only known at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from serving import telemetry
from serving.faults import ReplicaFaults, apply_sampling_defaults
from serving.user_config import UserConfig
from traffic.headers import HEADER_TENANT_ID

_TENANT_HEADER = HEADER_TENANT_ID.encode("latin-1")  # ASGI header names are bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"


@dataclass
class ReplicaRuntime:
    """Mutable per-replica state shared by the middleware and ``reconfigure()``."""

    replica_id: str
    rank: int | None
    engine: telemetry.EngineState
    config: UserConfig = field(default_factory=UserConfig)
    faults: ReplicaFaults = field(default_factory=ReplicaFaults)
    in_flight: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def apply(self, config: UserConfig) -> None:
        self.config = config
        self.faults = ReplicaFaults.resolve(config, rank=self.rank, replica_id=self.replica_id)

    @property
    def config_version(self) -> str:
        return self.faults.version_label(self.config.config_version)


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, runtime: ReplicaRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "POST" and scope.get("path", "").endswith(CHAT_PATH):
            await self._chat(scope, receive, send)
            return
        await self.app(scope, receive, _adding_headers(send, self._identity_headers()))

    def _identity_headers(self) -> dict[str, str]:
        return {
            telemetry.HEADER_REPLICA_ID: self.runtime.replica_id,
            telemetry.HEADER_CONFIG_VERSION: self.runtime.config_version,
        }

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.runtime
        # Snapshot before the first await: what was in flight when this one arrived.
        arrival = telemetry.ArrivalTelemetry(
            replica_id=rt.replica_id,
            queue_depth=rt.in_flight,
            engine=rt.engine.snapshot(),
            config_version=rt.config_version,
        )
        rt.in_flight += 1
        watch = rt.engine.open_watch()
        try:
            body = await _read_body(receive)
            faults = rt.faults
            if faults.latency:
                await asyncio.sleep(faults.latency_s())
            if faults.error and faults.should_fail(rt.rng):
                await _send_injected_503(send, telemetry.arrival_headers(arrival))
                return
            tenant = _header(scope, _TENANT_HEADER) if faults.priority else None
            body = _rewrite(body, rt.config, faults,
                            tenant.decode("latin-1") if tenant is not None else None)
            replay_receive, disconnected = _replaying(body, receive)
            await _run_until_disconnect(
                self.app(scope, replay_receive, _Responder(send, arrival, watch)), disconnected
            )
        finally:
            rt.in_flight -= 1
            rt.engine.close_watch(watch)


def _rewrite(body: bytes, config: UserConfig, faults: ReplicaFaults,
             tenant: str | None = None) -> bytes:
    try:
        request = json.loads(body)
    except ValueError:
        return body  # vLLM answers malformed JSON with its own 400
    if not isinstance(request, dict):
        return body
    rewritten = faults.rewrite(apply_sampling_defaults(request, config), tenant)
    return body if rewritten is request else json.dumps(rewritten).encode()


class _Responder:
    """Wraps ``send``: adds headers, reads usage, appends the telemetry chunk."""

    def __init__(self, send: Send, arrival: telemetry.ArrivalTelemetry, watch) -> None:
        self.send = send
        self.arrival = arrival
        self.watch = watch
        self.start: Message | None = None
        self.streaming = False
        self.buffer: list[bytes] = []
        self.usage: dict | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            content_type = _header(message, b"content-type") or b""
            self.streaming = content_type.startswith(b"text/event-stream")
            if self.streaming:
                await self.send(_with_headers(message, telemetry.arrival_headers(self.arrival)))
            return
        if message["type"] != "http.response.body":
            await self.send(message)
            return
        if self.streaming:
            await self._stream_chunk(message)
        else:
            await self._buffer_chunk(message)

    async def _buffer_chunk(self, message: Message) -> None:
        self.buffer.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.buffer)
        try:
            self.usage = json.loads(body).get("usage")
        except (ValueError, AttributeError):
            self.usage = None
        assert self.start is not None
        headers = {**telemetry.arrival_headers(self.arrival), **self._completion_headers()}
        start = _with_headers(self.start, headers, content_length=len(body))
        await self.send(start)
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def _stream_chunk(self, message: Message) -> None:
        chunk: bytes = message.get("body", b"")
        if b'"usage":{' in chunk or b'"usage": {' in chunk:
            self.usage = _usage_from_sse(chunk) or self.usage
        done = chunk.find(b"data: [DONE]")
        if done >= 0:
            tail = {"object": "chat.completion.chunk", "choices": [], "cluster_eval": {
                k: v for k, v in self._completion_headers().items()}}
            chunk = chunk[:done] + b"data: " + json.dumps(tail).encode() + b"\n\n" + chunk[done:]
        await self.send({**message, "body": chunk})

    def _completion_headers(self) -> dict[str, str]:
        prompt, cached = telemetry.usage_tokens(self.usage)
        return telemetry.completion_fields(
            kv_peak=self.watch.peak, prompt_tokens=prompt, cached_tokens=cached
        )


def _usage_from_sse(chunk: bytes) -> dict | None:
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage"' in line:
            try:
                usage = json.loads(line[6:]).get("usage")
            except ValueError:
                continue
            if usage:
                return usage
    return None


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _run_until_disconnect(app_call: Awaitable[None], disconnected: asyncio.Event) -> None:
    """Run the inner app; if this request is cancelled, tell the app the client left.

    Serve cancels a replica's ASGI task when the client goes away, but vLLM's
    ``with_cancellation`` runs the handler in a task of its own that stops only on an
    ``http.disconnect`` message: without one, an abandoned non-streaming request keeps
    generating. The inner app runs shielded, gets the disconnect, and aborts itself.
    """
    inner = asyncio.ensure_future(app_call)
    try:
        await asyncio.shield(inner)
    except asyncio.CancelledError:
        disconnected.set()
        inner.add_done_callback(_drop_result)
        raise


def _drop_result(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # mark retrieved: the client is gone, nobody reads the answer


def _replaying(body: bytes, receive: Receive) -> tuple[Receive, asyncio.Event]:
    """A ``receive`` that yields the (rewritten) body once, then the real stream.

    After the body it also answers ``http.disconnect`` once ``disconnected`` is set.
    """
    sent = False
    disconnected = asyncio.Event()

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if disconnected.is_set():
            return {"type": "http.disconnect"}
        message = asyncio.ensure_future(receive())
        gone = asyncio.ensure_future(disconnected.wait())
        try:
            await asyncio.wait({message, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if message.done():
            return message.result()
        message.cancel()
        return {"type": "http.disconnect"}

    return replay, disconnected


def _adding_headers(send: Send, headers: dict[str, str]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = _with_headers(message, headers)
        await send(message)

    return wrapped


def _with_headers(
    start: Message, headers: dict[str, str], *, content_length: int | None = None
) -> Message:
    names = {name.encode() for name in headers}
    if content_length is not None:
        names.add(b"content-length")
    raw = [(k, v) for k, v in start.get("headers", []) if k.lower() not in names]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    if content_length is not None:
        raw.append((b"content-length", str(content_length).encode()))
    return {**start, "headers": raw}


def _header(message: Message, name: bytes) -> bytes | None:
    for key, value in message.get("headers", []):
        if key.lower() == name:
            return value
    return None


async def _send_injected_503(send: Send, headers: dict[str, str]) -> None:
    body = json.dumps(
        {"error": {"message": "injected fault: replica unavailable", "type": "fault", "code": 503}}
    ).encode()
    start = {"type": "http.response.start", "status": 503,
             "headers": [(b"content-type", b"application/json")]}
    await send(_with_headers(start, headers, content_length=len(body)))
    await send({"type": "http.response.body", "body": body, "more_body": False})
