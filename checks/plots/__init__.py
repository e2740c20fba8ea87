"""Plots of a run for the HTML report and the Prefect artifact, drawn as inline SVG.

* ``timeline``: the night over time (load, replicas, queue, KV cache, errors, rolling
  quality) with the checks' time buckets shaded (``timeline.sql``,
  ``timeline_bands.sql``);
* ``trend``: every judged metric over the last 30 nights of the run's baseline key,
  threshold line and failing nights marked (``trend.sql``);
* ``svg``: the few drawing pieces both use.

Why hand-made SVG, not a plotting library: the report is built every night after the
gate and must stay cheap and offline. Measured on a night of ~600 spans and 600 s of
telemetry plus 30 judged nights (docs/checks.md, "The report's plots"): the timeline
draws in 0.01-0.05 s and a fresh process spends ~0.13 s CPU on it, nothing to install;
matplotlib spent ~1.4 s CPU (5 s to import) and Vega-Lite through altair and
vl-convert-python (an embedded JavaScript engine, a 33 MB wheel) ~3.7 s, its first
chart taking seconds. Every mark carries its class and ``data-*`` attributes, so the
tests count what a plot shows instead of trusting a picture.
"""

from checks.plots.timeline import Timeline, load_timeline, render_timeline
from checks.plots.trend import Trend, load_trend, render_trend

__all__ = ["Timeline", "Trend", "load_timeline", "load_trend", "render_timeline",
           "render_trend"]
