"""``httpx_aiohttp``'s transport with the per-request work it repeats done once.

httpx stays the replay's client API; aiohttp (C HTTP parser, uvloop-friendly
connector) does the I/O. ``httpx_aiohttp.AiohttpTransport`` converts every request
from scratch: the URL to a string and back through yarl, a fresh ``ClientTimeout``.
A replay sends thousands of requests to a handful of URLs with one timeout policy,
so those are cached here. Error mapping is the library's, completed: aiohttp
exceptions it leaves unmapped (``ClientResponseError`` when the status line or a
header does not parse) would escape httpx's exception tree; they are raised as
:class:`~traffic.transport.MalformedResponse` (any other ``ClientError`` as
``httpx.TransportError``), from the original.
Its aiohttp session keeps no cookies (``DummyCookieJar``): a replayed request goes
out with the headers it was captured with, never with a cookie an earlier response
set (httpx's own jar is disabled in :func:`traffic.transport.make_client`).
Measured in benchmarks/replay_rate.py (see benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from aiohttp import ClientTimeout
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp.transport import (
    AiohttpResponseStream,
    AiohttpTransport,
    map_aiohttp_exceptions,
)
from yarl import URL

from traffic.transport import MalformedResponse

__all__ = ["FastAiohttpTransport"]

_EXTENSIONS = {"http_version": b"HTTP/1.1"}


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """``map_aiohttp_exceptions``, and what it leaves out, into httpx's exceptions."""
    try:
        with map_aiohttp_exceptions():
            yield
    except (aiohttp.ClientResponseError, HttpProcessingError) as exc:
        raise MalformedResponse(str(exc)) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc)) from exc


class _ResponseStream(AiohttpResponseStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._aiohttp_response.content.iter_chunked(self.CHUNK_SIZE):
                yield chunk

    async def aclose(self) -> None:
        with _mapped():
            await self._aiohttp_response.__aexit__(None, None, None)


class FastAiohttpTransport(AiohttpTransport):
    """An ``AiohttpTransport`` for plain HTTP/HTTPS requests without a proxy."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._urls: dict[int, tuple[httpx.URL, URL]] = {}
        self._timeouts: dict[tuple[float | None, ...], ClientTimeout] = {}

    def get_client(self) -> aiohttp.ClientSession:
        limits = self.limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    def _url(self, url: httpx.URL) -> URL:
        # keyed by identity: a replay reuses one httpx.URL per endpoint; the entry
        # holds the httpx.URL, so its id cannot be reused while cached
        hit = self._urls.get(id(url))
        if hit is None:
            if len(self._urls) > 1024:
                self._urls.clear()
            hit = self._urls[id(url)] = (url, URL(str(url), encoded=True))
        return hit[1]

    def _timeout(self, timeout: dict[str, float | None]) -> ClientTimeout:
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        hit = self._timeouts.get(key)
        if hit is None:
            hit = self._timeouts[key] = ClientTimeout(
                sock_connect=key[0], sock_read=key[1], connect=key[2]
            )
        return hit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.proxy is not None:
            return await super().handle_async_request(request)
        if not hasattr(self.client, "request"):
            self.client = self.get_client()
        with _mapped():
            try:
                data = request.content or None
            except httpx.RequestNotRead:
                data = request.stream  # type: ignore[assignment]
                request.headers.pop("transfer-encoding", None)  # handled by aiohttp
            response = await self.client.request(  # type: ignore[union-attr]
                method=request.method,
                url=self._url(request.url),
                headers=request.headers,
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                server_hostname=request.extensions.get("sni_hostname"),
            ).__aenter__()
        extensions = dict(_EXTENSIONS)
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response),
            request=request,
            extensions=extensions,
        )
