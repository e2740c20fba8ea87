"""The Prefect artifact of the report's plots: the SVGs themselves, inline, so the
plots open from any browser that reaches the Prefect UI."""

from __future__ import annotations

import base64
import re

from flows.artifacts import MAX_INLINE_BYTES, plots_markdown

TIMELINE = ('<svg xmlns="http://www.w3.org/2000/svg" class="timeline">'
            '<g data-series="offered" data-points="3"/></svg>')


def _images(markdown: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in
            re.findall(r"!\[([^\]]+)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)",
                       markdown)}


def test_both_plots_are_inlined_as_the_report_wrote_them(tmp_path):
    report = tmp_path / "report.html"
    (tmp_path / "timeline.svg").write_text(TIMELINE)
    (tmp_path / "trend.svg").write_text('<svg class="trend"></svg>')
    images = _images(plots_markdown("run-1", report))
    assert images == {"The night over time": TIMELINE.encode(),
                      "The last 30 nights of every judged metric": b'<svg class="trend"></svg>'}


def test_a_plot_not_drawn_is_said_so_and_a_huge_one_is_named_not_inlined(tmp_path):
    report = tmp_path / "report.html"
    (tmp_path / "timeline.svg").write_text("<svg>" + " " * MAX_INLINE_BYTES + "</svg>")
    markdown = plots_markdown("run-1", report)
    assert _images(markdown) == {}
    assert f"Too large to inline ({MAX_INLINE_BYTES + 11:,} bytes): `{tmp_path}/timeline.svg`" \
        in markdown
    assert f"Not drawn (nothing to plot): the report `{report}` says why." in markdown
