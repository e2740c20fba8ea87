"""The scenario × check matrix: each fault caught by its own check, nothing else failing."""

from __future__ import annotations

from collections import defaultdict

from checks.compute import CHECKS
from scenarios.runner import ScenarioRun

MARK = {"pass": "pass", "fail": "FAIL", "insufficient": "insuff.", "error": "error"}


def cell(runs: list[ScenarioRun], check: str) -> str:
    """``FAIL 3/3 (-0.21)``: the status of every repetition, how many matched, a value."""
    verdicts = [v for r in runs for v in r.verdicts if v.check == check]
    statuses = sorted({v.status for v in verdicts})
    matched = sum(v.as_expected for v in verdicts)
    observed = [v.observed for v in verdicts if v.observed is not None]
    value = f" ({_fmt(min(observed, key=abs) if statuses == ['pass'] else observed[0])})" \
        if observed else ""
    marks = "/".join(MARK[s] for s in statuses)
    expected = verdicts[0].expected if verdicts else "pass"
    flag = "" if matched == len(verdicts) else " ✗"
    return f"{marks} {matched}/{len(verdicts)}{value}{flag}" + (
        " ◀" if expected == "fail" else "")


def verdict_cell(runs: list[ScenarioRun]) -> str:
    """``FAIL 3/3``: the run verdicts seen and how many matched the expected one."""
    if all(r.expected_verdict is None for r in runs):
        return "n/a"
    seen = "/".join(sorted({r.verdict or "error" for r in runs}))
    matched = sum(r.verdict == r.expected_verdict for r in runs)
    return f"{seen} {matched}/{len(runs)}" + ("" if matched == len(runs) else " ✗")


def _fmt(value: float) -> str:
    return f"{value:+.2f}" if abs(value) < 10 else f"{value:.1f}"


def markdown(runs: list[ScenarioRun]) -> str:
    by_scenario: dict[str, list[ScenarioRun]] = defaultdict(list)
    for run in runs:
        by_scenario[run.scenario].append(run)
    lines = [
        "| scenario | verdict | " + " | ".join(CHECKS) + " | diagonal |",
        "| --- | --- | " + " | ".join("---" for _ in CHECKS) + " | --- |",
    ]
    for name, scenario_runs in by_scenario.items():
        diagonal = sum(r.diagonal for r in scenario_runs)
        lines.append(
            f"| {name} | {verdict_cell(scenario_runs)} | "
            + " | ".join(cell(scenario_runs, c) for c in CHECKS)
            + f" | {diagonal}/{len(scenario_runs)} |"
        )
    lines += [
        "",
        "Each cell: the statuses seen, how many repetitions matched the expectation, and the "
        "observed value behind the verdict (the failing one, or the closest call). ◀ marks "
        "a check expected to FAIL: the one the scenario's fault targets, and any night-level "
        "check the fault breaches by design (its `also_fails` list, e.g. `slo` for a fault "
        "made of timeouts); every other cell expects pass, or insufficient where the "
        "scenario sends no traffic of the kind that check judges (its `not_exercised` "
        "list). ✗ marks a cell that missed its expectation.",
    ]
    unexercised = [r for r in runs if r.unreached]
    if unexercised:
        lines += ["", "Not exercised (never diagonal: the fault reached no replica, so the "
                  "checks had nothing to catch):"]
        lines += [f"- {r.scenario} #{r.repetition}: {'; '.join(r.unreached)}"
                  for r in unexercised]
    return "\n".join(lines) + "\n"


def is_diagonal(runs: list[ScenarioRun]) -> bool:
    return bool(runs) and all(r.diagonal for r in runs)
