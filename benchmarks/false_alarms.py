"""False alarms on healthy nights: run the default nightly N times and count verdicts.

    .venv/bin/python benchmarks/false_alarms.py --runs 5 --warehouse /tmp/fa/warehouse.duckdb
    .venv/bin/python benchmarks/false_alarms.py --runs 0 --warehouse FILE   # judge only
    .venv/bin/python benchmarks/false_alarms.py --runs 0 --rejudge --warehouse COPY

``--rejudge`` judges the recorded nights again with the code as it is now (checks and
gate, night by night in the order they ran, so the baseline of each is what the new
verdicts make it): how a change to a rule would have judged the same nights. It
rewrites the verdicts of the file it is given: point it at a copy.

Every run goes through the command line a user runs (``cluster-eval run``, the
shipped Serve config, workload, thresholds and baseline key), one after the other,
into one warehouse, so the history baseline builds up as it does in production: the
first ``history.nights`` passing nights establish it, the later ones are judged
against it. On a healthy cluster every verdict but PASS is a false alarm; the script
prints each run's verdict, what it was judged on and what breached, then the count,
then per tenant how close the nights came to a tenant_fairness latency breach (its
rank test and tail ratio).

It then measures the like-with-like choice (docs/checks.md) on the same nights: the
bucket checks' quality rules are re-run with three definitions of the quality they
compare (raw, adjusted for request class only, adjusted for class x size quartile as
shipped) and the breaches each would have raised are counted. Nothing is kept: that
part runs in a transaction that is rolled back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from checks.compute import BUCKET_CHECKS, assign_buckets, prepare, run_facts, write_check
from checks.gate import _judged
from checks.suites import rules
from checks.thresholds import load_thresholds
from cluster_eval.settings import PROJECT_ROOT
from warehouse import opened

QUALITY_RULES = ("delta_mean_upper", "delta_p05")
VARIANTS = {
    "raw quality": "quality",
    "request class": "quality - avg(quality) OVER (PARTITION BY request_class)"
                     " + avg(quality) OVER ()",
    "class x size (shipped)": "adjusted_quality",
}


def run_nights(count: int, warehouse: Path, out_dir: Path) -> None:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    cli = str(Path(sys.executable).with_name("cluster-eval"))
    for night in range(1, count + 1):
        started = time.monotonic()
        done = subprocess.run([cli, "run", "--warehouse", str(warehouse),
                               "--out-dir", str(out_dir)],
                              env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
        print(f"night {night}: exit {done.returncode} in {time.monotonic() - started:.0f} s",
              flush=True)


def verdicts(warehouse: Path) -> list[tuple]:
    with opened(warehouse, read_only=True) as con:
        return con.execute(
            """
            SELECT r.run_id, r.started_at, r.verdict,
                   list(DISTINCT e."check" || ':' || e.bucket || ':' || e.expectation)
                     FILTER (WHERE NOT e.success AND e.expectation <> 'sufficient_samples'),
                   bool_or(e."check" = 'history' AND e.success IS NOT NULL) AS history_judged
            FROM runs AS r
            LEFT JOIN expectation_results AS e USING (run_id)
            WHERE r.verdict IS NOT NULL
            GROUP BY ALL
            ORDER BY r.started_at
            """).fetchall()


def tenant_closest_calls(warehouse: Path) -> list[tuple]:
    """Per sufficient tenant over the nights: the tenant rule's rank test and tail ratio
    (how close a healthy night came to a tenant_fairness latency breach)."""
    with opened(warehouse, read_only=True) as con:
        return con.execute(
            """
            SELECT t.bucket, count(*) AS nights,
                   min(t.p_slower), max(t.p_slower), min(t.slower_z), max(t.slower_z),
                   count(*) FILTER (WHERE t.measurably_slower),
                   min(t.tail_latency_ratio), max(t.tail_latency_ratio)
            FROM check_tenant_fairness AS t
            JOIN runs AS r USING (run_id)
            WHERE r.verdict IS NOT NULL AND NOT t.insufficient
            GROUP BY t.bucket
            ORDER BY t.bucket
            """).fetchall()


def rejudge(warehouse: Path) -> None:
    """Checks and gate again on every judged night, oldest first, with today's code."""
    from checks.compute import run_checks
    from checks.gate import validate_connection

    thresholds = load_thresholds(None)
    with opened(warehouse) as con:
        nights = con.execute("SELECT run_id FROM runs WHERE verdict IS NOT NULL "
                             "ORDER BY started_at").fetchall()
        for (run_id,) in nights:
            run_checks(con, run_id, thresholds)
            validate_connection(con, run_id, thresholds)


def quality_breaches(warehouse: Path, run_id: str, definition: str) -> list[str]:
    """The bucket checks' quality-rule breaches with ``definition`` as the compared quality."""
    thresholds = load_thresholds(None)
    judged_rules = [r for r in rules(thresholds)
                    if r.check in BUCKET_CHECKS and r.metric in QUALITY_RULES]
    found: list[str] = []
    with opened(warehouse) as con:
        con.begin()
        try:
            prepare(con, run_id)
            # the expression is one of VARIANTS above, never input
            con.execute("CREATE OR REPLACE TEMP TABLE span_quality AS SELECT * REPLACE "
                        f"({definition} AS adjusted_quality) FROM span_quality")
            facts = run_facts(con, run_id, thresholds)
            assign_buckets(con, run_id, thresholds, facts["max_replicas"])
            for check in BUCKET_CHECKS:
                write_check(con, check, run_id, thresholds, facts)
                frame = con.execute(f'SELECT * FROM "check_{check}" WHERE run_id = $run_id',
                                    {"run_id": run_id}).df()
                for rule in (r for r in judged_rules if r.check == check):
                    for row in _judged(frame, rule).to_dict("records"):
                        value = row[rule.metric]
                        low = rule.min_value is not None and value < rule.min_value
                        high = rule.max_value is not None and value > rule.max_value
                        if value == value and (low or high):  # NaN: not judged
                            found.append(f"{check}:{row['bucket']}:{rule.metric}")
        finally:
            con.rollback()
    return found


def _span(lo: float | None, hi: float | None, digits: int = 2) -> str:
    return "—" if lo is None or hi is None else f"{lo:.{digits}f} to {hi:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--rejudge", action="store_true",
                        help="judge the recorded nights again with today's code (a copy!)")
    args = parser.parse_args()
    out_dir = args.out_dir or args.warehouse.parent / "runs"
    run_nights(args.runs, args.warehouse, out_dir)
    if args.rejudge:
        rejudge(args.warehouse)
    rows = verdicts(args.warehouse)
    print("\n| night | verdict | history judged | breaches |\n| --- | --- | --- | --- |")
    for k, (run_id, _, verdict, breached, history) in enumerate(rows, 1):
        print(f"| {k} `{run_id[:8]}` | {verdict} | {'yes' if history else 'no'} | "
              f"{', '.join(breached or []) or '—'} |")
    alarms = sum(v != "PASS" for _, _, v, _, _ in rows)
    judged = sum(bool(h) for *_, h in rows)
    print(f"\nhealthy nights: {len(rows)}, false alarms (verdict not PASS): {alarms}, "
          f"nights judged against the history baseline: {judged}")
    print("\n| tenant | nights | p_slower | rank z | measurably slower | tail ratio |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for tenant, n, p_lo, p_hi, z_lo, z_hi, slower, r_lo, r_hi in tenant_closest_calls(
            args.warehouse):
        print(f"| {tenant} | {n} | {_span(p_lo, p_hi)} | {_span(z_lo, z_hi, 1)} | "
              f"{slower} | {_span(r_lo, r_hi)} |")
    print("\n| quality compared | bucket-check quality breaches over these nights |")
    print("| --- | --- |")
    for name, definition in VARIANTS.items():
        hits = [f"{run_id[:8]} {b}" for run_id, *_ in rows
                for b in quality_breaches(args.warehouse, run_id, definition)]
        print(f"| {name} | {len(hits)}{': ' + '; '.join(hits) if hits else ''} |")


if __name__ == "__main__":
    main()
