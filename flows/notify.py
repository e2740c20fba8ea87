"""Failure notifications: a flow hook that sends through a Prefect notification block.

The block is named by the flow's ``notification_block`` parameter, either as
``<block-type-slug>/<name>`` (``custom-webhook/nightly-alerts``,
``slack-webhook/ops``) or as a bare name, looked up among the saved blocks that
can notify. The webhook URL lives in the block (or a Secret it references): it
is never a parameter and never logged.

The message holds the run name, the failure message (the gate's paragraph: check,
bucket, observed, threshold — or ``infrastructure: …``), a link to the run in the
Prefect UI and the path of the HTML report.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

__all__ = ["failure_message", "load_notification_block", "notify_failure", "run_url"]

logger = logging.getLogger(__name__)


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
    send = getattr(block, "anotify", None) or block.notify
    sent = send(body, subject)
    if inspect.isawaitable(sent):
        await sent
    logger.info("failure notification sent through block %r", name)
