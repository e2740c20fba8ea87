"""Choose which requests of a trace are replayed, and when: window, thinning, layout.

All three work on whole sessions (a conversation; a single request in the CSV traces),
so a conversation is never replayed with turns missing:

* the **window** keeps the sessions whose first request falls in ``[since, until)``;
* **thinning** keeps a seeded random subset of those sessions, drawn without
  replacement, holding as many requests as the target rate over the window asks for;
* **layout** gives traces without times (ShareGPT) a timeline: sessions start as a
  Poisson process whose request rate is the target rate, turns ``think_time_s`` apart.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from traffic.errors import WorkloadError
from traffic.importers.options import TraceRequest, WindowEdge

__all__ = ["Window", "group_sessions", "layout", "resolve_window", "thin", "within"]

Session = list[TraceRequest]


@dataclass(frozen=True)
class Window:
    """``[start, end)`` on the trace's own clock (``end`` ``None``: to the end)."""

    start: float
    end: float | None

    def holds(self, time: float) -> bool:
        return time >= self.start and (self.end is None or time < self.end)


def resolve_window(
    since: WindowEdge | None, until: WindowEdge | None, *, zero: float, timestamps: bool
) -> Window:
    """The window on the trace clock; offsets count from ``zero`` (the first request)."""
    start = _edge(since, zero, timestamps, "--since")
    end = _edge(until, zero, timestamps, "--until")
    return Window(zero if start is None else start, end)


def _edge(edge: WindowEdge | None, zero: float, timestamps: bool, flag: str) -> float | None:
    if edge is None:
        return None
    if isinstance(edge, datetime):
        if not timestamps:
            raise WorkloadError(
                f"{flag} is a timestamp, but this trace has no timestamps: give seconds "
                "from its first request"
            )
        return edge.timestamp()
    return zero + float(edge)


def group_sessions(requests: Iterable[TraceRequest]) -> list[Session]:
    """Requests by session, sessions in order of first appearance, turns in order."""
    by_id: dict[str, Session] = {}
    for request in requests:
        by_id.setdefault(request.session_id, []).append(request)
    for session in by_id.values():
        session.sort(key=lambda r: r.turn)
    return list(by_id.values())


def within(sessions: list[Session], window: Window) -> list[Session]:
    """Sessions whose first request is inside ``window``, kept whole."""
    return [s for s in sessions if window.holds(_start(s))]


def thin(sessions: list[Session], rate: float, duration_s: float, seed: int) -> list[Session]:
    """At most ``rate * duration_s`` requests in whole sessions, drawn without replacement.

    Sessions are visited in a seeded random order; one that would pass the target is
    skipped, so single-request sessions reach it exactly. When the trace is already at
    or below ``rate``, every session is kept: thinning never adds requests.
    """
    total = sum(len(s) for s in sessions)
    target = round(rate * duration_s)
    if duration_s <= 0 or target >= total:
        return list(sessions)
    order = list(range(len(sessions)))
    random.Random(f"{seed}:thinning").shuffle(order)
    kept: list[int] = []
    count = 0
    for index in order:
        size = len(sessions[index])
        if count + size <= target:
            kept.append(index)
            count += size
            if count == target:
                break
    return [sessions[index] for index in sorted(kept)]


def layout(
    sessions: list[Session],
    *,
    rate: float,
    think_time_s: float,
    seed: int,
    window: Window,
) -> list[Session]:
    """Timed copies of untimed sessions: a seeded random order, starts Poisson at ``rate``.

    The session rate is ``rate`` divided by the mean number of requests per session, so
    requests arrive at about ``rate``. Sessions starting before the window are skipped,
    the layout stops at its end; each session is used at most once.
    """
    if not sessions:
        return []
    rng = random.Random(f"{seed}:layout")
    order = list(sessions)
    rng.shuffle(order)
    mean_size = sum(len(s) for s in sessions) / len(sessions)
    session_rate = rate / mean_size
    now = 0.0
    out: list[Session] = []
    for session in order:
        now += rng.expovariate(session_rate)
        if window.end is not None and now >= window.end:
            break
        if now < window.start:
            continue
        out.append([replace(r, time=now + i * think_time_s) for i, r in enumerate(session)])
    return out


def _start(session: Session) -> float:
    time = session[0].time
    assert time is not None, "untimed sessions are laid out before the window"
    return time
