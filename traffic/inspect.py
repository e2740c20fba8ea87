"""What a traffic file holds, before a night replays it (``cluster-eval traffic inspect``).

Read with the loader, so it sees exactly what a replay would send and what it would
refuse: counts, the rate over time, tenants, sessions, prompt and answer sizes, how much
the prompts share, and the bad lines. Nothing is written (the quarantine goes to a
temporary folder and only its summary is kept).

**Rate over time**: requests per ``window_s`` window from the first arrival; the peak
window is the burst a night must absorb, the mean the load it must sustain.

**Shared contexts**, as ``kv_cache_eviction`` follows them: a request's context is
everything before its last message (system prompt, earlier turns) plus its tools. A
context of at least ``min_shared_tokens`` that an earlier request already sent is a
*reuse*, the traffic the prefix cache is for. Token counts are estimated (characters / 4,
:func:`~traffic.builders.tasks.approx_tokens`), so a context near the threshold may be
followed or not on the served tokenizer.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from traffic.builders.tasks import approx_tokens
from traffic.format import TrafficRecord
from traffic.loader import load_traffic

__all__ = ["LENGTH_EDGES", "TrafficSummary", "describe", "inspect_traffic"]

LENGTH_EDGES = (128, 512, 1024, 2048, 4096, 8192)  # prompt-token histogram edges
_BAD_SHOWN = 5


class RateWindow(BaseModel):
    start_s: float
    requests: int


class Sizes(BaseModel):
    p50: int
    p99: int
    max: int


class TrafficSummary(BaseModel):
    """``cluster-eval traffic inspect --json`` prints this object."""

    file: str
    requests: int
    bad_lines: int
    bad_examples: list[str]  # the first few, as "file line N field 'f': reason"
    bad_fields: dict[str, int]  # bad lines per field (None → "record")
    span_s: float  # first to last arrival
    mean_rate: float  # requests / span (0 for one request)
    window_s: float
    peak_window_rate: float  # requests/s in the busiest window
    peak_window_start_s: float
    quiet_window_rate: float  # requests/s in the least busy window (empty ones count)
    tenants: dict[str, int]
    sessions: int | None  # distinct tags.session_id; None when no record has one
    turns_mean: float | None
    turns_max: int | None
    prompt_tokens: Sizes  # ≈ characters / 4 of message text
    prompt_histogram: dict[str, int]  # "≤128", "≤512", …, ">8192"
    max_tokens: Sizes | None  # None when no record sets it
    min_shared_tokens: int
    followed_contexts: int  # requests with a context ≥ min_shared_tokens
    reused_contexts: int  # … whose context an earlier request already sent
    distinct_contexts: int
    reused_token_share: float  # ≈ tokens in reused contexts / all prompt tokens


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts
        return "".join(_text(part.get("text", "")) if isinstance(part, dict) else ""
                       for part in value)
    return ""


def _tokens(messages: list[Any], tools: Any) -> int:
    chars = sum(len(_text(m.get("content"))) for m in messages if isinstance(m, dict))
    if tools:
        chars += len(json.dumps(tools))
    return approx_tokens(chars)


def _sizes(values: list[int]) -> Sizes:
    ordered = sorted(values)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    return Sizes(p50=at(0.5), p99=at(0.99), max=ordered[-1])


def _histogram(values: list[int]) -> dict[str, int]:
    labels = [f"≤{edge}" for edge in LENGTH_EDGES] + [f">{LENGTH_EDGES[-1]}"]
    counts = dict.fromkeys(labels, 0)
    for value in values:
        index = next((i for i, edge in enumerate(LENGTH_EDGES) if value <= edge),
                     len(LENGTH_EDGES))
        counts[labels[index]] += 1
    return counts


def _windows(arrivals: list[float], window_s: float) -> list[RateWindow]:
    last = max(arrivals)
    n = max(1, math.ceil(last / window_s)) if last > 0 else 1
    counts = Counter(min(int(a // window_s), n - 1) for a in arrivals)
    return [RateWindow(start_s=i * window_s, requests=counts.get(i, 0)) for i in range(n)]


def _contexts(records: list[TrafficRecord], min_shared_tokens: int
              ) -> tuple[int, int, int, float]:
    """(followed, reused, distinct, reused token share) as the module doc defines them."""
    seen: set[str] = set()
    followed = reused = 0
    reused_tokens = total_tokens = 0
    for record in records:
        messages = record.body.get("messages") or []
        if not isinstance(messages, list):
            continue
        tools = record.body.get("tools")
        total_tokens += _tokens(messages, tools)
        context = messages[:-1]
        shared = _tokens(context, tools)
        if shared < min_shared_tokens:
            continue
        followed += 1
        key = json.dumps([context, tools], sort_keys=True, default=str)
        if key in seen:
            reused += 1
            reused_tokens += shared
        seen.add(key)
    share = reused_tokens / total_tokens if total_tokens else 0.0
    return followed, reused, len(seen), share


def inspect_traffic(path: str | Path, *, window_s: float = 60.0,
                    min_shared_tokens: int = 256) -> TrafficSummary:
    """Summarise the traffic file ``path`` (see the module doc); raises the loader's
    :class:`~traffic.errors.TrafficFormatError` when nothing in it can be read."""
    with tempfile.TemporaryDirectory() as scratch:
        loaded = load_traffic(path, quarantine_path=Path(scratch) / "q.jsonl",
                              max_bad_share=1.0)
    records = loaded.records
    # the loader makes every arrival an offset in seconds from the first
    arrivals = [r.arrival for r in records if isinstance(r.arrival, float | int)]
    span = max(arrivals) - min(arrivals) if arrivals else 0.0
    windows = _windows(arrivals, window_s) if arrivals else []
    peak = max(windows, key=lambda w: w.requests) if windows else None
    sessions = Counter(r.tags["session_id"] for r in records if "session_id" in r.tags)
    prompts = [_tokens(r.body.get("messages") or [], r.body.get("tools")) for r in records]
    budgets = [r.body["max_tokens"] for r in records
               if isinstance(r.body.get("max_tokens"), int)]
    followed, reused, distinct, share = _contexts(records, min_shared_tokens)
    return TrafficSummary(
        file=str(path),
        requests=len(records),
        bad_lines=loaded.n_bad,
        bad_examples=[b.describe() for b in loaded.bad[:_BAD_SHOWN]],
        bad_fields=dict(Counter(b.field or "record" for b in loaded.bad)),
        span_s=span,
        mean_rate=(len(records) - 1) / span if span > 0 else 0.0,
        window_s=window_s,
        peak_window_rate=peak.requests / window_s if peak else 0.0,
        peak_window_start_s=peak.start_s if peak else 0.0,
        quiet_window_rate=min(w.requests for w in windows) / window_s if windows else 0.0,
        tenants=dict(Counter(r.tenant_id for r in records).most_common()),
        sessions=len(sessions) or None,
        turns_mean=(sum(sessions.values()) / len(sessions)) if sessions else None,
        turns_max=max(sessions.values()) if sessions else None,
        prompt_tokens=_sizes(prompts) if prompts else Sizes(p50=0, p99=0, max=0),
        prompt_histogram=_histogram(prompts),
        max_tokens=_sizes(budgets) if budgets else None,
        min_shared_tokens=min_shared_tokens,
        followed_contexts=followed,
        reused_contexts=reused,
        distinct_contexts=distinct,
        reused_token_share=share,
    )


def describe(summary: TrafficSummary) -> str:
    """The summary as the lines ``traffic inspect`` prints."""
    s = summary
    lines = [f"{s.file}: {s.requests} requests, {s.bad_lines} bad lines"]
    lines += [f"  bad: {example}" for example in s.bad_examples]
    if s.bad_lines > len(s.bad_examples):
        by_field = ", ".join(f"{k} {v}" for k, v in s.bad_fields.items())
        lines.append(f"  bad lines by field: {by_field}")
    lines.append(f"span {s.span_s:.1f} s, mean {s.mean_rate:.3g} req/s; per {s.window_s:g} s "
                 f"window: peak {s.peak_window_rate:.3g} req/s (from {s.peak_window_start_s:g} s),"
                 f" quietest {s.quiet_window_rate:.3g} req/s")
    total = max(1, s.requests)
    lines.append("tenants: " + ", ".join(
        f"{t} {n} ({n / total:.0%})" for t, n in s.tenants.items()))
    lines.append(f"sessions: {s.sessions} (turns mean {s.turns_mean:.1f}, max {s.turns_max})"
                 if s.sessions else "sessions: none recorded (no tags.session_id)")
    p = s.prompt_tokens
    lines.append(f"prompt tokens (≈ chars/4): p50 {p.p50}, p99 {p.p99}, max {p.max}; "
                 + " | ".join(f"{k} {v}" for k, v in s.prompt_histogram.items()))
    if s.max_tokens:
        lines.append(f"max_tokens: p50 {s.max_tokens.p50}, p99 {s.max_tokens.p99}, "
                     f"max {s.max_tokens.max}")
    lines.append(f"shared contexts (≥ {s.min_shared_tokens} tokens before the last message): "
                 f"{s.followed_contexts} requests carry one, {s.reused_contexts} reuse an "
                 f"earlier request's ({s.distinct_contexts} distinct); reused ≈ "
                 f"{s.reused_token_share:.0%} of prompt tokens")
    return "\n".join(lines)
