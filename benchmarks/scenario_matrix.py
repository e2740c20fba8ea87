"""The fault-injection matrix on this machine: every scenario, N repetitions each.

    .venv/bin/python benchmarks/scenario_matrix.py [--repetitions 3] [NAME ...]
    .venv/bin/python benchmarks/scenario_matrix.py --rejudge --out DIR   # no stack

Prints, per scenario run, the verdict of each check, then the scenario × check
matrix with repetition counts (also written to <out>/matrix.md and to the
``scenario_results`` table). Expect ~2-4 minutes per scenario run on 2 cores; the
KV-pressure scenario restarts the replicas twice (its cache size is an engine arg).

Runs accumulate in <out>/warehouse.duckdb: new repetitions continue the numbering
of the runs already recorded there, so a matrix can be run in pieces (one repetition
a night, say) and ``--rejudge`` then prints the matrix of all of them.

``--rejudge`` runs no traffic: it scores, checks and gates again every scenario run
recorded in <out>/warehouse.duckdb with the current code and each scenario's
thresholds file, and prints the matrix from those verdicts. A check or threshold
change is judged against the same recorded nights, which is how thresholds should
be re-derived (docs/scenarios.md).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from checks.evaluate import evaluate_run
from cluster_eval.cli import no_usage_reports
from cluster_eval.settings import PROJECT_ROOT
from scenarios.matrix import is_diagonal, markdown
from scenarios.model import catalog
from scenarios.runner import (
    ScenarioRun,
    expected_verdict,
    read_verdicts,
    record,
    run_scenario,
)
from scenarios.targets import unreached
from warehouse import opened


def rejudge(db: Path) -> list[ScenarioRun]:
    """Every recorded scenario run, judged again by the current checks."""
    with opened(db) as con:
        recorded = con.execute(
            "SELECT DISTINCT r.run_id, r.scenario, r.repetition, runs.status, runs.started_at "
            "FROM scenario_results AS r JOIN runs USING (run_id) "
            "ORDER BY r.repetition, runs.started_at").fetchall()
    scenarios = {s.name: s for s in catalog()}
    runs = []
    for run_id, name, repetition, status, _ in recorded:
        scenario = scenarios[name]
        thresholds = PROJECT_ROOT / scenario.thresholds if scenario.thresholds else None
        gate = evaluate_run(db, run_id, thresholds)
        runs.append(ScenarioRun(name, repetition, run_id, status or "", gate.message, 0.0,
                                read_verdicts(db, run_id, scenario), gate.verdict.value,
                                expected_verdict(scenario),
                                unreached(db, run_id, scenario.serve_config(PROJECT_ROOT))))
    return runs


def last_repetition(db: Path) -> int:
    """The highest repetition recorded in the warehouse (0 for a new one)."""
    with opened(db) as con:
        (last,) = con.execute(
            "SELECT coalesce(max(repetition), 0) FROM scenario_results").fetchone() or (0,)
    return int(last)


def main() -> None:
    no_usage_reports(os.environ)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cluster-eval-scenarios"))
    parser.add_argument("--rejudge", action="store_true",
                        help="judge the runs recorded in <out> again; send no traffic")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "warehouse.duckdb"
    runs = []
    started = time.monotonic()
    first = last_repetition(db) + 1
    repetitions = range(first, first + args.repetitions)
    if args.rejudge:
        runs, repetitions = rejudge(db), range(0)
        record(db, runs)
    for repetition in repetitions:  # interleaved: drift over time hits all
        for scenario in catalog(args.names or None):
            run = run_scenario(scenario, repetition, db=db, out_dir=args.out)
            record(db, [run])
            runs.append(run)
            print(f"{scenario.name} #{repetition}: {run.verdict or run.state} in "
                  f"{run.wall_s:.0f} s — "
                  + ", ".join(f"{v.check}={v.status}" for v in run.verdicts)
                  + "".join(f" — NOT EXERCISED: {u}" for u in run.unreached), flush=True)
    table = markdown(runs)
    (args.out / "matrix.md").write_text(table)
    print()
    print(table)
    print(f"runs: {len(runs)}, wall: {(time.monotonic() - started) / 60:.1f} min, "
          f"diagonal: {'yes' if is_diagonal(runs) else 'no'}")


if __name__ == "__main__":
    main()
