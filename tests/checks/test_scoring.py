"""score_spans: long form, one row per span and rubric, null where not applicable."""

from __future__ import annotations

import polars as pl

from checks.rubrics import RUBRIC_NAMES
from checks.scoring import score_spans


def test_score_spans_long_form(make_span):
    spans = pl.DataFrame([
        make_span("plain"),
        make_span("ref", output_text="Paris", expect={"reference": "Paris"}),
        make_span("dead", status="timeout", output_text=None, finish_reason=None,
                  expect={"reference": "Paris"}),
    ])
    scores = score_spans(spans)
    assert scores.columns == ["span_id", "rubric", "score"]
    assert scores.height == 3 * len(RUBRIC_NAMES)
    got = {(r["span_id"], r["rubric"]): r["score"] for r in scores.iter_rows(named=True)}
    assert got[("plain", "completion")] == 1.0
    assert got[("plain", "reference_match")] is None
    assert got[("ref", "reference_match")] == 1.0
    assert got[("dead", "reference_match")] == 0.0
    assert got[("dead", "completion")] == 0.0
    assert got[("dead", "groundedness")] is None


def test_score_spans_takes_a_pyarrow_table(make_span):
    table = pl.DataFrame([make_span("a"), make_span("b", status="timeout")]).to_arrow()
    scores = score_spans(table).filter(pl.col("rubric") == "completion")
    assert scores["score"].to_list() == [1.0, 0.0]


def test_score_spans_accepts_extra_rubrics_and_missing_columns():
    spans = pl.DataFrame({"span_id": ["a"], "status": ["ok"], "finish_reason": ["stop"],
                          "output_text": ["hello"]})
    scores = score_spans(spans, {"completion": lambda s: 1.0, "length": lambda s: 0.5})
    assert sorted(scores["rubric"].to_list()) == ["completion", "length"]
    assert scores.filter(pl.col("rubric") == "length")["score"].item() == 0.5
