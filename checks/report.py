"""Reports of one run: rich tables in the terminal and a static HTML page.

The HTML is self-contained (inline SVG charts, no JavaScript, no CDN), so it opens
offline and can be archived as a run artifact. This module assembles the page: the
run, the failed expectations, the timeline of the night and the trend of its judged
metrics over the last 30 nights (both drawn by ``checks.plots``), then per check a
bar per bucket of mean quality (with p05 marked) and of p99 latency; insufficient
buckets are hatched. ``write_report`` also writes the two plots beside the page
(``timeline.svg``, ``trend.svg``) for the Prefect artifact.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import duckdb

from checks import registry
from checks.thresholds import Thresholds, load_thresholds
from warehouse.schema import opened

_COLUMNS = ("bucket", "n", "insufficient", "mean_quality", "p05_quality", "delta_mean",
            "p50_latency_ms", "p99_latency_ms", "error_rate", "reference")


def shown_columns(check: str) -> list[str]:
    """The columns of a check's table in the report: the bucket statistics it has,
    then its own columns (from its spec, checks/registry.py)."""
    own = registry.spec(check).columns
    return [*(c for c in _COLUMNS if c in own or c in ("bucket", "n", "insufficient")),
            *(c for c in own if c not in registry.BUCKET_STATS and c not in _COLUMNS)]


_RUN = """
SELECT run_id, started_at, finished_at, status, config_hash, cluster
FROM runs WHERE run_id = $run_id
"""

_GATE = """
SELECT "check", bucket, expectation, observed, threshold
FROM expectation_results
WHERE run_id = $run_id AND success = false AND expectation <> 'sufficient_samples'
ORDER BY "check", bucket
"""


# reading order of the fixed buckets; other buckets (replicas, tenants) follow by name
_BUCKET_ORDER = {b: i for i, b in enumerate(
    ["idle", "warm", "saturating", "scaling", "high", "medium", "low", "steady", "burst",
     "sustained", *(f"len_d{d}" for d in range(1, 11))])}


def _bucket_key(row: dict[str, Any]) -> tuple[bool, int, str]:
    bucket = str(row["bucket"])
    return bucket == "unknown", _BUCKET_ORDER.get(bucket, len(_BUCKET_ORDER)), bucket


def _rows(con: duckdb.DuckDBPyConnection, sql: str, run_id: str) -> list[dict[str, Any]]:
    result = con.execute(sql, {"run_id": run_id})
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def gather(con: duckdb.DuckDBPyConnection, run_id: str,
           thresholds: Thresholds | None = None) -> dict[str, Any]:
    """Everything a report shows: the run row, each check's buckets, failed
    expectations, the timeline of the night and the trend of its judged metrics.
    ``thresholds`` are the ones the run was checked with (the timeline shades the
    checks' windows with them); default checks/thresholds.yaml."""
    from checks.plots import load_timeline, load_trend

    checks = {}
    for check in registry.names():
        # identifier from a registered spec; the run id is bound
        rows = _rows(con, f'SELECT * FROM "check_{check}" WHERE run_id = $run_id', run_id)
        checks[check] = sorted(rows, key=_bucket_key)
    runs = _rows(con, _RUN, run_id)
    timeline = load_timeline(con, run_id, thresholds or load_thresholds())
    return {"run": runs[0] if runs else {"run_id": run_id}, "checks": checks,
            "failed": _rows(con, _GATE, run_id), "timeline": timeline,
            "trend": load_trend(con, run_id)}


gather_report = gather  # public name (checks.gather_report)


def format_value(value: Any) -> str:
    """One table cell: blank for false, 3 decimals for small floats (report and artifacts)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def print_report(db_path: str | Path, run_id: str, console: Any = None) -> None:
    """One rich table per check, then the failed expectations."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    with opened(db_path, read_only=True) as con:
        data = gather(con, run_id)
    for check, rows in data["checks"].items():
        table = Table(title=check, title_justify="left")
        for column in _COLUMNS:
            table.add_column(column, justify="left" if column == "bucket" else "right")
        for row in rows:
            style = "dim" if row["insufficient"] else None
            table.add_row(*(format_value(row.get(c)) for c in _COLUMNS), style=style)
        console.print(table)
    failed = Table(title="failed expectations", title_justify="left")
    for column in ("check", "bucket", "expectation", "observed", "threshold"):
        failed.add_column(column)
    for row in data["failed"]:
        failed.add_row(*(format_value(v) for v in row.values()))
    console.print(failed)


def _bars(rows: list[dict[str, Any]], metric: str, title: str, top: float | None) -> str:
    """A horizontal bar chart of ``metric`` per bucket, as an inline SVG."""
    width, label_w, bar_h, gap = 420, 110, 16, 6
    values = [r.get(metric) for r in rows]
    scale_top = top or max([v for v in values if v is not None] or [1.0]) or 1.0
    height = 24 + len(rows) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="0" y="14" class="t">{html.escape(title)}</text>']
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        y = 24 + i * (bar_h + gap)
        parts.append(f'<text x="0" y="{y + 12}" class="l">{html.escape(str(row["bucket"]))}'
                     "</text>")
        if value is None:
            parts.append(f'<text x="{label_w}" y="{y + 12}" class="l">no data</text>')
            continue
        bar = (width - label_w - 60) * max(0.0, value) / scale_top
        fill = "url(#hatch)" if row["insufficient"] else "#4a78b5"
        parts.append(f'<rect x="{label_w}" y="{y}" width="{bar:.1f}" height="{bar_h}" '
                     f'fill="{fill}" stroke="#4a78b5"/>')
        if metric == "mean_quality" and row.get("p05_quality") is not None:
            x = label_w + (width - label_w - 60) * row["p05_quality"] / scale_top
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + bar_h}" '
                         'stroke="#c0392b" stroke-width="2"/>')
        parts.append(f'<text x="{label_w + bar + 4:.1f}" y="{y + 12}" class="l">'
                     f"{format_value(value)}</text>")
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.insufficient{color:#999}
.t{font-weight:600;font-size:13px}.l{font-size:11px}.charts{display:flex;gap:2em}
.no-data{color:#7b1f16;background:#fbeeee;padding:.5em 1em;display:inline-block}
.plot{overflow-x:auto}
"""

_HATCH = ('<svg width="0" height="0"><defs><pattern id="hatch" width="6" height="6" '
          'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
          '<line x1="0" y1="0" x2="0" y2="6" stroke="#4a78b5" stroke-width="2"/>'
          "</pattern></defs></svg>")


def draw_plots(data: dict[str, Any]) -> dict[str, str]:
    """The timeline and the trend as SVG, or each one's 'no data' paragraph."""
    from checks.plots import render_timeline, render_trend

    return {"timeline": render_timeline(data["timeline"]),
            "trend": render_trend(data["trend"])}


def render_html(data: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """The page; ``plots`` are the timeline and trend already drawn (else drawn here)."""
    run = data["run"]
    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           f"<title>cluster-eval run {html.escape(str(run['run_id']))}</title>",
           f"<style>{_STYLE}</style></head><body>", _HATCH,
           f"<h1>Run {html.escape(str(run['run_id']))}</h1><p>",
           " · ".join(f"{k}: {html.escape(format_value(v))}"
                      for k, v in run.items() if k != "run_id"),
           "</p>"]
    if data["failed"]:
        out.append("<h2>Failed expectations</h2><table><tr>"
                   + "".join(f"<th>{c}</th>" for c in data["failed"][0]) + "</tr>")
        for row in data["failed"]:
            out.append("<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>"
                                        for v in row.values()) + "</tr>")
        out.append("</table>")
    if "timeline" in data:
        drawn = plots or draw_plots(data)
        out.append(f"<h2>The night</h2><div class='plot'>{drawn['timeline']}</div>")
        out.append(f"<h2>The last 30 nights</h2><div class='plot'>{drawn['trend']}</div>")
    for check, rows in data["checks"].items():
        out.append(f"<h2>{check}</h2>")
        if not rows:
            out.append("<p>No buckets for this run.</p>")
            continue
        columns = shown_columns(check)
        charts = [_bars(rows, metric, title, top) for metric, title, top in (
            ("mean_quality", "mean quality (red: p05)", 1.0),
            ("p99_latency_ms", "p99 latency (ms)", None)) if metric in columns]
        if charts:
            out.append("<div class='charts'>" + "".join(charts) + "</div>")
        out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>")
        for row in rows:
            css = " class='insufficient'" if row["insufficient"] else ""
            out.append(f"<tr{css}>" + "".join(f"<td>{html.escape(format_value(row.get(c)))}</td>"
                                              for c in columns) + "</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(db_path: str | Path, run_id: str, out_dir: str | Path,
                 thresholds: Thresholds | None = None) -> Path:
    """Write ``<out_dir>/report.html`` for the run, and beside it ``timeline.svg`` and
    ``trend.svg`` when there is something to draw (a stale one is removed); return the
    page's path."""
    with opened(db_path, read_only=True) as con:
        data = gather(con, run_id, thresholds)
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    plots = draw_plots(data)
    page = target / "report.html"
    page.write_text(render_html(data, plots))
    for name, drawn in plots.items():
        svg = target / f"{name}.svg"
        if drawn.startswith("<svg"):
            svg.write_text(drawn)
        else:  # a 'no data' note: no picture, and no stale one from an earlier write
            svg.unlink(missing_ok=True)
    return page
