"""What a run shows in the Prefect UI: the verdict, one table per check, the report's
plots, links.

Rendering (``verdict_markdown``, ``check_rows``, ``plots_markdown``) is plain and
tested on its own; ``publish`` is the one function that talks to Prefect.

The plots (the timeline of the night, the 30-night trend: ``checks.plots``) go into a
markdown artifact as images whose source is the SVG itself (a ``data:`` URI), so they
open from any browser that reaches the Prefect UI, not only from the worker. Prefect
3.8's UI renders a markdown image as an ``<img>`` with that source (its markdown
renderer, read in the bundled UI; not tried against a running server here). An SVG
over ``MAX_INLINE_BYTES`` is named with its path instead of inlined.
"""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from checks.gate import GateResult

__all__ = ["ARTIFACT_COLUMNS", "MAX_INLINE_BYTES", "artifact_key", "check_rows",
           "plots_markdown", "publish", "verdict_markdown"]

MAX_INLINE_BYTES = 1_000_000  # a plot larger than this is linked, not put in the artifact
PLOTS = {"timeline": "The night over time", "trend": "The last 30 nights of every judged metric"}

ARTIFACT_COLUMNS = ("bucket", "n", "insufficient", "mean_quality", "p05_quality", "delta_mean",
                    "p50_latency_ms", "p99_latency_ms", "error_rate")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, numbers and dashes only."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _breached(gate: GateResult) -> set[tuple[str, str | None]]:
    return {(b.check, b.bucket) for b in gate.breaches}


def check_rows(check: str, rows: list[dict[str, Any]], gate: GateResult) -> list[dict[str, Any]]:
    """One check's buckets as table rows with a ``breach`` mark."""
    breached = _breached(gate)
    out = []
    for row in rows:
        plain = {c: _plain(row.get(c)) for c in ARTIFACT_COLUMNS}
        plain["breach"] = "BREACH" if (check, row.get("bucket")) in breached else ""
        out.append(plain)
    return out


def _cell(value: Any) -> str:
    from checks.report import format_value

    return format_value(value).replace("|", "\\|")


def verdict_markdown(run_id: str, gate: GateResult, checks: dict[str, list[dict[str, Any]]],
                     links: dict[str, Path] | None = None) -> str:
    """The verdict paragraph, then one markdown table per check (breaches in bold)."""
    lines = [f"# cluster-eval run `{run_id}`: {gate.verdict}", "", gate.message, ""]
    lines += ["| check | judged | breaches | why not judged |", "| --- | --- | --- | --- |"]
    lines += [f"| {c.check} | {'yes' if c.judged else 'no'} | {c.breaches} | {c.reason or ''} |"
              for c in gate.coverage]
    lines.append("")
    for name, path in (links or {}).items():
        lines.append(f"- {name}: `{path}`")
    if links:
        lines.append("")
    header = [*ARTIFACT_COLUMNS, "breach"]
    for check, rows in checks.items():
        lines += [f"## {check}", ""]
        table = check_rows(check, rows, gate)
        if not table:
            lines += ["No buckets for this run.", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in table:
            cells = [_cell(row[c]) for c in header]
            if row["breach"]:
                cells = [f"**{c}**" if c not in ("", "–") else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plots_markdown(run_id: str, report: Path) -> str:
    """The report's plots (``timeline.svg``, ``trend.svg`` beside ``report``) as
    markdown images with the SVG inline; a plot not drawn says so."""
    lines = [f"# Plots of run `{run_id}`", ""]
    for name, title in PLOTS.items():
        svg = report.with_name(f"{name}.svg")
        lines += [f"## {title}", ""]
        if not svg.exists():
            lines += [f"Not drawn (nothing to plot): the report `{report}` says why.", ""]
            continue
        data = svg.read_bytes()
        if len(data) > MAX_INLINE_BYTES:
            lines += [f"Too large to inline ({len(data):,} bytes): `{svg}`.", ""]
            continue
        uri = "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")
        lines += [f"![{title}]({uri})", ""]
    return "\n".join(lines)


def publish(run_id: str, gate: GateResult, checks: dict[str, list[dict[str, Any]]],
            report: Path, data_docs: Path) -> None:
    """Markdown verdict, one table artifact per check, links to the report and Data Docs."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    docs_index = data_docs / "index.html"
    links = {"report": report, "data docs": docs_index}
    create_markdown_artifact(
        markdown=verdict_markdown(run_id, gate, checks, links),
        key="cluster-eval-verdict",
        description=f"Gate verdict of run {run_id}",
    )
    create_markdown_artifact(
        markdown=plots_markdown(run_id, report),
        key="cluster-eval-plots",
        description=f"Timeline and 30-night trend of run {run_id}",
    )
    for check, rows in checks.items():
        create_table_artifact(
            table=check_rows(check, rows, gate) or [{c: None for c in ARTIFACT_COLUMNS}],
            key=artifact_key("check", check),
            description=f"{check} buckets of run {run_id}",
        )
    create_link_artifact(
        link=report.resolve().as_uri(), link_text="HTML report",
        key="cluster-eval-report", description=f"Report of run {run_id}",
    )
    if docs_index.exists():
        create_link_artifact(
            link=docs_index.resolve().as_uri(), link_text="Great Expectations Data Docs",
            key="cluster-eval-data-docs", description=f"Data Docs of run {run_id}",
        )
