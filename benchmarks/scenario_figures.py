"""What each scenario run of a matrix did, beside its verdict.

    .venv/bin/python benchmarks/scenario_figures.py [--out /tmp/cluster-eval-scenarios]

Reads ``<out>/warehouse.duckdb`` as ``benchmarks/scenario_matrix.py`` left it (run
that first); it sends nothing. Per scenario run: replayed spans, timeouts, other
errors, the share answered, ``slo``'s goodput (answered within the per-request SLOs)
and the night's p99 first-token time, contexts evicted and retained with their p50
first-token times (``kv_cache_eviction``'s prefix-reuse buckets), and each tenant's
timed-out share. These are the figures docs/scenarios.md quotes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

FIGURES_SQL = (Path(__file__).with_name("scenario_figures.sql")).read_text()


def cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cluster-eval-scenarios"))
    args = parser.parse_args()
    db = args.out / "warehouse.duckdb"
    if not db.exists():
        raise SystemExit(f"{db}: no matrix warehouse (run benchmarks/scenario_matrix.py)")
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(FIGURES_SQL).fetchall()
        names = [d[0] for d in con.description]
    print("| " + " | ".join(names) + " |")
    print("|" + " --- |" * len(names))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")


if __name__ == "__main__":
    main()
