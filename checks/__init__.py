"""Rubrics (span → score), the cluster checks in SQL, thresholds and the GX gate's verdict.

Public API (imported lazily so ``cluster-eval --help`` never loads GX or DuckDB)::

    evaluate_run(db_path, run_id, thresholds_path=None, data_docs_dir=None) -> GateResult
    score_spans(spans: pl.DataFrame, rubrics=None) -> pl.DataFrame[span_id, rubric, score]
    run_checks(con, run_id, thresholds) -> None
    validate(db_path, run_id, thresholds, data_docs_dir=None) -> GateResult
    load_thresholds(path=None) -> Thresholds
    write_report(db_path, run_id, out_dir, thresholds=None) -> Path   # + timeline.svg, trend.svg
    gather_report(con, run_id, thresholds=None) -> dict  # the data behind the report and artifacts
    rubrics_for(thresholds, environ) -> dict      # the rubrics a run scores with
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Breach": "checks.gate",
    "CHECKS": "checks.compute",
    "ChecksError": "checks.errors",
    "Coverage": "checks.gate",
    "GateResult": "checks.gate",
    "RUBRICS": "checks.rubrics",
    "RunNotFound": "checks.errors",
    "Thresholds": "checks.thresholds",
    "ThresholdsError": "checks.errors",
    "Verdict": "checks.gate",
    "evaluate_run": "checks.evaluate",
    "gather_report": "checks.report",
    "rubrics_for": "checks.evaluate",
    "load_thresholds": "checks.thresholds",
    "run_checks": "checks.compute",
    "score_spans": "checks.scoring",
    "validate": "checks.gate",
    "write_report": "checks.report",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'checks' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return __all__
