"""completion: did the request finish normally?

Always applies. 1 when the span's status is ``ok`` and the model stopped on its own
(``finish_reason`` ``stop`` or ``tool_calls``); 0 for serving failures (error,
timeout) and truncation (``length``) or any other finish reason.
"""

from __future__ import annotations

from checks.rubrics.base import SpanView, register

FINISHED = frozenset({"stop", "tool_calls"})


@register("completion", answer_only=True)
def completion(span: SpanView) -> float | None:
    return 1.0 if not span.failed and span.finish_reason in FINISHED else 0.0
