"""Capture middleware: adds no failed requests under load, drops instead of blocking,
re-feeds the body unchanged, redacts, rotates files the loader can read back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from traffic.capture import CaptureMiddleware, CaptureWriter, Redactor
from traffic.loader import load_capture_dir

CHAT = "/v1/chat/completions"


async def chat(request: Request) -> JSONResponse:
    raw = await request.body()
    try:
        json.loads(raw)
    except ValueError:
        return JSONResponse({"error": "bad json"}, status_code=400)
    return JSONResponse({"sha256": hashlib.sha256(raw).hexdigest()})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def make_app(writer: CaptureWriter, **options) -> Starlette:
    app = Starlette(routes=[Route(CHAT, chat, methods=["POST"]), Route("/health", health)])
    app.add_middleware(CaptureMiddleware, writer=writer, **options)
    return app


def body(i: int, text: str = "") -> bytes:
    payload = {
        "model": "m",
        "messages": [{"role": "user", "content": f"request {i} {text}"}],
        "max_tokens": 16,
    }
    return json.dumps(payload).encode()


@contextmanager
def serve(app) -> Iterator[str]:
    """A real uvicorn server on a free 127.0.0.1 port, in a thread; stopped on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", backlog=2048)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive(), "server thread still running"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def blast(url: str, n: int, connections: int = 24) -> list[str]:
    """Fire ``n`` chat requests at once (``connections`` sockets); returns the problems.

    All ``n`` are in flight together from the client's side; the connection count is
    kept modest because httpx's pool gets slow with hundreds of sockets on 2 cores.
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(i: int) -> str | None:
            sent = body(i)
            headers = {"x-tenant-id": f"tenant-{i % 3}", "content-type": "application/json"}
            try:
                response = await client.post(CHAT, content=sent, headers=headers)
            except httpx.HTTPError as exc:
                return f"{i}: {type(exc).__name__} {exc}"
            if response.status_code != 200:
                return f"{i}: HTTP {response.status_code}"
            if response.json()["sha256"] != hashlib.sha256(sent).hexdigest():
                return f"{i}: the app saw a different body"
            return None

        results = await asyncio.gather(*(one(i) for i in range(n)))
    return [problem for problem in results if problem is not None]


def test_no_failed_requests_under_load_and_every_sampled_record_written(tmp_path):
    writer = CaptureWriter(tmp_path, flush_interval=0.05, rotate_records=60).start()
    app = make_app(writer, sample_rate=0.5, seed=7)
    with serve(app) as url:
        problems = asyncio.run(blast(url, 500))
    writer.close()

    stats = writer.stats
    assert problems == []  # no failure, and the app saw every body unchanged
    assert 150 < stats.sampled < 350
    assert stats.errors == 0 and stats.dropped == 0
    assert stats.written == stats.sampled - stats.dropped
    assert not writer.alive
    assert not [t for t in threading.enumerate() if t.name == "traffic-capture"]
    loaded = load_capture_dir(tmp_path)
    assert loaded.n_good == stats.written and loaded.n_bad == 0
    assert len(loaded.sources) == stats.files >= 3  # rotated by record count
    assert [p.name for p in loaded.sources] == sorted(p.name for p in loaded.sources)
    assert {r.tenant_id for r in loaded.records} == {"tenant-0", "tenant-1", "tenant-2"}
    assert all(r.body["messages"][0]["content"].startswith("request ") for r in loaded.records)


def test_tiny_queue_drops_but_never_fails(tmp_path):
    writer = CaptureWriter(tmp_path, queue_size=2, flush_interval=0.5).start()
    app = make_app(writer, sample_rate=1.0)
    with serve(app) as url:
        problems = asyncio.run(blast(url, 300))
    writer.close()

    stats = writer.stats
    assert problems == []
    assert stats.sampled == 300
    assert stats.dropped > 0
    assert stats.written == stats.sampled - stats.dropped
    assert load_capture_dir(tmp_path).n_good == stats.written


async def send_via_asgi(app, requests: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://capture.test") as client:
        return [
            (await client.post(CHAT, content=content, headers=headers)).status_code
            for content, headers in requests
        ]


def test_redaction_and_no_auth_header(tmp_path):
    def drop_internal(record: dict) -> dict | None:
        return None if record["tenant_id"] == "internal" else record

    writer = CaptureWriter(tmp_path, flush_interval=0.01, redactor=Redactor(func=drop_internal))
    writer.start()
    secret = "sk-live-abcdefghijklmnopqrstuvwx"
    app = make_app(writer)
    statuses = asyncio.run(
        send_via_asgi(
            app,
            [
                (
                    body(1, f"mail alice@example.com key {secret}"),
                    {
                        "x-tenant-id": "acme",
                        "authorization": f"Bearer {secret}",
                        "x-request-id": "req-1",
                    },
                ),
                (body(2, "bob@example.org"), {"x-tenant-id": "internal"}),
            ],
        )
    )
    writer.close()

    assert statuses == [200, 200]
    text = "".join(p.read_text() for p in tmp_path.glob("capture-*.jsonl"))
    assert "alice@example.com" not in text and secret not in text and "bob@" not in text
    assert "authorization" not in text.lower() and "bearer" not in text.lower()
    (record,) = load_capture_dir(tmp_path).records
    assert record.request_id == "req-1"
    assert record.body["messages"][0]["content"] == "request 1 mail [REDACTED] key [REDACTED]"
    assert writer.stats.filtered == 1


def test_capture_failures_are_counted_not_raised(tmp_path):
    def broken(record: dict) -> dict:
        raise RuntimeError("redactor bug")

    writer = CaptureWriter(tmp_path, flush_interval=0.01, redactor=broken).start()
    app = make_app(writer)
    statuses = asyncio.run(send_via_asgi(app, [(body(1), {}), (b"{not json", {})]))
    writer.close()
    assert statuses == [200, 400]  # the app answers as it would without capture
    assert writer.stats.errors == 2 and writer.stats.written == 0


def test_only_chat_posts_are_captured(tmp_path):
    writer = CaptureWriter(tmp_path, flush_interval=0.01).start()
    app = make_app(writer)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://capture.test") as client:
            assert (await client.get("/health")).status_code == 200
            assert (await client.get(CHAT)).status_code == 405

    asyncio.run(run())
    writer.close()
    assert writer.stats.sampled == 0 and not list(tmp_path.glob("capture-*"))


def test_parquet_files_rotate_and_load(tmp_path):
    writer = CaptureWriter(tmp_path, file_format="parquet", rotate_records=10, flush_interval=0.01)
    writer.start()
    statuses = asyncio.run(
        send_via_asgi(make_app(writer), [(body(i), {"x-tenant-id": "acme"}) for i in range(25)])
    )
    writer.close()
    assert statuses == [200] * 25
    files = sorted(Path(tmp_path).glob("capture-*.parquet"))
    assert len(files) == 3
    loaded = load_capture_dir(tmp_path)
    assert loaded.n_good == 25 and writer.stats.written == 25


def test_tenant_header_cannot_be_a_credential(tmp_path):
    with pytest.raises(ValueError, match="credentials"):
        CaptureMiddleware(make_app, writer=CaptureWriter(tmp_path), tenant_header="Authorization")
