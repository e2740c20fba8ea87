"""Run a scenario through the nightly flow and read each check's verdict back.

The scenario changes only what a user could change: the ServeConfigV2 file (applied
by the flow, in place when only ``user_config`` differs), the workload and the flow's
parameters. The verdicts come from the same ``expectation_results`` rows the gate
wrote, so the matrix shows exactly what a nightly run would have said.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from checks.compute import CHECKS
from cluster_eval.settings import PROJECT_ROOT
from flows.errors import RunFailed
from scenarios import targets
from scenarios.model import Scenario

VERDICTS_SQL = (Path(__file__).parent / "sql" / "verdicts.sql").read_text()


@dataclass
class Verdict:
    check: str
    status: str  # pass / fail / insufficient / error
    expected: str  # pass / fail
    bucket: str | None = None
    metric: str | None = None
    observed: float | None = None
    threshold: float | None = None

    @property
    def as_expected(self) -> bool:
        return self.status == self.expected


@dataclass
class ScenarioRun:
    scenario: str
    repetition: int
    run_id: str
    state: str
    message: str
    wall_s: float
    verdicts: list[Verdict]
    verdict: str | None = None           # the run's PASS / FAIL / INVALID (None: errored)
    expected_verdict: str | None = None  # PASS for a healthy scenario, else FAIL
    unreached: list[str] = field(default_factory=list)  # faults no replica answered with

    @property
    def diagonal(self) -> bool:
        """Every check as expected and the run's verdict too; never for a run whose
        fault reached no replica (it tested nothing, whatever the checks said)."""
        checks_right = all(v.as_expected for v in self.verdicts)
        return not self.unreached and checks_right and (
            self.expected_verdict is None or self.verdict == self.expected_verdict)


def expected_status(scenario: Scenario, check: str) -> str:
    """``fail`` for the check the fault targets and the night-level checks it breaches by
    design (``also_fails``); ``insufficient`` for a check the scenario gives no traffic
    to judge (its ``not_exercised`` list); else ``pass``."""
    if scenario.catches == check or check in scenario.also_fails:
        return "fail"
    if check == "history":  # scenario runs have no baseline (run_scenario)
        return "insufficient"
    return "insufficient" if check in scenario.not_exercised else "pass"


def expected_verdict(scenario: Scenario) -> str:
    return "PASS" if scenario.catches is None else "FAIL"


def run_verdict(db: Path, run_id: str) -> str | None:
    from warehouse import opened

    with opened(db) as con:
        rows = con.execute("SELECT verdict FROM runs WHERE run_id = $run_id",
                           {"run_id": run_id}).fetchall()
    return rows[0][0] if rows else None


def upper_bounds(scenario: Scenario) -> list[str]:
    """``check/expectation`` of every rule that is an upper bound under the scenario's
    thresholds (the checks' specs know; verdicts.sql reads it for rows the gate wrote
    before it recorded each row's bound)."""
    from checks.suites import rules
    from checks.thresholds import load_thresholds

    limits = load_thresholds(PROJECT_ROOT / scenario.thresholds if scenario.thresholds
                             else None)
    return [f"{rule.check}/{rule.name}" for rule in rules(limits) if rule.kind == "max"]


def read_verdicts(db: Path, run_id: str, scenario: Scenario) -> list[Verdict]:
    from warehouse import opened

    with opened(db) as con:
        rows = con.execute(VERDICTS_SQL, {"run_id": run_id,
                                          "upper_bounds": upper_bounds(scenario)}).fetchall()
    found = {r[0]: r for r in rows}
    verdicts = []
    for check in CHECKS:
        expected = expected_status(scenario, check)
        if check not in found:
            verdicts.append(Verdict(check, "insufficient", expected))
            continue
        _, status, bucket, metric, observed, threshold = found[check]
        verdicts.append(Verdict(check, status, expected, bucket, metric, observed, threshold))
    return verdicts


def run_scenario(
    scenario: Scenario, repetition: int, *, db: Path, out_dir: Path,
    notification_block: str | None = None,
) -> ScenarioRun:
    """One scenario run: write its serve config (rank-aimed faults aimed at running
    replicas, :mod:`scenarios.targets`), run the flow, read the verdicts and check that
    every fault reached a replica. ``notification_block`` is told of a failed run, as
    the nightly deployment's is."""
    from prefect.client.schemas.objects import State

    from flows.cluster_eval import cluster_eval
    from flows.plan import BurstOptions

    workdir = out_dir / f"{scenario.name}-{repetition}"
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    config = scenario.serve_config(PROJECT_ROOT)
    if targets.needs_aiming(config):
        try:
            config = aim_at_running_replicas(config, workdir)
        except (RunFailed, ValueError) as exc:
            message = f"could not aim the scenario's faults: {exc}"
            return ScenarioRun(scenario.name, repetition, "", "ERRORED", message,
                               time.monotonic() - started, _errored(scenario), None,
                               expected_verdict(scenario))
    config_path = workdir / "serve-config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    params = scenario.flow
    state = cluster_eval(
        serve_config=str(config_path),
        traffic=str(PROJECT_ROOT / scenario.traffic),
        speedup=params.speedup,
        golden_rounds=params.golden_rounds,
        tenant_burst=BurstOptions.model_validate(params.tenant_burst),
        thresholds=str(PROJECT_ROOT / scenario.thresholds) if scenario.thresholds else None,
        # a scenario is a one-night experiment: no baseline, so history is not judged
        # (and says so); the nightly history is proven on the healthy nightly itself
        baseline_key="",
        warehouse=str(db),
        out_dir=str(workdir),
        request_timeout_s=params.request_timeout_s,
        notification_block=notification_block,
        return_state=True,
    )
    wall = time.monotonic() - started
    # Prefect types a flow declared `-> Any` as possibly async; this one runs synchronously
    if not isinstance(state, State):
        raise TypeError(f"the flow returned {type(state).__name__}, not its final State")
    run_id = str(state.state_details.flow_run_id)
    message = state.message or ""
    from flows.cluster_eval import ERRORED

    unreached: list[str] = []
    if state.name == ERRORED:
        verdicts = _errored(scenario)
        verdict = None
    else:
        verdicts = read_verdicts(db, run_id, scenario)
        verdict = run_verdict(db, run_id)
        unreached = targets.unreached(db, run_id, config)
    return ScenarioRun(scenario.name, repetition, run_id, state.type.value, message, wall,
                       verdicts, verdict, expected_verdict(scenario), unreached)


def aim_at_running_replicas(config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Bring the scenario's deployment up without its faults, the way the flow brings
    a stack up, and aim the faults at its running replicas by id."""
    from cluster_eval.settings import get_settings
    from flows.pipeline import deploy

    unfaulted = workdir / "serve-config-without-faults.yaml"
    unfaulted.write_text(yaml.safe_dump(targets.without_faults(config), sort_keys=False))
    return targets.aim_by_id(config, deploy(unfaulted, get_settings(), timeout_s=600).replica_ids)


def _errored(scenario: Scenario) -> list[Verdict]:
    return [Verdict(c, "error", expected_status(scenario, c)) for c in CHECKS]


def record(db: Path, runs: list[ScenarioRun]) -> None:
    """Write the runs' verdicts to ``scenario_results`` (replacing earlier rows of a run)."""
    from warehouse import opened

    now = datetime.now(UTC)
    with opened(db) as con:
        con.begin()
        for run in runs:
            con.execute("DELETE FROM scenario_results WHERE run_id = $run_id",
                        {"run_id": run.run_id})
            for v in run.verdicts:
                con.execute(
                    """
                    INSERT INTO scenario_results (run_id, scenario, "check", status, observed,
                        repetition, expected, bucket, metric, threshold, recorded_at)
                    VALUES ($run_id, $scenario, $check, $status, $observed, $repetition,
                            $expected, $bucket, $metric, $threshold, $recorded_at)
                    """,
                    {"run_id": run.run_id, "scenario": run.scenario, "check": v.check,
                     "status": v.status, "observed": v.observed, "repetition": run.repetition,
                     "expected": v.expected, "bucket": v.bucket, "metric": v.metric,
                     "threshold": v.threshold, "recorded_at": now},
                )
        con.commit()
