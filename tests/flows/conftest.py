"""Fixtures of the flow tests: one Prefect test server per session, a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect API (SQLite) with its services: hooks and automations run."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@dataclass
class Webhook:
    url: str
    received: list[dict] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    """A real HTTP receiver on 127.0.0.1 that records every JSON body posted to it."""
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                hook.received.append(json.loads(body))
            except ValueError:
                hook.received.append({"raw": body.decode(errors="replace")})
            hook.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def save_notification_block(name: str, url: str) -> str:
    """A saved CustomWebhookNotificationBlock posting {subject, body} to ``url``."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name=name, url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"},
    ).save(name, overwrite=True)
    return f"custom-webhook/{name}"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture
def notification_block(prefect_server: None, webhook: Webhook) -> str:
    return save_notification_block("cluster-eval-test-alerts", webhook.url)


@pytest.fixture(scope="module")
def module_webhook() -> Iterator[Webhook]:
    """One receiver for a module's nights (the e2e nights run once, in a fixture)."""
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def module_notification_block(prefect_server: None, module_webhook: Webhook) -> str:
    return save_notification_block("cluster-eval-e2e-alerts", module_webhook.url)


@dataclass
class FakeOpenAI:
    url: str
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A real 127.0.0.1 OpenAI-style server: streams one short answer per request and
    names the pinned replica (or ``rep-a``) in ``x-replica-id``, like the Serve app."""
    fake = FakeOpenAI(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            body = b'{"object": "list", "data": [{"id": "smollm2-135m-instruct"}]}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            sent = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            fake.requests.append({"body": sent, "pin": self.headers.get("x-pin-replica")})
            chunks = [
                {"choices": [{"index": 0, "delta": {"content": "42"}}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
            ]
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            raw = body.encode()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(raw)))
            self.send_header("x-replica-id", self.headers.get("x-pin-replica") or "rep-a")
            self.send_header("x-config-version", "test-v1")
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
