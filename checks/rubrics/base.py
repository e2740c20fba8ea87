"""What a rubric sees of a span, and the registry rubrics are looked up in by name.

A rubric is a pure function ``SpanView -> float | None``: a score in [0, 1], or
``None`` when it does not apply to the span. Rubrics never do I/O (the optional
LLM judge is the one exception and is not registered here; see ``llm_judge``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Rubric = Callable[["SpanView"], float | None]

RUBRICS: dict[str, Rubric] = {}
# Registered rubrics that score only spans carrying ``expect``, ``tools`` or
# ``response_format`` (None on a plain chat span), so scoring skips their JSON parse.
CONDITIONAL: set[str] = set()
# Registered rubrics that read only ``status``, ``finish_reason`` and ``output_text``.
ANSWER_ONLY: set[str] = set()


def register(
    name: str, *, conditional: bool = False, answer_only: bool = False
) -> Callable[[Rubric], Rubric]:
    """Register a rubric under ``name`` (the value of ``scores.rubric``).

    ``conditional``: it returns None unless the span's record or request carries
    ``expect``, ``tools`` or ``response_format``. ``answer_only``: it reads no field but
    ``status``, ``finish_reason`` and ``output_text``. Both let ``score_spans`` skip
    parsing a plain span's JSON; leave them False when unsure (always correct, slower).
    """

    def decorator(fn: Rubric) -> Rubric:
        if name in RUBRICS:
            raise ValueError(f"rubric {name!r} registered twice")
        RUBRICS[name] = fn
        if conditional:
            CONDITIONAL.add(name)
        if answer_only:
            ANSWER_ONLY.add(name)
        return fn

    return decorator


def _loads(text: str | None, default: Any) -> Any:
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True, slots=True)
class SpanView:
    """The fields of a span (docs/architecture.md, Span) a rubric reads, JSON parsed.

    ``request`` is the OpenAI request body, ``tool_calls`` the list of
    ``{name, arguments}`` the model returned, ``expect`` the traffic record's
    ``Expect`` as a plain dict (traffic/format.py).
    """

    status: str = "ok"
    finish_reason: str | None = None
    output_text: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    request: Mapping[str, Any] = field(default_factory=dict)
    expect: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """A serving failure (error, timeout): scored 0 by every rubric that applies."""
        return self.status != "ok"

    @classmethod
    def from_row(
        cls,
        *,
        status: str | None,
        finish_reason: str | None,
        output_text: str | None,
        tool_calls: str | None,
        request_body: str | None,
        expect: str | None,
    ) -> SpanView:
        """Build a view from the span's raw columns; malformed JSON reads as absent."""
        calls = _loads(tool_calls, [])
        req = _loads(request_body, {})
        exp = _loads(expect, {})
        return cls(
            status=status or "ok",
            finish_reason=finish_reason,
            output_text=output_text,
            tool_calls=calls if isinstance(calls, list) else [],
            request=req if isinstance(req, dict) else {},
            expect=exp if isinstance(exp, dict) else {},
        )
