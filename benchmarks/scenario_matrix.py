"""The fault-injection matrix on this machine: every scenario, N repetitions each.

    .venv/bin/python benchmarks/scenario_matrix.py [--repetitions 3] [NAME ...]

Prints, per scenario run, the verdict of each check, then the scenario × check
matrix with repetition counts (also written to <out>/matrix.md and to the
``scenario_results`` table). Expect ~2-4 minutes per scenario run on 2 cores; the
KV-pressure scenario restarts the replicas twice (its cache size is an engine arg).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scenarios.matrix import is_diagonal, markdown
from scenarios.model import catalog
from scenarios.runner import record, run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cluster-eval-scenarios"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "warehouse.duckdb"
    runs = []
    started = time.monotonic()
    for repetition in range(1, args.repetitions + 1):  # interleaved: drift over time hits all
        for scenario in catalog(args.names or None):
            run = run_scenario(scenario, repetition, db=db, out_dir=args.out)
            record(db, [run])
            runs.append(run)
            print(f"{scenario.name} #{repetition}: {run.state} in {run.wall_s:.0f} s — "
                  + ", ".join(f"{v.check}={v.status}" for v in run.verdicts), flush=True)
    table = markdown(runs)
    (args.out / "matrix.md").write_text(table)
    print()
    print(table)
    print(f"runs: {len(runs)}, wall: {(time.monotonic() - started) / 60:.1f} min, "
          f"diagonal: {'yes' if is_diagonal(runs) else 'no'}")


if __name__ == "__main__":
    main()
