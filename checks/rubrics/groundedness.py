"""groundedness: is the answer supported by the grounding passage?

Applies when the record has ``expect.context``.

* Unanswerable questions (``expect.answerable is False``): a refusal is the right
  answer and scores 1; any other answer is a hallucination and scores 0.
* Answerable questions (``answerable`` true or unset): a refusal scores 0 (the
  context held the answer); otherwise the score is the share of the answer's
  content tokens (lowercased, punctuation and articles stripped, stop words
  removed) that occur in the context. An answer with no content tokens scores 0.

Lexical support is a cheap, deterministic proxy; an embedding-similarity option
may come later behind the same rubric name.
"""

from __future__ import annotations

from functools import lru_cache

from checks.rubrics.base import SpanView, register
from checks.rubrics.text import content_tokens, is_refusal, tokens


@lru_cache(maxsize=1024)
def _context_vocabulary(context: str) -> frozenset[str]:
    return frozenset(tokens(context))


@register("groundedness", conditional=True)
def groundedness(span: SpanView) -> float | None:
    context = span.expect.get("context")
    if not isinstance(context, str):
        return None
    if span.failed:
        return 0.0
    refused = is_refusal(span.output_text)
    if span.expect.get("answerable") is False:
        return 1.0 if refused else 0.0
    if refused:
        return 0.0
    answer = content_tokens(span.output_text or "")
    if not answer:
        return 0.0
    vocabulary = _context_vocabulary(context)
    return sum(t in vocabulary for t in answer) / len(answer)
