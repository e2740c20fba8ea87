"""The trend of every metric the gate judged on a run, over the last nights of the
run's baseline key: one small panel per (check, bucket, rule) with the observed value
per night, the threshold it was held to as a line, and the failing nights in red.

Data: ``trend.sql``. A threshold can move from night to night (history's margins
follow the baseline), so the threshold is drawn through each night's own value. The
run itself is the last point, ringed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from itertools import groupby
from typing import Any

import duckdb

from checks.plots.svg import Panel, document, text

__all__ = ["NIGHTS", "Trend", "TrendSeries", "load_trend", "render_trend"]

NIGHTS = 30


@dataclass(frozen=True)
class NightValue:
    run_id: str
    started_at: datetime
    observed: float
    threshold: float | None
    success: bool


@dataclass
class TrendSeries:
    check: str
    bucket: str | None
    expectation: str
    bound: str | None
    nights: list[NightValue]

    @property
    def name(self) -> str:
        return f"{self.check} · {self.bucket or 'run'} · {self.expectation}"


@dataclass
class Trend:
    run_id: str
    baseline_key: str | None
    nights: list[tuple[str, datetime]] = field(default_factory=list)  # oldest first
    series: list[TrendSeries] = field(default_factory=list)


def load_trend(con: duckdb.DuckDBPyConnection, run_id: str, nights: int = NIGHTS) -> Trend:
    """The judged metrics of ``run_id`` over its baseline key's last ``nights`` nights."""
    sql = (resources.files("checks.plots") / "trend.sql").read_text()
    result = con.execute(sql, {"run_id": run_id, "nights": nights})
    names = [d[0] for d in result.description]
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    key = con.execute("SELECT baseline_key FROM runs WHERE run_id = $run_id",
                      {"run_id": run_id}).fetchall()
    trend = Trend(run_id=run_id, baseline_key=key[0][0] if key else None)
    trend.nights = sorted({(r["run_id"], r["started_at"]) for r in rows}, key=lambda n: n[1])

    def metric(row: dict[str, Any]) -> tuple[str, str, str]:
        return row["check"], row["bucket"] or "", row["expectation"]

    for (check, bucket, expectation), group in groupby(rows, key=metric):
        values = list(group)
        trend.series.append(TrendSeries(
            check=check, bucket=bucket or None, expectation=expectation,
            bound=values[-1]["bound"],
            nights=[NightValue(run_id=v["run_id"], started_at=v["started_at"],
                               observed=float(v["observed"]),
                               threshold=None if v["threshold"] is None
                               else float(v["threshold"]),
                               success=bool(v["success"])) for v in values]))
    return trend


# --- drawing ----------------------------------------------------------------------

COLUMNS = 4
CELL_W, CELL_H = 300, 150
PLOT_LEFT, PLOT_TOP, PLOT_W, PLOT_H = 48, 34, 236, 76

STYLE = """
.frame{fill:none;stroke:#999;stroke-width:1}.grid{stroke:#eee;stroke-width:1}
.tick{font:9px system-ui,sans-serif;fill:#555}
.axis-title{font:10px system-ui,sans-serif;fill:#222}
.panel-title{font:600 11px system-ui,sans-serif;fill:#222}
.sub{font:10px system-ui,sans-serif;fill:#555}
.title{font:600 13px system-ui,sans-serif;fill:#222}
.observed polyline{fill:none;stroke:#2f6db5;stroke-width:1.5}
.observed circle{fill:#2f6db5}
.threshold polyline{fill:none;stroke:#c0392b;stroke-width:1.2;stroke-dasharray:5 3}
.threshold circle{fill:#c0392b}
.night{fill:#2f6db5}.night.fail{fill:#c0392b;stroke:#7b1f16;stroke-width:1}
.tonight{fill:none;stroke:#222;stroke-width:1.5}
"""


def _short(text_: str, most: int) -> str:
    return text_ if len(text_) <= most else text_[: most - 1] + "…"


def _panel(series: TrendSeries, index: int, night_index: dict[str, int], count: int,
           run_id: str) -> str:
    left = (index % COLUMNS) * CELL_W
    top = 30 + (index // COLUMNS) * CELL_H
    values = [n.observed for n in series.nights]
    values += [n.threshold for n in series.nights if n.threshold is not None]
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or max(abs(high) * 0.1, 0.01)
    panel = Panel(left + PLOT_LEFT, top + PLOT_TOP, PLOT_W, PLOT_H,
                  -0.5, max(count - 0.5, 0.5), low - pad, high + pad)
    failing = sum(1 for n in series.nights if not n.success)
    side = {"max": "at most", "min": "at least"}.get(series.bound or "", "held to")
    parts = [f'<g class="trend-panel" data-metric="{html.escape(series.name)}" '
             f'data-nights="{len(series.nights)}" data-failing="{failing}">',
             text(left + 8, top + 14, _short(f"{series.check} · {series.bucket or 'run'}", 46),
                  "panel-title"),
             text(left + 8, top + 27, _short(f"{series.expectation} ({side} threshold)", 52),
                  "sub"),
             panel.frame(series.expectation if len(series.expectation) < 14 else "value")]
    thresholds = [(night_index[n.run_id], n.threshold) for n in series.nights]
    parts.append(panel.line("threshold", thresholds, "threshold"))
    parts.append(panel.line("observed", [(night_index[n.run_id], n.observed)
                                         for n in series.nights], "observed"))
    for n in series.nights:
        x, y = panel.x(night_index[n.run_id]), panel.y(n.observed)
        cls = "night" if n.success else "night fail"
        radius = 3 if n.success else 4.5
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" class="{cls}" '
                     f'data-run="{html.escape(n.run_id)}"><title>'
                     f'{html.escape(n.run_id)} ({n.started_at:%Y-%m-%d}): {n.observed:.4g}'
                     f'{" FAIL" if not n.success else ""}</title></circle>')
        if n.run_id == run_id:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" class="tonight"/>')
    first, last = series.nights[0].started_at, series.nights[-1].started_at
    parts.append(text(panel.left, panel.top + PLOT_H + 13, f"{first:%m-%d}", "tick"))
    parts.append(text(panel.left + PLOT_W, panel.top + PLOT_H + 13, f"{last:%m-%d}", "tick",
                      "end"))
    parts.append(text(panel.left + PLOT_W / 2, panel.top + PLOT_H + 13,
                      f"{len(series.nights)} night{'s' if len(series.nights) != 1 else ''}",
                      "tick", "middle"))
    parts.append("</g>")
    return "".join(parts)


def render_trend(trend: Trend) -> str:
    """The trend as one SVG of small multiples, or a paragraph saying why there is none."""
    if trend.baseline_key is None:
        return ('<p class="no-data">No trend: the run has no baseline key, so no earlier '
                "nights are comparable with it.</p>")
    if not trend.series:
        return ('<p class="no-data">No trend: the gate judged no metric on this run '
                "(not judged yet, or every bucket too thin).</p>")
    night_index = {run_id: i for i, (run_id, _) in enumerate(trend.nights)}
    count = len(trend.nights)
    panels = [_panel(s, i, night_index, count, trend.run_id)
              for i, s in enumerate(trend.series)]
    rows = (len(panels) + COLUMNS - 1) // COLUMNS
    failing = sum(1 for s in trend.series for n in s.nights if not n.success)
    title = text(8, 18, f"Last {count} judged night{'s' if count != 1 else ''} of "
                        f"'{trend.baseline_key}': {len(trend.series)} judged metrics, "
                        f"{failing} failing values (red); dashed red: the threshold; "
                        "ringed: this run", "title")
    return document(COLUMNS * CELL_W, 30 + rows * CELL_H, f"trend of run {trend.run_id}",
                    [title, *panels], STYLE, "trend")
