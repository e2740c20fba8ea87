"""The gate: validate a run's check tables with Great Expectations, explain breaches.

GX has no working DuckDB datasource, so each ``check_<name>`` table is queried into
pandas and validated as a dataframe. Each check gets one suite (checks/suites.py):
a sample-size expectation (``insufficient`` is false) and its metric rules over
the buckets with enough spans. Results go to ``expectation_results``, one row per
(check, bucket, expectation).

Insufficient buckets are never passes: they are listed in the message as
insufficient and fail the gate only when ``fail_on_insufficient`` is set. A check
with no rows at all (e.g. no pinned traffic this run) counts as insufficient too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from pydantic import BaseModel

from checks.compute import CHECKS
from checks.suites import Rule, rules
from checks.thresholds import Thresholds
from warehouse.schema import opened, transaction

SUFFICIENT = "sufficient_samples"


class Breach(BaseModel):
    check: str
    bucket: str | None
    metric: str
    observed: float | None
    threshold: float | None
    message: str


class GateResult(BaseModel):
    passed: bool
    message: str
    breaches: list[Breach]
    insufficient: list[Breach]


@contextmanager
def _gx_context(data_docs_dir: Path | None) -> Iterator[Any]:
    """A file context on a temporary copy of checks/gx; Data Docs go to data_docs_dir."""
    import great_expectations as gx

    with tempfile.TemporaryDirectory(prefix="cluster-eval-gx-") as tmp:
        root = Path(tmp)
        template = resources.files("checks") / "gx" / "great_expectations.yml"
        (root / "gx").mkdir()
        (root / "gx" / "great_expectations.yml").write_text(template.read_text())
        context = gx.get_context(mode="file", project_root_dir=str(root))
        if data_docs_dir is not None:
            site: Any = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                      "base_directory": str(Path(data_docs_dir).resolve())},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
            context.update_data_docs_site("local_site", site)
        yield context


def _row_condition(rule: Rule) -> Any:
    from great_expectations.expectations.row_conditions import Column

    conditions = [Column(column) == value for column, value in rule.where]
    conditions += [Column("bucket") != bucket for bucket in rule.skip_buckets]
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined & condition
    return combined


def _judged(frame: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """The rows a rule's expectation looks at (the same filter as its row condition)."""
    mask = pd.Series(True, index=frame.index)
    for column, value in rule.where:
        mask &= frame[column] == value
    mask &= ~frame["bucket"].isin(rule.skip_buckets)
    return frame[mask]


def _suite(gx: Any, check: str, check_rules: list[Rule]) -> Any:
    suite = gx.ExpectationSuite(name=f"check_{check}")
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(
        column="insufficient", value_set=[False], meta={"rule": SUFFICIENT}))
    for rule in check_rules:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(
            column=rule.metric, min_value=rule.min_value, max_value=rule.max_value,
            row_condition=_row_condition(rule),
            meta={"rule": rule.metric}))
    return suite


def _failed_buckets(result: Any) -> set[str]:
    return {row["bucket"] for row in result.result.get("unexpected_index_list") or []}


def _records(run_id: str, check: str, frame: pd.DataFrame, check_rules: list[Rule],
             results: dict[str, Any], thresholds: Thresholds
             ) -> tuple[list[tuple], list[Breach], list[Breach]]:
    """expectation_results rows, breaches and insufficient buckets of one check."""
    rows: list[tuple] = []
    breaches: list[Breach] = []
    short: list[Breach] = []
    if frame.empty:
        short.append(Breach(check=check, bucket=None, metric="n", observed=0,
                            threshold=thresholds.min_samples,
                            message=f"{check}: no buckets at all (no spans of the kind it needs)"))
        rows.append((run_id, check, None, SUFFICIENT, 0.0, thresholds.min_samples, False))
        return rows, breaches, short
    for rec in frame.to_dict("records"):
        ok = not rec["insufficient"]
        rows.append((run_id, check, rec["bucket"], SUFFICIENT, float(rec["n"]),
                     float(thresholds.min_samples), ok))
        if not ok:
            short.append(Breach(
                check=check, bucket=rec["bucket"], metric="n", observed=float(rec["n"]),
                threshold=float(thresholds.min_samples),
                message=f"{check}: bucket '{rec['bucket']}' has {rec['n']} spans, fewer than "
                        f"the minimum {thresholds.min_samples} (insufficient)"))
    for rule in check_rules:
        failed = _failed_buckets(results[rule.metric])
        evaluated = _judged(frame, rule)
        for rec in evaluated.to_dict("records"):
            observed = rec[rule.metric]
            observed = None if pd.isna(observed) else float(observed)
            bad = rec["bucket"] in failed
            threshold = rule.bound(observed)
            # a null metric (e.g. no reference) was not judged: success stays null
            rows.append((run_id, check, rec["bucket"], rule.metric, observed, threshold,
                         None if observed is None else not bad))
            if bad:
                breaches.append(Breach(check=check, bucket=rec["bucket"], metric=rule.metric,
                                       observed=observed, threshold=threshold,
                                       message=f"{check}: {rule.describe(rec, rule.allowed)}"))
    return rows, breaches, short


def _message(run_id: str, passed: bool, breaches: list[Breach], short: list[Breach],
             fail_on_insufficient: bool) -> str:
    if breaches:
        text = f"Run {run_id} failed the gate: " + "; ".join(b.message for b in breaches) + "."
    elif passed:
        text = f"Run {run_id} passed all five cluster checks."
    else:
        text = f"Run {run_id} failed the gate on insufficient samples."
    if short:
        verdict = "failing the gate" if fail_on_insufficient else "not judged"
        text += (f" Insufficient ({verdict}): " + "; ".join(s.message for s in short) + ".")
    return text


def validate_connection(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds,
                        data_docs_dir: str | Path | None = None) -> GateResult:
    """Validate the check tables of ``run_id`` on an open warehouse connection."""
    import great_expectations as gx

    all_rules = rules(thresholds)
    records: list[tuple] = []
    breaches: list[Breach] = []
    short: list[Breach] = []
    with _gx_context(Path(data_docs_dir) if data_docs_dir else None) as context:
        source = context.data_sources.add_pandas("warehouse")
        for check in CHECKS:
            frame = con.execute(
                # identifier from the fixed CHECKS tuple; the run id is bound
                f'SELECT * FROM "check_{check}" WHERE run_id = $run_id ORDER BY bucket',
                {"run_id": run_id}).df()
            check_rules = [r for r in all_rules if r.check == check]
            results: dict[str, Any] = {}
            if not frame.empty:
                batch = source.add_dataframe_asset(f"check_{check}") \
                    .add_batch_definition_whole_dataframe(run_id)
                suite = context.suites.add(_suite(gx, check, check_rules))
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{check}:{run_id}", data=batch, suite=suite))
                outcome = definition.run(
                    batch_parameters={"dataframe": frame},
                    result_format={"result_format": "COMPLETE",
                                   "unexpected_index_column_names": ["bucket"]})
                results = {r.expectation_config.meta["rule"]: r for r in outcome.results}
            rows, found, few = _records(run_id, check, frame, check_rules, results, thresholds)
            records += rows
            breaches += found
            short += few
        if data_docs_dir is not None:
            context.build_data_docs()
    passed = not breaches and not (short and thresholds.fail_on_insufficient)
    with transaction(con):
        con.execute("DELETE FROM expectation_results WHERE run_id = $run_id", {"run_id": run_id})
        con.executemany("INSERT INTO expectation_results VALUES (?, ?, ?, ?, ?, ?, ?)", records)
    message = _message(run_id, passed, breaches, short, thresholds.fail_on_insufficient)
    return GateResult(passed=passed, message=message, breaches=breaches, insufficient=short)


def validate(db_path: str | Path, run_id: str, thresholds: Thresholds,
             data_docs_dir: str | Path | None = None) -> GateResult:
    """Validate a run's check tables (already computed) and record expectation_results."""
    with opened(db_path) as con:
        return validate_connection(con, run_id, thresholds, data_docs_dir)


__all__ = ["Breach", "GateResult", "validate", "validate_connection"]
