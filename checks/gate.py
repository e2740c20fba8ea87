"""The gate: validate a run's check tables with Great Expectations, give the verdict.

GX has no working DuckDB datasource, so each check's rows (its ``check_<name>`` view of
``check_buckets``) are queried into pandas and validated as a dataframe. Each registered
check (checks/registry.py) gets one suite, built from its spec's rules:
a sample-size expectation (``insufficient`` is false) and its metric rules over
the buckets with enough spans. Results go to ``expectation_results``, one row per
(check, bucket, expectation).

The verdict (docs/checks.md, "The verdict"), decided in this order:

* ``INVALID`` when a measurement flaw can have *made* the failures: other work took
  the CPU of a host the cluster shares (``measurement``, ``host_cpu``) and something
  else breached, which is then listed as not trusted (with nothing else breached, the
  night passed despite it, and the PASS message says so);
* ``FAIL`` when the night as a whole breached (``slo``, ``history``): those hold
  whatever the measurement's other flaws, which can only have hidden load, not made it;
* ``INVALID`` when the measurement breached (``measurement``): spans lost, the
  replay behind its schedule, telemetry gaps, no replica ids. A bucket check's
  breach is not trusted then, and is listed as such;
* ``FAIL`` when a bucket check breached, or (``fail_on_insufficient``) a bucket
  was too thin;
* ``PASS`` otherwise.

Every verdict lists each check as judged or not judged, with the reason: coverage
is part of the result, and an insufficient bucket never reads as a pass.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from pydantic import BaseModel, computed_field

from checks import registry
from checks.baseline import BaselineStatus, baseline_status
from checks.suites import Rule, rules
from checks.thresholds import Thresholds
from warehouse.schema import opened, transaction

SUFFICIENT = "sufficient_samples"


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INVALID = "INVALID"


class Breach(BaseModel):
    check: str
    bucket: str | None
    metric: str
    observed: float | None
    threshold: float | None
    message: str
    confounds: bool = False  # it can have caused the other breaches (Rule.confounds)


class Coverage(BaseModel):
    """Whether a check was judged this night, and if not, why not."""

    check: str
    judged: bool
    reason: str | None = None
    breaches: int = 0


class GateResult(BaseModel):
    verdict: Verdict
    message: str
    breaches: list[Breach]
    insufficient: list[Breach]
    coverage: list[Coverage] = []
    baseline: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


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
            meta={"rule": rule.name}))
    return suite


def _gx_name(text: str) -> str:
    """A run id as GX accepts it in asset and definition names (no '/', ...)."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", text)


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
        if check == "history":  # no accepted baseline: coverage says why, nothing is thin
            return rows, breaches, short
        short.append(Breach(check=check, bucket=None, metric="n", observed=0,
                            threshold=thresholds.min_samples,
                            message=f"{check}: no buckets at all (no spans of the kind it needs)"))
        rows.append((run_id, check, None, SUFFICIENT, 0.0, thresholds.min_samples, False,
                     "min"))
        return rows, breaches, short
    for rec in frame.to_dict("records"):
        ok = not rec["insufficient"]
        # a check that needs more than min_samples says so in its row (required_n,
        # insufficient_reason); the others are short of min_samples spans
        required = rec.get("required_n")
        required = thresholds.min_samples if required is None or pd.isna(required) \
            else int(required)
        reason = rec.get("insufficient_reason")
        if not isinstance(reason, str):
            reason = f"has {rec['n']} spans, fewer than the minimum {required}"
        rows.append((run_id, check, rec["bucket"], SUFFICIENT, float(rec["n"]),
                     float(required), ok, "min"))
        if not ok:
            short.append(Breach(
                check=check, bucket=rec["bucket"], metric="n", observed=float(rec["n"]),
                threshold=float(required),
                message=f"{check}: bucket '{rec['bucket']}' {reason} (insufficient)"))
    for rule in check_rules:
        failed = _failed_buckets(results[rule.name])
        evaluated = _judged(frame, rule)
        for rec in evaluated.to_dict("records"):
            observed = rec[rule.metric]
            observed = None if pd.isna(observed) else float(observed)
            bad = rec["bucket"] in failed
            threshold = rule.bound(observed)
            # a null metric (e.g. no reference) was not judged: success stays null
            rows.append((run_id, check, rec["bucket"], rule.name, observed, threshold,
                         None if observed is None else not bad, rule.kind))
            if bad:
                breaches.append(Breach(check=check, bucket=rec["bucket"], metric=rule.name,
                                       observed=observed, threshold=threshold,
                                       message=f"{check}: {rule.message(rec)}",
                                       confounds=rule.confounds))
    return rows, breaches, short


def _coverage(check: str, frame: pd.DataFrame, check_rules: list[Rule],
              breaches: list[Breach], baseline: BaselineStatus) -> Coverage:
    """Judged when at least one rule looked at a non-null value of a sufficient row."""
    found = sum(1 for b in breaches if b.check == check)
    if check == "history" and (baseline.key is None or baseline.establishing):
        return Coverage(check=check, judged=False, reason=baseline.describe())
    if frame.empty:
        return Coverage(check=check, judged=False, reason="no spans of the kind it needs")
    judged = any(_judged(frame, rule)[rule.metric].notna().any() for rule in check_rules)
    if judged:
        return Coverage(check=check, judged=True, breaches=found)
    thin = frame[frame["insufficient"]]
    return Coverage(check=check, judged=False,
                    reason=f"every bucket below min_samples ({len(thin)} of {len(frame)} thin)"
                    if len(thin) else "nothing to judge")


def _verdict(breaches: list[Breach], short: list[Breach], thresholds: Thresholds) -> Verdict:
    # a flaw that can have made the failures (Rule.confounds) decides only when there
    # are failures to explain: a night that passed under it passed
    explained = [b for b in breaches if not b.confounds]
    if len(explained) < len(breaches) and (
            explained or (short and thresholds.fail_on_insufficient)):
        return Verdict.INVALID
    breaches = explained
    roles = {registry.role(b.check) for b in breaches}
    if "night" in roles:
        return Verdict.FAIL
    if "measurement" in roles:
        return Verdict.INVALID
    if breaches or (short and thresholds.fail_on_insufficient):
        return Verdict.FAIL
    return Verdict.PASS


_ORDER = {"night": 0, "bucket": 1, "measurement": 2}


def _rank(breach: Breach) -> tuple[int, int]:
    return _ORDER[registry.role(breach.check)], registry.names().index(breach.check)


def _few(names: list[str], most: int = 6) -> str:
    """Names, or the first few of many and how many more."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join(names[:most]) + f" and {len(names) - most} more"


def _message(run_id: str, verdict: Verdict, breaches: list[Breach], short: list[Breach],
             coverage: list[Coverage], baseline: BaselineStatus,
             fail_on_insufficient: bool) -> str:
    """One paragraph: the verdict, what broke (the night first), then coverage."""
    ordered = sorted(breaches, key=_rank)
    judged = [c.check for c in coverage if c.judged]
    if verdict is Verdict.PASS:
        text = f"PASS: run {run_id} passed every judged check ({', '.join(judged)})."
        if confounding := [b for b in ordered if b.confounds]:
            text += (" It passed although " + "; ".join(
                b.message.removeprefix("measurement: ") for b in confounding) + ".")
    elif verdict is Verdict.INVALID:
        problems = [b for b in ordered if registry.role(b.check) == "measurement"]
        text = (f"INVALID: run {run_id} cannot be judged, its measurement is not "
                f"trustworthy: " + "; ".join(b.message.removeprefix("measurement: ")
                                             for b in problems) + ".")
        untrusted = [b for b in ordered if registry.role(b.check) != "measurement"]
        if untrusted:
            text += (" Not trusted under this measurement: "
                     + "; ".join(b.message for b in untrusted) + ".")
    elif breaches:
        text = f"FAIL: run {run_id} failed the gate: " + "; ".join(
            b.message for b in ordered) + "."
    else:
        text = f"FAIL: run {run_id} failed the gate on insufficient samples."
    not_judged = [c for c in coverage if not c.judged]
    if not_judged:
        text += " Not judged: " + "; ".join(f"{c.check} ({c.reason})" for c in not_judged) + "."
    if per_check := _thin(short):
        verdict_word = "failing the gate" if fail_on_insufficient else "not judged"
        text += (f" Insufficient buckets ({verdict_word}): "
                 + "; ".join(f"{check}: {_few(buckets)}"
                             for check, buckets in per_check.items()) + ".")
    if any(c.check == "history" and c.judged for c in coverage):
        text += f" Judged against the {baseline.describe().removeprefix('baseline: ')}."
    return text


def _thin(short: list[Breach]) -> dict[str, list[str]]:
    """Insufficient buckets per check; a check with no rows at all is left to its
    coverage line."""
    per_check: dict[str, list[str]] = {}
    for s in short:
        if s.bucket is not None:
            per_check.setdefault(s.check, []).append(s.bucket)
    return per_check


def validate_connection(con: duckdb.DuckDBPyConnection, run_id: str, thresholds: Thresholds,
                        data_docs_dir: str | Path | None = None) -> GateResult:
    """Validate the check tables of ``run_id`` on an open warehouse connection, record
    ``expectation_results`` and the run's verdict."""
    import great_expectations as gx

    all_rules = rules(thresholds)
    baseline = baseline_status(con, run_id, thresholds.history.nights)
    records: list[tuple] = []
    breaches: list[Breach] = []
    short: list[Breach] = []
    coverage: list[Coverage] = []
    with _gx_context(Path(data_docs_dir) if data_docs_dir else None) as context:
        source = context.data_sources.add_pandas("warehouse")
        for check in registry.names():
            frame = con.execute(
                # identifier from a registered spec; the run id is bound
                f'SELECT * FROM "check_{check}" WHERE run_id = $run_id ORDER BY bucket',
                {"run_id": run_id}).df()
            check_rules = [r for r in all_rules if r.check == check]
            results: dict[str, Any] = {}
            if not frame.empty:
                batch = source.add_dataframe_asset(f"check_{check}") \
                    .add_batch_definition_whole_dataframe(_gx_name(run_id))
                suite = context.suites.add(_suite(gx, check, check_rules))
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{check}:{_gx_name(run_id)}", data=batch,
                                            suite=suite))
                outcome = definition.run(
                    batch_parameters={"dataframe": frame},
                    result_format={"result_format": "COMPLETE",
                                   "unexpected_index_column_names": ["bucket"]})
                results = {r.expectation_config.meta["rule"]: r for r in outcome.results}
            rows, found, few = _records(run_id, check, frame, check_rules, results, thresholds)
            records += rows
            breaches += found
            short += few
            coverage.append(_coverage(check, frame, check_rules, found, baseline))
        if data_docs_dir is not None:
            context.build_data_docs()
    verdict = _verdict(breaches, short, thresholds)
    breaches.sort(key=_rank)  # the night first, as the message tells them
    with transaction(con):
        con.execute("DELETE FROM expectation_results WHERE run_id = $run_id", {"run_id": run_id})
        con.executemany("INSERT INTO expectation_results VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?)", records)
        con.execute("UPDATE runs SET verdict = $verdict, status = 'judged' "
                    "WHERE run_id = $run_id",
                    {"verdict": verdict.value, "run_id": run_id})
    message = _message(run_id, verdict, breaches, short, coverage, baseline,
                       thresholds.fail_on_insufficient)
    return GateResult(verdict=verdict, message=message, breaches=breaches, insufficient=short,
                      coverage=coverage, baseline=baseline.describe())


def validate(db_path: str | Path, run_id: str, thresholds: Thresholds,
             data_docs_dir: str | Path | None = None) -> GateResult:
    """Validate a run's check tables (already computed) and record expectation_results."""
    with opened(db_path) as con:
        return validate_connection(con, run_id, thresholds, data_docs_dir)


__all__ = ["Breach", "Coverage", "GateResult", "Verdict", "validate", "validate_connection"]
