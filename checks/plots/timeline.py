"""The timeline of one night: load and requests, replicas, queue depth, KV cache,
errors and rolling quality over time, with the checks' time buckets shaded.

Data: ``timeline.sql`` (one row per time bin) and ``timeline_bands.sql`` (the
traffic-pattern windows and the autoscaling saturation stretches). Drawn as one SVG
of stacked panels sharing the x axis (seconds since the night's first send):

    traffic pattern   strip: steady / burst / sustained windows (traffic_pattern_drift)
    saturation        strip: idle / warm / saturating / scaling / at_capacity (autoscaling_lag)
    request rate      offered (as scheduled) and achieved (answered ok), req/s
    replicas          running, starting, autoscaler target
    queue depth       requests in the cluster (highest sample of the bin)
    KV cache          highest replica's usage, 0-1
    errors            failed or timed-out requests per bin
    quality           rolling mean quality of the last ROLLING_S seconds

Burst and sustained windows are also shaded behind every panel, so a queue peak or an
error cluster can be read against the window the check put it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import duckdb

from checks.compute import stage_buckets
from checks.plots.svg import Panel, document, nice_ticks, text

__all__ = ["POINTS", "ROLLING_S", "Band", "Timeline", "load_timeline", "render_timeline"]

POINTS = 150      # about this many time bins, whatever the night's length
ROLLING_S = 60    # rolling quality: the requests sent in the last minute

PATTERN_LABELS = ("steady", "burst", "sustained")
SATURATION_LABELS = ("idle", "warm", "saturating", "scaling", "at_capacity", "unknown")


@dataclass(frozen=True)
class Band:
    """A stretch of time and the label a check gave it."""

    band: str
    label: str
    start_s: float
    end_s: float
    spans: int


@dataclass
class Timeline:
    run_id: str
    bins: list[dict[str, Any]] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)

    @property
    def has_telemetry(self) -> bool:
        return any(b["replicas"] is not None or b["queue_depth"] is not None
                   for b in self.bins)


def _sql(name: str) -> str:
    return (resources.files("checks.plots") / f"{name}.sql").read_text()


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]
          ) -> list[dict[str, Any]]:
    result = con.execute(sql, params)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def load_timeline(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Any) -> Timeline:
    """The night's bins and shaded stretches, read from the warehouse."""
    bins = _rows(con, _sql("timeline"),
                 {"run_id": run_id, "points": POINTS, "rolling_s": ROLLING_S})
    # the checks' bucket assignment with these thresholds (temp tables only)
    stage_buckets(con, run_id, thresholds)
    bands = [Band(band=row["band"], label=row["label"], start_s=float(row["start_s"]),
                  end_s=float(row["end_s"]), spans=int(row["spans"]))
             for row in _rows(con, _sql("timeline_bands"), {})]
    return Timeline(run_id=run_id, bins=bins, bands=bands)


# --- drawing ----------------------------------------------------------------------

WIDTH = 1200
LEFT, RIGHT = 150, 20
STRIP_H, PANEL_H, GAP = 16, 70, 12

STYLE = """
.frame{fill:none;stroke:#999;stroke-width:1}.grid{stroke:#e4e4e4;stroke-width:1}
.tick{font:10px system-ui,sans-serif;fill:#555}
.axis-title{font:11px system-ui,sans-serif;fill:#222}
.title{font:600 13px system-ui,sans-serif;fill:#222}
.strip-title{font:11px system-ui,sans-serif;fill:#222}
.series polyline{fill:none;stroke-width:1.5}.series circle{stroke:none}
.offered polyline{stroke:#9aa5b1;stroke-dasharray:4 2}.achieved polyline{stroke:#2f6db5}
.replicas polyline{stroke:#2f6db5}.starting polyline{stroke:#e08a1e}
.target polyline{stroke:#555;stroke-dasharray:3 3}.queue polyline{stroke:#7a4fb5}
.kv polyline{stroke:#1d8a6b}.quality polyline{stroke:#2f6db5}.quality circle{fill:#2f6db5}
.errors rect{fill:#c0392b}
.band-steady{fill:#eef2f6}.band-burst{fill:#f4b183}.band-sustained{fill:#f7d794}
.band-below_ceiling{fill:#f7d794}
.band-idle{fill:#eef2f6}.band-warm{fill:#d6e9c6}.band-saturating{fill:#f7d794}
.band-scaling{fill:#e8747c}.band-at_capacity{fill:#b9a3d6}.band-unknown{fill:#ddd}
.behind{opacity:.35}
.legend{font:10px system-ui,sans-serif;fill:#333}
"""


@dataclass(frozen=True)
class _PanelSpec:
    title: str
    name: str
    y_max: float
    lines: list[tuple[str, list[tuple[float, float | None]], str]]


def _legend(x: float, y: float, entries: list[tuple[str, str]]) -> tuple[str, float]:
    parts = []
    for cls, label in entries:
        parts.append(f'<rect x="{x:.0f}" y="{y - 8:.0f}" width="10" height="10" class="{cls}"/>')
        parts.append(text(x + 13, y + 1, label, "legend"))
        x += 24 + 6 * len(label)
    return "".join(parts), x


def render_timeline(timeline: Timeline) -> str:
    """The timeline as one SVG, or a paragraph saying why there is none."""
    if not timeline.bins:
        return ('<p class="no-data">No timeline: the run has no spans and no telemetry '
                "in the warehouse.</p>")
    bins = timeline.bins
    origin = float(bins[0]["bin_start"])
    step = float(bins[0]["bin_s"])
    x_max = float(bins[-1]["bin_start"]) + step - origin

    def at(row: dict[str, Any]) -> float:  # a bin's middle, seconds since the origin
        return float(row["bin_start"]) - origin + step / 2

    def series(column: str) -> list[tuple[float, float | None]]:
        return [(at(b), None if b[column] is None else float(b[column])) for b in bins]

    def top_of(column_values: list[float | None], floor: float) -> float:
        values = [v for v in column_values if v is not None]
        return max([floor, *values]) * 1.1

    body: list[str] = [text(LEFT, 16, f"Run {timeline.run_id}: the night over time "
                                      f"({step:g} s bins)", "title")]
    y = 30
    plot_w = WIDTH - LEFT - RIGHT
    behind: list[tuple[float, float, str, int]] = []
    for band_name, title in (("traffic_pattern_drift", "traffic pattern"),
                             ("autoscaling_lag", "saturation")):
        strip = Panel(LEFT, y, plot_w, STRIP_H, 0, x_max, 0, 1)
        stretches = [b for b in timeline.bands if b.band == band_name]
        body.append(f'<g class="strip" data-band="{band_name}" '
                    f'data-stretches="{len(stretches)}">')
        body.append(text(LEFT - 6, y + 12, title, "strip-title", "end"))
        for b in stretches:
            body.append(strip.shade(b.start_s - origin, b.end_s - origin,
                                    f"band band-{b.label}", b.label, b.spans))
            if band_name == "traffic_pattern_drift" and b.label != "steady":
                behind.append((b.start_s - origin, b.end_s - origin, b.label, b.spans))
        if not stretches:
            body.append(text(LEFT + 4, y + 12, "no telemetry: no stretches to shade",
                             "legend"))
        body.append(f'<rect x="{LEFT}" y="{y}" width="{plot_w}" height="{STRIP_H}" '
                    'class="frame"/></g>')
        y += STRIP_H + 4
    legend, _ = _legend(LEFT, y + 10, [(f"band-{label}", label) for label in
                                       (*PATTERN_LABELS, *SATURATION_LABELS[:5])])
    body.append(legend)
    y += 18

    rate_top = top_of([b["offered_rps"] for b in bins] + [b["achieved_rps"] for b in bins], 0.1)
    replica_top = top_of([b[c] for b in bins for c in
                          ("replicas", "target_replicas", "replicas_starting")], 1)
    panels = [
        _PanelSpec("request rate (req/s)", "rate", rate_top,
                   [("offered", series("offered_rps"), "offered"),
                    ("achieved", series("achieved_rps"), "achieved")]),
        _PanelSpec("replicas", "replicas", replica_top,
                   [("replicas", series("replicas"), "replicas"),
                    ("starting", series("replicas_starting"), "starting"),
                    ("target", series("target_replicas"), "target")]),
        _PanelSpec("queue depth", "queue", top_of([b["queue_depth"] for b in bins], 1),
                   [("queue_depth", series("queue_depth"), "queue")]),
        _PanelSpec("KV cache usage", "kv", 1.0,
                   [("kv_cache_usage", series("kv_cache_usage"), "kv")]),
        _PanelSpec("errors per bin", "errors", top_of([b["errors"] for b in bins], 1), []),
        _PanelSpec(f"quality ({ROLLING_S} s mean)", "quality", 1.0,
                   [("rolling_quality", series("rolling_quality"), "quality")]),
    ]

    for spec in panels:
        name = spec.name
        panel = Panel(LEFT, y, plot_w, PANEL_H, 0, x_max, 0, spec.y_max)
        body.append(f'<g class="panel" data-panel="{name}">')
        body += [panel.shade(s, e, f"band band-{label} behind", label, n)
                 for s, e, label, n in behind]
        body.append(panel.frame(spec.title, title_x=6))
        if name == "errors":
            body.append(panel.bars("errors", [(at(b) - step / 2, float(b["errors"]))
                                              for b in bins], step, "errors"))
        for series_name, points, cls in spec.lines:
            body.append(panel.line(series_name, points, cls))
        if name in ("replicas", "queue", "kv") and not timeline.has_telemetry:
            body.append(text(LEFT + plot_w / 2, y + PANEL_H / 2, "no telemetry samples",
                             "legend", "middle"))
        body.append("</g>")
        y += PANEL_H + GAP
    axis = Panel(LEFT, y - GAP - PANEL_H, plot_w, PANEL_H, 0, x_max, 0, 1)
    body.append(axis.x_axis("seconds since the night's first request",
                            nice_ticks(0, x_max, 10)))
    body.append(text(LEFT, y + 40, "rate: dashed = offered (as scheduled), solid = "
                     "achieved (answered ok) · replicas: blue running, orange starting, "
                     "dashed target", "legend"))
    height = y + 50
    return document(WIDTH, height, f"timeline of run {timeline.run_id}", body, STYLE,
                    "timeline")
