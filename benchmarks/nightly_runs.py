"""Wall time and served rate of the nightly runs in a warehouse.

    .venv/bin/python benchmarks/nightly_runs.py [--warehouse FILE] [--last N]

Run `make demo` (or any nightly) first; this reads the warehouse, it sends nothing.
Per run: wall time, spans by outcome, the replayed requests' p99 latency and TTFT,
and the rate the cluster answered at while the replay ran
(ok answers ÷ time from first send to last answer).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from cluster_eval.settings import get_settings

RUNS_SQL = (Path(__file__).with_name("nightly_runs.sql")).read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, default=get_settings().warehouse_path)
    parser.add_argument("--last", type=int, default=5)
    args = parser.parse_args()
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        rows = con.execute(RUNS_SQL, {"last": args.last}).fetchall()
        names = [d[0] for d in con.description]
    print(" | ".join(names))
    for row in rows:
        print(" | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))


if __name__ == "__main__":
    main()
