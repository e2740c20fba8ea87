"""Text normalisation shared by the text rubrics (SQuAD-style) and refusal detection."""

from __future__ import annotations

import re
import string

_PUNCT = str.maketrans("", "", string.punctuation + "‘’“”–—")
_ARTICLES = re.compile(r"\b(a|an|the)\b")

# A small English stop-word list: function words carry no claim to be grounded.
STOP_WORDS = frozenset(
    """
    a an the and or but if then else of to in on at by for with from as into onto
    about over under between through during before after above below up down out off
    is are was were be been being am do does did doing have has had having
    i me my we our you your he him his she her it its they them their this that these
    those there here what which who whom whose when where why how
    not no nor so than too very can could will would shall should may might must
    just also only both each few more most other some such own same all any
    s t don doesn didn isn aren wasn weren won wouldn couldn shouldn
    """.split()
)

_REFUSAL = re.compile(
    r"(\bi (?:do not|don't|dont) know\b"
    r"|\b(?:cannot|can't|cant|unable to|not able to) (?:be )?(?:answer|determine|find|tell)"
    r"|\b(?:not|never) (?:mentioned|stated|provided|specified|given|found|included|answerable)\b"
    r"|\bno (?:information|mention|answer)\b"
    r"|\b(?:does|do|did)(?: not|n't) (?:say|mention|specify|provide|contain|state|include)\b"
    r"|\bunanswerable\b"
    r"|\b(?:not enough|insufficient) (?:information|context)\b)",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, squeeze spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def content_tokens(text: str) -> list[str]:
    """Normalised tokens without stop words."""
    return [t for t in tokens(text) if t not in STOP_WORDS]


def is_refusal(text: str | None) -> bool:
    """True for an empty answer or one that says the question cannot be answered."""
    return not text or not text.strip() or _REFUSAL.search(text) is not None
