"""Score many spans: every registered rubric over a polars frame of spans, long form."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import pyarrow as pa

from checks.rubrics import ANSWER_ONLY, CONDITIONAL, RUBRICS, Rubric, SpanView

SPAN_COLUMNS = ("span_id", "status", "finish_reason", "output_text", "tool_calls",
                "request_body", "expect")

SCORE_SCHEMA = {"span_id": pl.String, "rubric": pl.String, "score": pl.Float64}


def _needs_parsing(expect: str | None, body: str | None) -> bool:
    # Only expect, tools or response_format make a rubric other than completion
    # apply; a substring test skips JSON parsing for the plain chat majority.
    return bool(expect and expect != "null") or bool(
        body and ('"tools"' in body or '"response_format"' in body)
    )


def score_spans(
    spans: pl.DataFrame | pa.Table, rubrics: Mapping[str, Rubric] | None = None
) -> pl.DataFrame:
    """Score every span with every rubric: ``span_id, rubric, score`` (null: not applicable).

    ``spans`` (polars or pyarrow) holds the Span columns of docs/architecture.md (at
    least ``SPAN_COLUMNS``; missing ones read as null). ``rubrics`` defaults to the
    registered five; pass extra ones (e.g. an ``LLMJudge``) by name.
    """
    if isinstance(spans, pa.Table):
        spans = pl.DataFrame(spans)
    rubrics = dict(RUBRICS if rubrics is None else rubrics)
    missing = [c for c in SPAN_COLUMNS if c not in spans.columns]
    frame = spans.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)
    names = list(rubrics)
    # a rubric registered as neither conditional nor answer-only (e.g. a judge) may read
    # any field of any span: parse all
    parse_all = any(n not in CONDITIONAL and n not in ANSWER_ONLY for n in names)
    span_ids: list[str] = []
    rubric_col: list[str] = []
    scores: list[float | None] = []
    for span_id, status, finish, output, calls, body, expect in frame.select(
        SPAN_COLUMNS
    ).iter_rows():
        if parse_all or _needs_parsing(expect, body):
            view = SpanView.from_row(status=status, finish_reason=finish, output_text=output,
                                     tool_calls=calls, request_body=body, expect=expect)
            row = [rubrics[n](view) for n in names]
        else:
            # none of the conditional rubrics can apply: skip parsing the JSON
            view = SpanView(status=status or "ok", finish_reason=finish, output_text=output)
            row = [None if n in CONDITIONAL else rubrics[n](view) for n in names]
        span_ids.extend([span_id] * len(names))
        rubric_col.extend(names)
        scores.extend(row)
    return pl.DataFrame({"span_id": span_ids, "rubric": rubric_col, "score": scores},
                        schema=SCORE_SCHEMA)
