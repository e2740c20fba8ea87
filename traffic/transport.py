"""HTTP clients for the replay: httpx API, with the transport picked for the rate.

The replay always talks to an ``httpx.AsyncClient``: that is the seam tests use
(``MockTransport``) and the API the rest of the project knows. Behind it sits either
httpx's own transport (httpcore, pure Python) or ``httpx_aiohttp.AiohttpTransport``
(aiohttp's C HTTP parser and connector) on a uvloop event loop; the aiohttp one
sustains a much higher send rate on one core (see benchmarks/README.md), so it is the
default when installed.

Timeouts: the per-request deadline is enforced by the replay itself (one
``asyncio.timeout`` over the whole request, stream included), so the clients here are
built with no transport timeouts of their own. That also keeps the error mapping
honest: httpx-aiohttp 0.2.0 maps aiohttp's ``ServerDisconnectedError`` to
``httpx.ConnectTimeout``; see :func:`classify_error`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, TypeVar, get_args

import httpx

__all__ = [
    "ClientSpec",
    "MalformedResponse",
    "TransportKind",
    "classify_error",
    "limits_for",
    "make_client",
    "resolve_transport",
    "run_async",
]

TransportKind = Literal["auto", "httpx", "aiohttp"]
TRANSPORT_KINDS: tuple[TransportKind, ...] = get_args(TransportKind)


def is_transport_kind(name: str) -> TypeGuard[TransportKind]:
    """Is ``name`` one of :data:`TRANSPORT_KINDS` (a command-line value, say)?"""
    return name in TRANSPORT_KINDS

T = TypeVar("T")


class MalformedResponse(httpx.RemoteProtocolError):
    """The server's bytes are not HTTP (a bad status line or header), as a parser said.

    Raised from the parser's own exception, so the span's ``error_class`` names it
    (``BadStatusLine``); a ``protocol_error``, not a ``connection_error``: the server
    answered, wrongly. httpx's own transport cannot tell a malformed response from a
    dropped connection (both are a bare ``RemoteProtocolError``), so there it stays a
    connection error.
    """


def limits_for(rate: float, timeout_s: float, cap: int = 4096, floor: int = 16) -> httpx.Limits:
    """Connection pool sized so the pool never becomes the queue.

    An open-loop replay at ``rate`` req/s whose requests may each hold a connection
    for up to ``timeout_s`` needs ``rate × timeout_s`` connections in the worst case;
    fewer and requests would wait for a connection, which is coordinated omission by
    the back door. Capped because file descriptors and the server's accept queue are
    finite; past the cap a wait is recorded as schedule lag, not hidden.
    """
    n = max(floor, min(cap, math.ceil(rate * timeout_s)))
    return httpx.Limits(max_connections=n, max_keepalive_connections=n, keepalive_expiry=30.0)


def resolve_transport(kind: TransportKind) -> Literal["httpx", "aiohttp"]:
    if kind != "auto":
        return kind
    has_aiohttp = importlib.util.find_spec("httpx_aiohttp") is not None
    return "aiohttp" if has_aiohttp else "httpx"


@dataclass(frozen=True)
class ClientSpec:
    """Everything needed to build the client again in a worker process (picklable)."""

    base_url: str
    transport: TransportKind = "auto"
    limits: httpx.Limits | None = None

    def build(self) -> httpx.AsyncClient:
        return make_client(self.base_url, self.transport, self.limits)


class _ReplayCookies(httpx.Cookies):
    """A cookie jar that keeps nothing the server sets.

    A replay sends each captured request with the headers it was captured with; a
    cookie one tenant's response set must not ride along on the next request. It is
    also the single most expensive step httpx takes per response (it builds a
    ``urllib`` request to run the standard library's cookie policy): ~15 % of the
    replay's CPU at 3000 req/s.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def make_client(
    base_url: str, transport: TransportKind = "auto", limits: httpx.Limits | None = None
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for ``base_url`` on the chosen transport.

    ``trust_env=False``: replay targets a known cluster address and must not be routed
    through a proxy picked up from the environment. Cookies set by responses are not
    kept (:class:`_ReplayCookies`).
    """
    limits = limits or httpx.Limits(max_connections=256, max_keepalive_connections=256)
    client: httpx.AsyncClient
    if resolve_transport(transport) == "aiohttp":
        from traffic.aiohttp_transport import FastAiohttpTransport

        client = httpx.AsyncClient(
            base_url=base_url,
            transport=FastAiohttpTransport(limits=limits),
            timeout=None,
            trust_env=False,
        )
    else:
        client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=None, trust_env=False)
    client._cookies = _ReplayCookies()  # httpx has no public hook for the jar's class
    return client


def run_async(main: Callable[[], Coroutine[Any, Any, T]], *, uvloop: bool = True) -> T:
    """Run ``main()`` on a fresh loop, uvloop's when installed and asked for."""
    factory = None
    if uvloop and importlib.util.find_spec("uvloop") is not None:
        import uvloop as _uvloop

        factory = _uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def _chain(exc: BaseException) -> list[BaseException]:
    out = [exc]
    while out[-1].__cause__ is not None and len(out) < 16:
        out.append(out[-1].__cause__)
    return out


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(status, error_class) for an exception raised while sending one request.

    ``error_class`` names the most specific cause (``ServerDisconnectedError`` rather
    than the ``ConnectTimeout`` httpx-aiohttp wraps it in). A timeout is a timeout only
    if some link of the cause chain is one; everything else from the transport is a
    connection error; a malformed answer is a protocol error.
    """
    chain = _chain(exc)
    root = chain[-1]
    name = type(root).__name__
    if isinstance(exc, (httpx.DecodingError, MalformedResponse)):
        return "protocol_error", name
    if isinstance(exc, httpx.TransportError):
        timed_out = any(
            isinstance(e, TimeoutError) or type(e).__name__.endswith(("Timeout", "TimeoutError"))
            for e in chain[1:]
        ) or (len(chain) == 1 and isinstance(exc, httpx.TimeoutException))
        if timed_out:
            return "timeout", name
        return "connection_error", name
    if isinstance(exc, (OSError, ConnectionError)):
        return "connection_error", name
    return "protocol_error", name
