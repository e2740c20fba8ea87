"""The few SVG pieces the report's plots are drawn with: a panel that maps data to
pixels, its axes, lines, points and shaded stretches.

Every mark carries a class (and the data it stands for in ``data-*`` attributes), so
a test can count what a plot shows and a stylesheet can colour it. Numbers are
written with one decimal: a 600-point line stays a few kilobytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Panel", "document", "nice_ticks", "text"]


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def text(x: float, y: float, content: str, cls: str, anchor: str = "start",
         rotate: bool = False) -> str:
    """A label; ``rotate`` turns it to read bottom-up (a y-axis title)."""
    turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" class="{cls}" text-anchor="{anchor}"{turn}>'
            f"{html.escape(content)}</text>")


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


@dataclass
class Panel:
    """A plotting area at (left, top) of width x height pixels for the data ranges
    [x_min, x_max] x [y_min, y_max]."""

    left: float
    top: float
    width: float
    height: float
    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def x(self, value: float) -> float:
        span = (self.x_max - self.x_min) or 1.0
        return self.left + (value - self.x_min) / span * self.width

    def y(self, value: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        clipped = min(max(value, self.y_min), self.y_max)
        return self.top + self.height - (clipped - self.y_min) / span * self.height

    def frame(self, title: str, title_x: float | None = None) -> str:
        """The panel's border, y ticks and its y-axis title: turned, left of the ticks,
        or level, starting at ``title_x`` (wide left margins)."""
        parts = [f'<rect x="{_n(self.left)}" y="{_n(self.top)}" width="{_n(self.width)}" '
                 f'height="{_n(self.height)}" class="frame"/>']
        for tick in nice_ticks(self.y_min, self.y_max, 3):
            y = self.y(tick)
            parts.append(f'<line x1="{_n(self.left)}" x2="{_n(self.left + self.width)}" '
                         f'y1="{_n(y)}" y2="{_n(y)}" class="grid"/>')
            parts.append(text(self.left - 4, y + 3, f"{tick:g}", "tick", "end"))
        if title_x is None:
            parts.append(text(self.left - 34, self.top + self.height / 2, title,
                              "axis-title", "middle", rotate=True))
        else:
            parts.append(text(title_x, self.top + self.height / 2 + 4, title, "axis-title"))
        return "".join(parts)

    def x_axis(self, title: str, ticks: Iterable[float], label: str = "{:g}") -> str:
        """Ticks under the panel and the x-axis title."""
        bottom = self.top + self.height
        parts = []
        for tick in ticks:
            x = self.x(tick)
            parts.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(bottom)}" '
                         f'y2="{_n(bottom + 4)}" class="frame"/>')
            parts.append(text(x, bottom + 15, label.format(tick), "tick", "middle"))
        parts.append(text(self.left + self.width / 2, bottom + 30, title, "axis-title",
                          "middle"))
        return "".join(parts)

    def line(self, series: str, points: Sequence[tuple[float, float | None]],
             cls: str = "") -> str:
        """A polyline per unbroken run of points (a None value breaks the line); the
        group says how many points it draws."""
        runs: list[list[str]] = [[]]
        drawn = 0
        for x, y in points:
            if y is None or not math.isfinite(y):
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{_n(self.x(x))},{_n(self.y(y))}")
            drawn += 1
        lines = "".join(f'<polyline points="{" ".join(run)}"/>' if len(run) > 1 else
                        f'<circle cx="{run[0].split(",")[0]}" cy="{run[0].split(",")[1]}" r="1.5"/>'
                        for run in runs if run)
        return (f'<g class="series {cls}" data-series="{html.escape(series)}" '
                f'data-points="{drawn}">{lines}</g>')

    def bars(self, series: str, points: Sequence[tuple[float, float]], width: float,
             cls: str = "") -> str:
        """A bar from zero per non-zero value, ``width`` in data units."""
        rects = []
        for x, y in points:
            if not y:
                continue
            top = self.y(y)
            rects.append(f'<rect x="{_n(self.x(x))}" y="{_n(top)}" '
                         f'width="{_n(max(1.0, self.x(x + width) - self.x(x)))}" '
                         f'height="{_n(self.y(self.y_min) - top)}"/>')
        return (f'<g class="series {cls}" data-series="{html.escape(series)}" '
                f'data-points="{len(rects)}">{"".join(rects)}</g>')

    def shade(self, start: float, end: float, cls: str, label: str, spans: int,
              top: float | None = None, height: float | None = None) -> str:
        """A shaded stretch [start, end) across the panel (or the given strip)."""
        x0 = self.x(max(start, self.x_min))
        x1 = self.x(min(end, self.x_max))
        if x1 <= x0:
            return ""
        y = self.top if top is None else top
        h = self.height if height is None else height
        return (f'<rect x="{_n(x0)}" y="{_n(y)}" width="{_n(x1 - x0)}" height="{_n(h)}" '
                f'class="{cls}" data-label="{html.escape(label)}" data-spans="{spans}">'
                f"<title>{html.escape(label)}: {spans} replayed requests</title></rect>")


def document(width: float, height: float, label: str, body: Iterable[str], style: str,
             cls: str) -> str:
    """One standalone SVG (it opens on its own too): its style inside."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" '
            f'height="{_n(height)}" viewBox="0 0 {_n(width)} {_n(height)}" role="img" '
            f'class="{cls}" aria-label="{html.escape(label)}"><style>{style}</style>'
            + "".join(body) + "</svg>")
