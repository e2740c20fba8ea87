"""Cap a prompt's length by cutting its middle: the head and the tail stay.

Tokens are counted the way the builders count them (:func:`approx_tokens`, about four
characters per token), because these prompts come without the served model's tokenizer:
a cap of N tokens is a cap of ``4 N`` characters, approximate for the served model.
(Block-hash traces are built in that tokenizer and capped by whole blocks instead:
:mod:`traffic.importers.block_text`.)

The messages are read as one run of text in order. When it is too long, a span in its
middle is cut and :data:`CUT_MARKER` is put where it was: the beginning (system prompt,
first turns) and the end (the newest turn) survive. A message wholly inside the cut is
dropped; the two messages at its edges keep their outer parts.
"""

from __future__ import annotations

from typing import Any

from traffic.builders.tasks import approx_tokens

__all__ = ["CHARS_PER_TOKEN", "CUT_MARKER", "prompt_tokens", "truncate_middle"]

CHARS_PER_TOKEN = 4  # the inverse of approx_tokens
CUT_MARKER = "\n[… cut by cluster-eval import …]\n"


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Approximate prompt tokens of ``messages`` (the text of their contents)."""
    return approx_tokens(sum(len(_text(m)) for m in messages))


def truncate_middle(messages: list[dict[str, Any]], max_tokens: int) -> list[dict[str, Any]]:
    """``messages`` unchanged when within ``max_tokens``, else with their middle cut.

    The result, marker included, holds at most ``max_tokens * 4`` characters of text.
    """
    texts = [_text(m) for m in messages]
    total = sum(len(t) for t in texts)
    budget = max_tokens * CHARS_PER_TOKEN
    if total <= budget:
        return [dict(m) for m in messages]
    keep = max(0, budget - len(CUT_MARKER))
    head_chars = (keep + 1) // 2
    cut_from, cut_to = head_chars, total - (keep - head_chars)  # [cut_from, cut_to) goes
    out: list[dict[str, Any]] = []
    start = 0
    for message, text in zip(messages, texts, strict=True):
        end = start + len(text)
        if end <= cut_from or start >= cut_to:  # wholly before or after the cut
            out.append(dict(message))
        else:
            head = text[: max(0, cut_from - start)]
            tail = text[max(0, cut_to - start) :]
            marker = CUT_MARKER if start <= cut_from < end else ""
            if head or tail or marker:
                out.append({**message, "content": head + marker + tail})
        start = end
    return out


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""
