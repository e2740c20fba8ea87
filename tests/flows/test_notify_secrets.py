"""A notification that fails must not put the webhook's secret parts in any log line.

The receiver is a real HTTP server on 127.0.0.1 that refuses every post; the block
is a real ``CustomWebhookNotificationBlock`` (not saved: no Prefect API needed), so
the exception is the one httpx raises in production, URL and token included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace

import pytest

import flows.notify as notify
from flows.notify import notify_failure
from tests.conftest import loopback_server

TOKEN = "T0K3N-s3cr3t"
SECRET = "from-the-secrets-dict-42"


@pytest.fixture
def refusing_webhook() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(403)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with loopback_server(Handler) as url:
        yield url


def _flow_run(tmp_path) -> SimpleNamespace:
    return SimpleNamespace(
        name="night-owl", id="0000-run",
        parameters={"notification_block": "custom-webhook/alerts", "out_dir": str(tmp_path)},
    )


def _state() -> SimpleNamespace:
    return SimpleNamespace(name="Failed", type=SimpleNamespace(value="FAILED"),
                           message="Run failed the gate: replica_skew")


def test_a_failed_notification_logs_scheme_and_host_only(
        tmp_path, refusing_webhook, monkeypatch, caplog):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name="alerts",
        url=f"http://ops:pa55word@{refusing_webhook[7:]}/hooks/{TOKEN}?token={{{{key}}}}",
        json_data={"text": "{{subject}}"},
        secrets={"key": SECRET},
    )

    async def load(name: str):
        return block

    monkeypatch.setattr(notify, "load_notification_block", load)
    caplog.set_level(logging.DEBUG)
    # What Prefect's hook runner does: run the hook, log any exception with its traceback.
    try:
        asyncio.run(notify_failure(None, _flow_run(tmp_path), _state()))
    except Exception:
        logging.getLogger("prefect.flow_runs").error("hook failed", exc_info=True)
    logged = caplog.text
    for secret in (TOKEN, SECRET, "pa55word", "/hooks/"):
        assert secret not in logged
    assert refusing_webhook in logged  # scheme and host: which endpoint refused
    assert "notification" in logged and "403" in logged


@pytest.mark.parametrize(("text", "expected"), [
    ("Client error '404' for url 'https://hooks.slack.com/services/T0/B0/XyZ?x=1'",
     "Client error '404' for url 'https://hooks.slack.com'"),
    ("POST http://u:p@10.0.0.5:8080/a/b failed", "POST http://10.0.0.5:8080 failed"),
    ("apprise slack://T0/B0/XyZ/#chan refused", "apprise slack://<redacted> refused"),
    ("no url here", "no url here"),
])
def test_scrub_keeps_scheme_and_host_of_web_urls(text, expected):
    from flows.notify import scrub

    assert scrub(text) == expected


def test_scrub_also_removes_known_secret_values():
    from flows.notify import scrub

    assert scrub("token abc123 in body", secrets=["abc123"]) == "token <redacted> in body"


def test_a_plain_webhook_url_still_names_its_host(tmp_path, refusing_webhook, monkeypatch,
                                                   caplog):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(name="alerts", url=f"{refusing_webhook}/T0K3N/XyZ9")

    async def load(name: str):
        return block

    monkeypatch.setattr(notify, "load_notification_block", load)
    caplog.set_level(logging.DEBUG)
    asyncio.run(notify_failure(None, _flow_run(tmp_path), _state()))
    assert "T0K3N" not in caplog.text and "XyZ9" not in caplog.text
    assert f"{refusing_webhook}'" in caplog.text
