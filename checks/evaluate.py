"""evaluate_run: score a loaded run's spans, compute the checks, run the gate.

The one path from a loaded run to its verdict: the nightly flow (after
``warehouse.load_run``, with the scores it loaded: ``score=False``), ``cluster-eval
evaluate`` and the benchmarks that re-judge stored runs all call it. Everything happens
on one warehouse connection (DuckDB allows one writer at a time).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl

from checks.compute import run_checks
from checks.errors import RunNotFound
from checks.gate import GateResult, validate_connection
from checks.rubrics import RUBRICS, Rubric
from checks.rubrics.llm_judge import NAME as JUDGE
from checks.rubrics.llm_judge import LLMJudge
from checks.scoring import score_spans
from checks.thresholds import Thresholds, load_thresholds
from warehouse import opened, write_scores

_SPANS = """
SELECT span_id, status, finish_reason, output_text, tool_calls, request_body, expect
FROM spans
WHERE run_id = $run_id
"""


def rubrics_for(thresholds: Thresholds, environ: Mapping[str, str]) -> dict[str, Rubric]:
    """The registered rubrics, plus the LLM judge when the thresholds enable it."""
    chosen: dict[str, Rubric] = dict(RUBRICS)
    if thresholds.judge.enabled:
        chosen[JUDGE] = LLMJudge.from_config(thresholds.judge, environ)
    return chosen


def _require_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    (found,) = con.execute("SELECT count(*) FROM runs WHERE run_id = $run_id",
                           {"run_id": run_id}).fetchall()
    if not found[0]:
        raise RunNotFound(f"run {run_id!r} is not in the warehouse; load it first")


def score_run(con: duckdb.DuckDBPyConnection, run_id: str,
              rubrics: Mapping[str, Rubric] | None = None) -> int:
    """Score every span of the run into ``scores`` (replacing earlier scores)."""
    _require_run(con, run_id)
    spans = pl.DataFrame(con.sql(_SPANS, params={"run_id": run_id}).to_arrow_table())
    scores = score_spans(spans, rubrics)
    write_scores(con, run_id, scores)
    return spans.height


def judge_run(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds,
              data_docs_dir: str | Path | None = None) -> GateResult:
    """Checks → gate for a scored run, on an open connection."""
    run_checks(con, run_id, thresholds)
    return validate_connection(con, run_id, thresholds, data_docs_dir)


def evaluate_run(
    db_path: str | Path,
    run_id: str,
    thresholds_path: str | Path | None = None,
    data_docs_dir: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    score: bool = True,
) -> GateResult:
    """Score → checks → gate for a run already in the warehouse.

    ``thresholds_path`` defaults to checks/thresholds.yaml; ``environ`` (default
    ``os.environ``) is where the judge's API key variable is looked up, if enabled.
    ``score=False`` judges the scores loaded with the run (the flow scores before it
    loads, so that ``scores.parquet`` is among the run's files).
    """
    if not Path(db_path).exists():
        raise RunNotFound(f"no warehouse at {db_path}: load the run first")
    thresholds = load_thresholds(thresholds_path)
    with opened(db_path) as con:
        if score:
            score_run(con, run_id,
                      rubrics_for(thresholds, os.environ if environ is None else environ))
        else:
            _require_run(con, run_id)
        return judge_run(con, run_id, thresholds, data_docs_dir)
