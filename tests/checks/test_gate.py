"""The gate: passing and failing runs, the message, insufficient buckets, Data Docs."""

from __future__ import annotations

import pytest

from checks.compute import run_checks
from checks.gate import validate
from checks.thresholds import Thresholds
from tests.checks.conftest import document_question
from warehouse import connect


def healthy_run(builder, skewed: float | None = None):
    """Two pinned replicas and steady replay traffic from one tenant, all idle."""
    for t in range(0, 30):
        builder.sample(t, queue_depth=1, replicas=2)
    for i in range(6):
        builder.span(0.9, mode="pinned", replica="rep-a", at=i, cached_tokens=95)
        builder.span(skewed or 0.9, mode="pinned", replica="rep-b", at=i, cached_tokens=95)
        builder.span(0.9, at=i + 0.5, cached_tokens=95)
    return builder.load()


def evaluate(db, thresholds, data_docs_dir=None):
    with connect(db) as con:
        run_checks(con, "run-1", thresholds)
    return validate(db, "run-1", thresholds, data_docs_dir)


def test_gate_passes_a_healthy_run_and_reports_insufficient_buckets(run_builder):
    result = evaluate(healthy_run(run_builder), Thresholds(min_samples=5))
    assert result.passed, result.message
    assert result.breaches == []
    assert result.verdict == "PASS"
    assert result.message.startswith("PASS: run run-1 passed every judged check (")
    # the empty saturation buckets are named, not passed silently
    assert "Insufficient buckets (not judged): " in result.message
    assert "autoscaling_lag: saturating, scaling, warm" in result.message
    # and so is every check that was not judged at all, with the reason
    assert "Not judged: history (baseline: none (the run has no baseline key))" in \
        result.message
    assert {(b.check, b.bucket) for b in result.insufficient} >= {
        ("autoscaling_lag", "warm"), ("kv_cache_eviction", "medium")}
    with connect(run_builder.tmp_path / "w.duckdb") as con:
        stored = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT success) FROM expectation_results"
        ).fetchone()
    assert stored[0] > 0 and stored[1] == len(result.insufficient)


def test_gate_fails_a_skewed_replica_with_a_readable_message(run_builder, tmp_path):
    docs = tmp_path / "docs"
    result = evaluate(healthy_run(run_builder, skewed=0.6), Thresholds(min_samples=5), docs)
    assert not result.passed
    (breach,) = [b for b in result.breaches if b.bucket == "rep-b"]
    assert (breach.check, breach.metric) == ("replica_skew", "delta_mean_upper")
    assert breach.observed == pytest.approx(-0.15)
    assert breach.threshold == pytest.approx(-0.02)
    assert ("replica_skew: replica 'rep-b' mean quality 0.60 is 0.15 below the cohort median "
            "0.75 on the same golden prompts (allowed 0.02)") in result.message
    assert result.message.startswith("FAIL: run run-1 failed the gate: ")
    assert (docs / "index.html").exists()
    with connect(tmp_path / "w.duckdb") as con:
        failed = con.execute(
            "SELECT \"check\", bucket, expectation FROM expectation_results "
            "WHERE success = false AND expectation <> 'sufficient_samples' ORDER BY bucket"
        ).fetchall()
    # only the replica below the cohort is the finding; one above it is healthy
    assert failed == [("replica_skew", "rep-b", "delta_mean_upper")]


def test_fail_on_insufficient(run_builder):
    strict = Thresholds(min_samples=5, fail_on_insufficient=True)
    result = evaluate(healthy_run(run_builder), strict)
    assert not result.passed and result.breaches == []
    assert "Insufficient buckets (failing the gate)" in result.message


def test_unknown_buckets_are_reported_not_judged(run_builder):
    """Failures without token counts land in kv 'unknown': shown, not blamed on the cache."""
    healthy_run(run_builder)
    for _ in range(6):
        run_builder.span(0.0, status="timeout", prompt_tokens=None, cached_tokens=None)
    db_path = run_builder.load()
    result = evaluate(db_path, Thresholds(min_samples=5))
    assert not any(b.bucket == "unknown" for b in result.breaches), result.message
    with connect(db_path) as con:
        unknown = con.execute("SELECT n, error_rate FROM check_kv_cache_eviction "
                              "WHERE bucket = 'unknown'").fetchall()
    assert unknown == [(6, 1.0)]


def _idle_then_busy(builder, busy_qualities):
    """Idle spans of mixed quality, then spans sent while 12 requests queue per replica."""
    for t in range(0, 60):
        builder.sample(t, queue_depth=1 if t < 30 else 24, replicas=2)
    for i in range(30):
        builder.span(0.9 if i % 2 else 0.3, at=i + 0.5, cached_tokens=95)
    for i, quality in enumerate(busy_qualities):
        builder.span(quality, at=30.5 + i, cached_tokens=95)
    return builder.load()


def test_a_drop_within_sampling_noise_passes_and_a_cliff_fails(run_builder):
    """Mean quality 0.60 idle; a busy bucket at 0.52 over 10 noisy spans is noise."""
    noisy = [0.9, 0.2] * 4 + [0.6, 0.2]  # mean 0.52: a 0.08 drop, standard error ~0.13
    db = _idle_then_busy(run_builder, noisy)
    lenient = evaluate(db, Thresholds(min_samples=5, significance_z=2.0))
    assert lenient.passed, lenient.message
    strict = evaluate(db, Thresholds(min_samples=5, significance_z=0.0))
    assert not strict.passed
    assert "autoscaling_lag: bucket 'saturating' mean quality 0.52" in strict.message


def test_a_cliff_fails_even_with_the_noise_allowance(run_builder):
    db = _idle_then_busy(run_builder, [0.0] * 10)  # every busy request timed out
    result = evaluate(db, Thresholds(min_samples=5, significance_z=2.0))
    assert not result.passed
    assert "autoscaling_lag: bucket 'saturating' mean quality 0.00 is 0.60 ± " in result.message


def test_a_burst_of_timeouts_fails_on_errors_even_when_mean_quality_is_inconclusive(
        run_builder):
    """Found on the demo: 72 timeouts under a burst, but a thin, noisy idle bucket left
    the quality drop inside its noise. The error share is the sharp signal."""
    for t in range(0, 80):
        run_builder.sample(t, queue_depth=1 if t < 30 else 24, replicas=2)
    for i in range(30):
        run_builder.span(0.9 if i % 2 else 0.1, at=i + 0.5, cached_tokens=95)
    for i in range(40):
        timed_out = i % 4 == 0
        run_builder.span(0.0 if timed_out else (0.9 if i % 2 else 0.3), at=30.5 + i,
                         cached_tokens=None if timed_out else 95,
                         status="timeout" if timed_out else "ok")
    result = evaluate(run_builder.load(), Thresholds(min_samples=5))
    assert not result.passed
    [breach] = [b for b in result.breaches if b.check == "autoscaling_lag"]
    assert breach.metric == "delta_error_rate_lower"
    assert "autoscaling_lag: bucket 'saturating' error/timeout rate 25% is 25% above the " \
           "'idle' bucket reference 0% (allowed 5%, n=40)" in result.message


def test_saturation_at_the_replica_ceiling_is_reported_not_judged_as_lag(run_builder):
    run_builder.config = {"applications": [{"name": "llm", "import_path": "x:y",
                                            "deployments": [{"name": "d", "num_replicas": 2}]}]}
    run_builder.sample(0, queue_depth=1, replicas=2)
    run_builder.sample(10, queue_depth=60, replicas=2)
    for i in range(6):
        run_builder.span(0.9, at=1 + i)
        run_builder.span(0.0, at=11 + i, status="timeout")
    result = evaluate(run_builder.load(), Thresholds(min_samples=5))
    assert not [b for b in result.breaches if b.check == "autoscaling_lag"], result.message
    # the same timeouts with room to scale are a lag
    run_builder.config = None
    result = evaluate(run_builder.load(), Thresholds(min_samples=5))
    assert {(b.check, b.bucket) for b in result.breaches} >= {("autoscaling_lag", "scaling")}


def _burst_of_timeouts(builder, *, replicas: int) -> None:
    """Steady, then a 10-second window holding a queue spike and six timeouts."""
    builder.config = {"applications": [{"name": "llm", "import_path": "x:y", "deployments": [
        {"name": "d", "autoscaling_config": {"min_replicas": 1, "max_replicas": 2}}]}]}
    for t in range(40):
        builder.sample(t, queue_depth=30 if t == 25 else 1, replicas=replicas)
    for i in range(12):
        builder.span(0.9, at=1 + 1.5 * i)
    for i in range(6):
        builder.span(0.0, at=25.1 + i / 10, status="timeout", cached_tokens=None)


@pytest.mark.parametrize(("replicas", "owner"), [(1, "autoscaling_lag"),
                                                 (2, "traffic_pattern_drift")])
def test_a_burst_loss_has_one_owner_the_autoscaler_or_the_pattern(run_builder, replicas,
                                                                  owner):
    """Below the replica ceiling the autoscaler had room: its lag owns the loss
    (traffic_pattern_drift reports those spans as 'below_ceiling'). At the ceiling it
    could add nothing: the burst owns it (autoscaling_lag reports 'at_capacity')."""
    _burst_of_timeouts(run_builder, replicas=replicas)
    thresholds = Thresholds(min_samples=5)
    thresholds.traffic_pattern_drift.window_s = 10
    result = evaluate(run_builder.load(), thresholds)
    # one owner among the bucket checks (the night's error share is the SLO's too)
    assert {b.check for b in result.breaches} - {"slo"} == {owner}, result.message
    with connect(run_builder.tmp_path / "w.duckdb") as con:
        drift = dict(con.execute("SELECT bucket, n FROM check_traffic_pattern_drift "
                                 "WHERE n > 0").fetchall())
    assert drift == ({"steady": 12, "below_ceiling": 6} if replicas == 1
                     else {"steady": 12, "burst": 6})


def test_evicted_shared_contexts_fail_the_kv_check_while_answers_hold(run_builder):
    """vLLM recomputes evicted blocks: the answers of evicted requests are as good as
    the retained ones', so the eviction itself is what fails the check."""
    manual = document_question("manual " * 300)
    for t in range(30):
        run_builder.sample(t, queue_depth=1, replicas=1)
    run_builder.span(0.8, at=0, body=manual, prompt_tokens=600, ttft_ms=250)
    for i in range(6):
        run_builder.span(0.8, at=1 + 2 * i, body=manual, prompt_tokens=600,
                         cached_tokens=512, ttft_ms=20)
        for j in range(2):
            run_builder.span(0.8, at=1.5 + 2 * i + j / 2, body=manual, prompt_tokens=600,
                             cached_tokens=0, ttft_ms=260)
    result = evaluate(run_builder.load(), Thresholds(min_samples=5))
    assert {(b.check, b.metric) for b in result.breaches} == {
        ("kv_cache_eviction", "evicted_share")}
    assert ("kv_cache_eviction: 67% of the requests reusing a shared context their replica "
            "had computed found it evicted (allowed 50%, n=12 evicted)") in result.message
    # the same run within a 70 % allowance passes
    thresholds = Thresholds(min_samples=5)
    thresholds.kv_cache_eviction.max_evicted_share = 0.7
    assert evaluate(run_builder.tmp_path / "w.duckdb", thresholds).passed


def test_a_tenant_tail_ratio_from_routing_luck_does_not_fail_the_gate(run_builder):
    from tests.checks.test_checks import routing_luck_night

    result = evaluate(routing_luck_night(run_builder), Thresholds(min_samples=5))
    assert not [b for b in result.breaches if b.check == "tenant_fairness"], result.message


def test_a_tenant_slower_on_most_requests_fails_the_gate_naming_the_level(run_builder):
    for i in range(30):
        run_builder.span(0.9, tenant="big", latency_ms=1_000 + 10 * i)
        run_builder.span(0.9, tenant="small", latency_ms=4_000 + 10 * i)
    result = evaluate(run_builder.load(), Thresholds(min_samples=5))
    (breach,) = [b for b in result.breaches if b.check == "tenant_fairness"]
    assert breach.bucket == "small" and breach.metric == "tail_latency_ratio"
    assert ("tenant_fairness: tenant 'small' p75 latency 4218 ms is 3.46x the other "
            "tenants' median p75 1218 ms (allowed 1.50x, n=30; slower than another "
            "tenant's request 100% of the time)") in result.message
