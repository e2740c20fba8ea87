"""reference_match: does the answer match the reference answer?

Applies when the record has ``expect.reference``.

* Numeric reference (GSM8K; a ``#### 18`` tail is read as ``18``): 1 when the last
  number in the answer equals it (commas and ``$`` ignored), else 0. Token overlap
  is not credited: a wrong number sharing words with the reference is still wrong.
* Text reference (SQuAD): ``max(exact, f1)`` where ``exact`` is the normalised
  exact match (lowercase, no punctuation or articles) and ``f1`` the SQuAD token F1.
* Empty reference (SQuAD v2 "no answer"): 1 for a refusal, else 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from checks.rubrics.base import SpanView, register
from checks.rubrics.text import is_refusal, normalize

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _as_number(text: str) -> float | None:
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        return float(cleaned)
    except ValueError:
        return None


def last_number(text: str) -> float | None:
    found = _NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else None


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@register("reference_match", conditional=True)
def reference_match(span: SpanView) -> float | None:
    reference = span.expect.get("reference")
    if not isinstance(reference, str):
        return None
    if span.failed:
        return 0.0
    answer = span.output_text or ""
    if "####" in reference:
        reference = reference.rsplit("####", 1)[1]
    if not normalize(reference):
        return 1.0 if is_refusal(answer) else 0.0
    number = _as_number(reference)
    if number is not None:
        got = last_number(answer)
        return 1.0 if got is not None and math.isclose(got, number, abs_tol=1e-6) else 0.0
    if normalize(answer) == normalize(reference):
        return 1.0
    return token_f1(answer, reference)
