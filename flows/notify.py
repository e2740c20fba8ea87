"""Failure notifications: a flow hook that sends through a Prefect notification block.

The block is named by the flow's ``notification_block`` parameter, either as
``<block-type-slug>/<name>`` (``custom-webhook/nightly-alerts``,
``slack-webhook/ops``) or as a bare name, looked up among the saved blocks that
can notify. The webhook URL lives in the block (or a Secret it references): it
is never a parameter and never logged. A send that fails is logged as one line —
the exception's class and message with every URL cut to its scheme and host and
the block's secret values replaced — and not re-raised: the hook runner would log
the exception's traceback, URL and token included (httpx puts the full URL in
``HTTPStatusError``). httpx's own request log line is scrubbed the same way while
the block sends.

The message holds the run name, the failure message (the gate's paragraph: check,
bucket, observed, threshold — or ``infrastructure: …``), a link to the run in the
Prefect UI and the path of the HTML report.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["failure_message", "load_notification_block", "notify_failure", "run_url", "scrub"]

logger = logging.getLogger(__name__)

REDACTED = "<redacted>"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
# loggers that may write the request URL while a block sends
_SENDING_LOGGERS = ("httpx", "httpcore", "apprise")


def _scheme_and_host(match: re.Match[str]) -> str:
    url = match.group(0)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return f"{url.split(':', 1)[0]}://{REDACTED}"
    if parts.scheme.lower() not in ("http", "https") or not host:
        # Apprise URLs (slack://T0/B0/XyZ) keep tokens where the host would be.
        return f"{parts.scheme}://{REDACTED}"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each URL cut to scheme and host, then each of ``secrets`` (four
    characters or more: shorter ones would blank ordinary words) replaced."""
    text = _URL.sub(_scheme_and_host, text)
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _strings(value: Any) -> Iterator[str]:
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be secret: user, password, path segments, query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    pieces = [parts.username or "", parts.password or "", *parts.path.split("/")]
    pieces += [pair.partition("=")[2] for pair in parts.query.split("&")]
    if parts.scheme.lower() not in ("http", "https"):
        pieces.append(parts.netloc)
    return [p for p in pieces if p]


def _secret_values(block: Any) -> list[str]:
    """Secret strings of the block (its ``url`` and ``SecretStr``/``SecretDict`` fields),
    a URL by its secret parts only, so a message can still name the host."""
    found: list[str] = []
    for field in getattr(type(block), "model_fields", {}):
        value = getattr(block, field, None)
        if field == "url" or hasattr(value, "get_secret_value"):
            for text in _strings(value):
                found.extend(_url_secrets(text) if _URL.fullmatch(text) else [text])
    return found


class _ScrubFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage(), self.secrets), None
        return True


@contextmanager
def _scrubbed_logs(secrets: list[str]) -> Iterator[None]:
    scrubber = _ScrubFilter(secrets)
    loggers = [logging.getLogger(name) for name in _SENDING_LOGGERS]
    for each in loggers:
        each.addFilter(scrubber)
    try:
        yield
    finally:
        for each in loggers:
            each.removeFilter(scrubber)


def run_url(flow_run_id: Any, ui_url: str | None, api_url: str | None) -> str | None:
    """``<ui>/runs/flow-run/<id>``; the UI address defaults to the API's minus ``/api``."""
    base = ui_url or (api_url.removesuffix("/").removesuffix("/api") if api_url else None)
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def failure_message(
    *, run_name: str, flow_run_id: Any, state_name: str, message: str | None,
    url: str | None, report: Path | None,
) -> tuple[str, str]:
    """(subject, body) of the notification."""
    subject = f"cluster-eval run {run_name} {state_name.lower()}"
    body = [
        f"Run: {run_name} ({flow_run_id})",
        f"State: {state_name}",
        f"Failing: {message or 'no message'}",
        f"Run page: {url or 'no Prefect UI address configured'}",
        f"Report: {report if report and report.exists() else 'not written (failed before it)'}",
    ]
    return subject, "\n".join(body)


async def load_notification_block(name: str) -> Any:
    """Load any saved notification block by ``slug/name`` or by a unique bare name."""
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client

    if "/" in name:
        return await Block.aload(name)
    async with get_client() as client:
        documents = await client.read_block_documents()
    slugs = sorted(
        d.block_type.slug for d in documents
        if d.name == name and d.block_type is not None and d.block_schema is not None
        and "notify" in (d.block_schema.capabilities or [])
    )
    if not slugs:
        raise ValueError(f"no notification block named {name!r}")
    if len(slugs) > 1:
        raise ValueError(f"several blocks are named {name!r} ({slugs}); use <slug>/{name}")
    return await Block.aload(f"{slugs[0]}/{name}")


def _report_path(parameters: dict[str, Any], flow_run_id: Any) -> Path:
    from cluster_eval.settings import get_settings
    from flows.pipeline import run_files

    return run_files(parameters, flow_run_id, get_settings())["report"]


async def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_failure`` / ``on_crashed`` hook of the cluster-eval flow."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    name = (flow_run.parameters or {}).get("notification_block")
    if not name:
        return
    subject, body = failure_message(
        run_name=flow_run.name,
        flow_run_id=flow_run.id,
        state_name=state.name or state.type.value,
        message=state.message,
        url=run_url(flow_run.id, PREFECT_UI_URL.value(), PREFECT_API_URL.value()),
        report=_report_path(flow_run.parameters or {}, flow_run.id),
    )
    block = await load_notification_block(name)
    secrets = _secret_values(block)
    send = getattr(block, "anotify", None) or block.notify
    try:
        with _scrubbed_logs(secrets):
            sent = send(body, subject)
            if inspect.isawaitable(sent):
                await sent
    except Exception as exc:  # noqa: BLE001 (one line, no traceback: it carries the URL)
        logger.error("failure notification through block %r failed: %s: %s",
                     name, type(exc).__name__, scrub(str(exc), secrets))
        return
    logger.info("failure notification sent through block %r", name)
