"""Rubrics: pure functions from a span to a score in [0, 1], or None when not applicable.

Each lives in its own module and registers itself by name (the ``scores.rubric``
value). Importing this package registers the five built-in rubrics; the optional
LLM judge (``checks.rubrics.llm_judge``) is off by default and not registered.
"""

from checks.rubrics import (  # noqa: F401  (imported to register)
    completion,
    groundedness,
    json_adherence,
    reference_match,
    tool_call_correctness,
)
from checks.rubrics.base import RUBRICS, Rubric, SpanView, register

RUBRIC_NAMES = ("json_adherence", "tool_call_correctness", "groundedness", "reference_match",
                "completion")

__all__ = ["RUBRICS", "RUBRIC_NAMES", "Rubric", "SpanView", "register"]
