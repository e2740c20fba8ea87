"""Benchmark: rubric scoring throughput, and the five checks in DuckDB vs pandas.

    python benchmarks/checks_speed.py [--spans 1000000] [--score-spans 20000]

1. Scoring: ``score_spans`` over a mix shaped like the golden set (plain chat,
   GSM8K numbers, SQuAD context + reference, JSON schema, BFCL tool calls).
2. Checks: a warehouse with N synthetic spans (1 h of traffic, 8 replicas, 50
   tenants, 1 Hz telemetry) and their 5 N scores; time ``run_checks`` (staging +
   five check SQL files) against an equivalent pandas implementation over the same
   rows already in memory; the time to read those rows out of the warehouse into
   pandas is printed apart. DuckDB runs with one thread and with its default (one
   per core), since the ratio to single-threaded pandas depends on the cores.
Prints the figures; targets: checks <= 2 s and >= 10x pandas at 1 M spans.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from checks.compute import run_checks
from checks.rubrics import RUBRIC_NAMES
from checks.scoring import score_spans
from checks.thresholds import Thresholds
from warehouse import connect

RUBRICS = list(RUBRIC_NAMES)

# ----------------------------------------------------------------------------- scoring

_TOOL = {"type": "function", "function": {"name": "math.factorial", "parameters": {
    "type": "dict", "properties": {"number": {"type": "integer"}}, "required": ["number"]}}}
_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
           "required": ["city"]}
_CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name "
            "to Normandy, a region in France. They were descended from Norse raiders.")


def scoring_mix(n: int) -> pl.DataFrame:
    kinds = [
        ({"messages": [{"role": "user", "content": "hi"}]}, None, "Hello there!", None),
        ({"messages": []}, {"reference": "18"}, "She makes 9 * 2 = $18 a day.", None),
        ({"messages": []}, {"context": _CONTEXT, "reference": "10th and 11th centuries",
                            "answerable": True}, "In the 10th and 11th centuries.", None),
        ({"messages": [], "response_format": {"type": "json_schema",
                                              "json_schema": {"schema": _SCHEMA}}},
         None, '```json\n{"city": "Rouen"}\n```', None),
        ({"messages": [], "tools": [_TOOL]},
         {"tool_calls": [{"name": "math.factorial", "arguments": {"number": [5]}}]},
         None, [{"name": "math.factorial", "arguments": '{"number": 5}'}]),
    ]
    weights = [0.6, 0.1, 0.1, 0.1, 0.1]
    rng = np.random.default_rng(0)
    picks = rng.choice(len(kinds), size=n, p=weights)
    rows = []
    for i, k in enumerate(picks):
        body, expect, text, calls = kinds[k]
        rows.append({"span_id": f"s{i}", "status": "ok" if i % 100 else "timeout",
                     "finish_reason": "tool_calls" if calls else "stop", "output_text": text,
                     "tool_calls": json.dumps(calls) if calls else None,
                     "request_body": json.dumps(body),
                     "expect": json.dumps(expect) if expect else None})
    return pl.DataFrame(rows)


def bench_scoring(n: int) -> float:
    spans = scoring_mix(n)
    score_spans(spans.head(50))  # warm caches: compiled schemas, context vocabularies
    start = time.perf_counter()
    scores = score_spans(spans)
    elapsed = time.perf_counter() - start
    assert scores.height == n * len(RUBRICS)
    return n / elapsed


# ------------------------------------------------------------------------ synthetic run

_SYNTHETIC = Path(__file__).with_name("synthetic_run.sql")


def build_warehouse(path: Path, n: int) -> None:
    with connect(path) as con:
        # statements one by one: only some bind $n
        for statement in filter(str.strip, _SYNTHETIC.read_text().split(";\n")):
            params = {"n": n} if "$n" in statement else None
            con.execute(statement, params)


# ------------------------------------------------------------------- pandas equivalent

def _stats(frame: pd.DataFrame, min_n: int) -> pd.DataFrame:
    grouped = frame.groupby("bucket", observed=True)
    out = grouped.agg(
        n=("span_id", "size"), mean_quality=("quality", "mean"),
        **{r: (r, "mean") for r in RUBRICS},
        p50_latency_ms=("latency_ms", "median"), p50_ttft_ms=("ttft_ms", "median"),
        error_rate=("failed", "mean"),
    )
    quantiles = grouped[["quality", "latency_ms", "ttft_ms"]].quantile([0.05, 0.99]).unstack()
    out["p05_quality"] = quantiles[("quality", 0.05)]
    out["p99_latency_ms"] = quantiles[("latency_ms", 0.99)]
    out["p99_ttft_ms"] = quantiles[("ttft_ms", 0.99)]
    out["insufficient"] = out["n"] < min_n
    return out


def _compare(frame: pd.DataFrame, min_n: int, ref_bucket: str | None) -> pd.DataFrame:
    out = _stats(frame, min_n)
    if ref_bucket in out.index and not out.loc[ref_bucket, "insufficient"]:
        ref_mean, ref_p05 = out.loc[ref_bucket, ["mean_quality", "p05_quality"]]
    else:
        ref_mean, ref_p05 = frame["quality"].mean(), frame["quality"].quantile(0.05)
    out["delta_mean"] = out["mean_quality"] - ref_mean
    out["delta_p05"] = out["p05_quality"] - ref_p05
    return out


def pandas_checks(spans: pd.DataFrame, scores: pd.DataFrame, telemetry: pd.DataFrame,
                  t: Thresholds) -> dict[str, pd.DataFrame]:
    wide = scores.pivot(index="span_id", columns="rubric", values="score")
    wide["quality"] = wide[RUBRICS].mean(axis=1)
    sq = spans.merge(wide, left_on="span_id", right_index=True, how="left")
    sq["failed"] = (sq["status"] != "ok").astype(float)
    min_n = t.min_samples
    out = {}

    pinned = sq[sq["mode"] == "pinned"].assign(bucket=lambda d: d["replica_id"])
    skew = _stats(pinned, min_n)
    ok = skew[~skew["insufficient"]]
    skew["delta_mean"] = skew["mean_quality"] - ok["mean_quality"].median()
    skew["spread"] = ok["mean_quality"].max() - ok["mean_quality"].min()
    out["replica_skew"] = skew

    replayed = sq[sq["mode"].isin(["replay", "tenant_burst"])].sort_values("sent_at")
    tel = telemetry.sort_values("sampled_at")
    arrivals = pd.merge_asof(replayed, tel, left_on="sent_at", right_on="sampled_at")
    saturation = arrivals["queue_depth"] / arrivals["replica_count"]
    a = t.autoscaling_lag
    arrivals["bucket"] = np.select(
        [saturation < a.warm_at, saturation < a.saturating_at, saturation < a.scaling_at],
        ["idle", "warm", "saturating"], "scaling")
    out["autoscaling_lag"] = _compare(arrivals, min_n, "idle")

    k = t.kv_cache_eviction
    ratio = sq["cached_tokens"] / sq["prompt_tokens"]
    # quality adjusted for request class (the set of rubrics that apply)
    request_class = sum(sq[r].notna().astype(int) * 2**i for i, r in enumerate(RUBRICS))
    kv = sq.assign(quality=sq["quality"] - sq.groupby(request_class)["quality"].transform("mean")
                   + sq["quality"].mean())
    kv["bucket"] = np.select([ratio > k.kv_high, ratio > k.kv_medium], ["high", "medium"], "low")
    by_len = kv.assign(bucket="len_d" + (pd.qcut(kv["prompt_tokens"].rank(method="first"), 10,
                                                 labels=False) + 1).astype(str))
    long = sq[sq["prompt_tokens"] >= k.min_shared_tokens]
    messages = long["request_body"].map(lambda body: json.loads(body)["messages"])
    earlier = messages.map(lambda m: json.dumps(m[:-1]))
    last = messages.map(lambda m: json.dumps(m[-1]))
    reuse = kv.loc[long.index].assign(
        context_key=earlier, shared_tokens=long["prompt_tokens"] * earlier.str.len()
        / (earlier.str.len() + last.str.len()),
        first_token_at=long["sent_at"] + pd.to_timedelta(long["ttft_ms"], unit="ms"))
    reuse = reuse[reuse["shared_tokens"] >= k.min_shared_tokens].sort_values("sent_at")
    computed = reuse.groupby(["replica_id", "context_key"])["first_token_at"].transform(
        lambda s: s.cummin().shift())
    reuse["bucket"] = np.select(
        [computed.isna() | (computed > reuse["sent_at"]), reuse["cached_tokens"].isna(),
         reuse["cached_tokens"] >= 0.5 * reuse["shared_tokens"]],
        ["first_use", "unknown", "retained"], "evicted")
    by_reuse = _compare(reuse, min_n, "retained")
    reused = reuse[reuse["bucket"].isin(["retained", "evicted"])]
    if "evicted" in by_reuse.index:
        by_reuse.loc["evicted", "evicted_share"] = (reused["bucket"] == "evicted").mean()
    out["kv_cache_eviction"] = pd.concat([_compare(kv, min_n, "high"), by_reuse,
                                          _compare(by_len, min_n, None)])

    d = t.traffic_pattern_drift
    t0 = replayed["sent_at"].min()
    tel = tel.assign(window=((tel["sampled_at"] - t0).dt.total_seconds() // d.window_s))
    w = tel.groupby("window").agg(peak=("queue_depth", "max"), mean=("queue_depth", "mean"),
                                  replicas=("replica_count", "mean"))
    w["pattern"] = np.select(
        [(w["peak"] > d.burst_factor * w["mean"]) & (w["peak"] > d.per_replica_capacity),
         w["mean"] > d.sustained_factor * w["replicas"] * d.per_replica_capacity],
        ["burst", "sustained"], "steady")
    window = (replayed["sent_at"] - t0).dt.total_seconds() // d.window_s
    labelled = replayed.assign(bucket=window.map(w["pattern"]).fillna("steady"))
    drift = _compare(labelled, min_n, "steady")
    drift["replay_share"] = labelled["bucket"].value_counts(normalize=True)
    i0 = replayed["intended_at"].min()
    offset = (replayed["intended_at"] - i0).dt.total_seconds()
    slices = pd.DataFrame({"window": offset // d.window_s,
                           "slice": offset // (d.window_s / 10)}).value_counts()
    per_window = slices.groupby(level="window").agg(["sum", "max"])
    latency_s = replayed["latency_ms"].mean() / 1000
    load = per_window["sum"] * latency_s / d.window_s
    peak = per_window["max"] * latency_s / (d.window_s / 10)
    captured = np.select([(peak > d.burst_factor * load) & (peak > d.per_replica_capacity),
                          load > d.sustained_factor * tel["replica_count"].mean()
                          * d.per_replica_capacity], ["burst", "sustained"], "steady")
    drift["captured_share"] = per_window["sum"].groupby(captured).sum() / per_window["sum"].sum()
    out["traffic_pattern_drift"] = drift

    tenants = replayed.assign(bucket=replayed["tenant_id"])
    fair = _compare(tenants, min_n, None)
    # the tail level the smallest sufficient tenant supports, against the median of the
    # other sufficient tenants, judged where a rank test says the tenant is slower
    levels = [0.75, 0.90, 0.95, 0.99]
    smallest = fair.loc[~fair["insufficient"], "n"].min()
    q = max([lv for lv in levels if (1 - lv) * smallest >= t.tenant_fairness.tail_spans],
            default=0.75)
    fair["tail_latency_ms"] = tenants.groupby("bucket")["latency_ms"].quantile(q)
    ok_tails = fair.loc[~fair["insufficient"], "tail_latency_ms"]
    fair["ref_tail_latency_ms"] = [ok_tails.drop(b, errors="ignore").median()
                                   for b in fair.index]
    fair["tail_latency_ratio"] = fair["tail_latency_ms"] / fair["ref_tail_latency_ms"]
    ranks = tenants["latency_ms"].rank()
    n1 = tenants.groupby("bucket").size()
    n2 = len(tenants) - n1
    u = ranks.groupby(tenants["bucket"]).sum() - n1 * (n1 + 1) / 2
    fair["p_slower"] = u / (n1 * n2)
    fair["slower_z"] = (u - n1 * n2 / 2) / np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    out["tenant_fairness"] = fair
    return out


# ------------------------------------------------------------------------------ main

@dataclass
class ChecksTiming:
    duck_s: dict[int, float]  # DuckDB threads -> best of ``repeats``
    pandas_s: float
    pandas_load_s: float  # reading the rows the pandas version needs out of the warehouse


def bench_checks(n: int, repeats: int = 3) -> ChecksTiming:
    thresholds = Thresholds()
    duck: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        build_warehouse(db, n)
        with connect(db) as con:
            default_threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
            for threads in sorted({1, default_threads}):
                con.execute(f"SET threads = {int(threads)}")
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    run_checks(con, "bench", thresholds)
                    times.append(time.perf_counter() - start)
                duck[threads] = min(times)
            start = time.perf_counter()
            spans = con.sql("SELECT * EXCLUDE (run_id) FROM spans").df()
            scores = con.sql("SELECT span_id, rubric, score FROM scores").df()
            telemetry = con.sql("SELECT * EXCLUDE (run_id) FROM telemetry").df()
            load_s = time.perf_counter() - start
            buckets = con.execute("SELECT count(*) FROM check_autoscaling_lag").fetchall()[0][0]
    start = time.perf_counter()
    frames = pandas_checks(spans, scores, telemetry, thresholds)
    pandas_s = time.perf_counter() - start
    assert set(frames) == {"replica_skew", "autoscaling_lag", "kv_cache_eviction",
                           "traffic_pattern_drift", "tenant_fairness"} and buckets >= 4
    return ChecksTiming(duck, pandas_s, load_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--score-spans", type=int, default=20_000)
    args = parser.parse_args()
    rate = bench_scoring(args.score_spans)
    print(f"scoring: {args.score_spans:,} spans, {rate:,.0f} spans/s")
    t = bench_checks(args.spans)
    print(f"checks over {args.spans:,} spans (5x scores), best of 3:")
    for threads, seconds in t.duck_s.items():
        print(f"  DuckDB, {threads} thread(s): {seconds:.2f} s, "
              f"{t.pandas_s / seconds:.1f}x pandas in memory, "
              f"{(t.pandas_s + t.pandas_load_s) / seconds:.1f}x pandas incl. reading the rows")
    print(f"  pandas: {t.pandas_s:.2f} s on frames in memory "
          f"(+ {t.pandas_load_s:.2f} s to read them out of the warehouse)")


if __name__ == "__main__":
    main()
