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
from checks.rubrics.base import ANSWER_ONLY, CONDITIONAL, RUBRICS, Rubric, SpanView, register

# The built-in rubrics' names, in registration order: every other list of them is
# derived from the registry (scoring's CONDITIONAL, the benchmark) or tested against it
# (the SQL's per-rubric columns, the docs).
RUBRIC_NAMES = tuple(RUBRICS)

__all__ = ["ANSWER_ONLY", "CONDITIONAL", "RUBRICS", "RUBRIC_NAMES", "Rubric", "SpanView",
           "register"]
