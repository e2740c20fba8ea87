"""The five check SQL files on hand-built runs whose bucket values are known."""

from __future__ import annotations

import polars as pl
import pytest

from checks.compute import CHECKS, check_params, run_checks
from checks.thresholds import Thresholds
from tests.checks.conftest import document_question
from warehouse import connect

MIN = 5
THRESHOLDS = Thresholds(min_samples=MIN)


def rows(db, check: str) -> dict[str, dict]:
    with connect(db) as con:
        run_checks(con, "run-1", THRESHOLDS)
        frame = pl.from_arrow(con.sql(f"SELECT * FROM check_{check}").to_arrow_table())
    return {r["bucket"]: r for r in frame.iter_rows(named=True)}


def test_every_check_binds_only_parameters_it_uses():
    for check in CHECKS:
        bound = set(check_params(check, "r", THRESHOLDS))
        assert "run_id" in bound
        if check != "measurement":  # it counts planned requests, not bucket sizes
            assert "min_samples" in bound


def test_replica_skew(run_builder):
    for replica, quality in (("rep-a", 0.9), ("rep-b", 0.8), ("rep-c", 0.6)):
        for i in range(6):
            run_builder.span(quality, mode="pinned", replica=replica, latency_ms=100 + i)
    for _ in range(3):  # too few spans: reported, left out of the cohort median
        run_builder.span(0.0, mode="pinned", replica="rep-d")
    run_builder.span(0.0, mode="replay", replica="rep-a")  # not pinned: ignored
    got = rows(run_builder.load(), "replica_skew")
    assert set(got) == {"rep-a", "rep-b", "rep-c", "rep-d"}
    assert got["rep-a"]["n"] == 6 and not got["rep-a"]["insufficient"]
    assert got["rep-d"]["n"] == 3 and got["rep-d"]["insufficient"]
    assert got["rep-c"]["ref_mean_quality"] == pytest.approx(0.8)
    assert got["rep-c"]["delta_mean"] == pytest.approx(-0.2)
    assert got["rep-a"]["delta_mean"] == pytest.approx(0.1)
    assert got["rep-a"]["spread"] == pytest.approx(0.3)
    assert got["rep-a"]["p50_latency_ms"] == pytest.approx(102.5)
    assert got["rep-a"]["reference"] == "cohort_median"


def test_replica_skew_charges_failures_to_the_pinned_replica(run_builder):
    for _ in range(5):
        run_builder.span(1.0, mode="pinned", replica="rep-a")
    run_builder.spans[-1]["replica_id"] = None
    run_builder.spans[-1]["pinned_replica"] = "rep-a"
    run_builder.spans[-1]["status"] = "timeout"
    got = rows(run_builder.load(), "replica_skew")
    assert got["rep-a"]["n"] == 5 and got["rep-a"]["error_rate"] == pytest.approx(0.2)


def test_autoscaling_lag(run_builder):
    # saturation = queue depth / running replicas, from the sample before each send
    run_builder.sample(0, queue_depth=2, replicas=2)     # 1   -> idle
    run_builder.sample(10, queue_depth=10, replicas=2)   # 5   -> warm
    run_builder.sample(20, queue_depth=20, replicas=2)   # 10  -> saturating
    run_builder.sample(30, queue_depth=40, replicas=2)   # 20  -> scaling
    run_builder.sample(40, queue_depth=3, replicas=0)    # cold start -> scaling
    for i in range(6):
        run_builder.span(1.0, at=1 + i)
        run_builder.span(0.95, at=11 + i)
        run_builder.span(0.7, at=21 + i)
    for i in range(3):
        run_builder.span(0.5, at=31 + i)
        run_builder.span(0.5, at=41 + i)
    run_builder.span(0.0, at=2, mode="pinned")  # not production-shaped: ignored
    got = rows(run_builder.load(), "autoscaling_lag")
    assert {b: r["n"] for b, r in got.items()} == {"idle": 6, "warm": 6, "saturating": 6,
                                                   "scaling": 6}
    assert got["idle"]["reference"] == "idle"
    assert got["warm"]["delta_mean"] == pytest.approx(-0.05)
    assert got["saturating"]["delta_mean"] == pytest.approx(-0.3)
    assert got["scaling"]["mean_saturation"] == pytest.approx(20)


def _serve_config(deployment: dict) -> dict:
    return {"applications": [{"name": "llm", "import_path": "serving.app:build",
                              "deployments": [{"name": "LLMReplica", **deployment}]}]}


def test_autoscaling_lag_sets_apart_saturation_at_the_replica_ceiling(run_builder):
    run_builder.config = _serve_config({"autoscaling_config": {"min_replicas": 1,
                                                                "max_replicas": 2}})
    run_builder.sample(0, queue_depth=1, replicas=1)     # idle
    run_builder.sample(10, queue_depth=30, replicas=1)   # scaling: could still grow
    run_builder.sample(20, queue_depth=60, replicas=2)   # saturated at max_replicas
    for i in range(6):
        run_builder.span(1.0, at=1 + i)
        run_builder.span(0.2, at=11 + i)
        run_builder.span(0.0, at=21 + i, status="timeout")
    got = rows(run_builder.load(), "autoscaling_lag")
    assert {b: r["n"] for b, r in got.items() if r["n"]} == {
        "idle": 6, "scaling": 6, "at_capacity": 6}
    assert got["scaling"]["delta_mean"] == pytest.approx(-0.8)
    assert got["at_capacity"]["error_rate"] == 1.0


def test_a_fixed_size_deployment_has_no_autoscaling_lag_to_judge(run_builder):
    run_builder.config = _serve_config({"num_replicas": 2})
    run_builder.sample(0, queue_depth=1, replicas=2)
    run_builder.sample(10, queue_depth=60, replicas=2)
    for i in range(6):
        run_builder.span(1.0, at=1 + i)
        run_builder.span(0.0, at=11 + i, status="timeout")
    got = rows(run_builder.load(), "autoscaling_lag")
    assert got["at_capacity"]["n"] == 6 and got["scaling"]["n"] == 0


def test_max_replicas_comes_from_the_first_applications_deployments():
    import yaml

    from checks.compute import max_replicas

    def text(deployment):
        return yaml.safe_dump(_serve_config(deployment))

    assert max_replicas(text({"autoscaling_config": {"max_replicas": 4}})) == 4
    assert max_replicas(text({"num_replicas": 3})) == 3
    assert max_replicas(text({})) is None
    assert max_replicas(None) is None
    assert max_replicas("applications: [") is None


def test_autoscaling_lag_marks_empty_and_small_buckets(run_builder):
    run_builder.sample(0, queue_depth=0, replicas=1)
    run_builder.sample(10, queue_depth=100, replicas=1)
    for i in range(6):
        run_builder.span(1.0, at=1 + i)
    run_builder.span(0.2, at=11)
    got = rows(run_builder.load(), "autoscaling_lag")
    assert (got["warm"]["n"], got["warm"]["insufficient"]) == (0, True)
    assert got["warm"]["mean_quality"] is None
    assert (got["scaling"]["n"], got["scaling"]["insufficient"]) == (1, True)
    assert got["scaling"]["delta_mean"] == pytest.approx(-0.8)


def test_autoscaling_lag_reference_climbs_past_a_thin_idle_bucket(run_builder):
    run_builder.sample(0, queue_depth=0, replicas=1)     # idle
    run_builder.sample(10, queue_depth=4, replicas=1)    # warm
    run_builder.sample(20, queue_depth=30, replicas=1)   # scaling
    for i in range(2):
        run_builder.span(1.0, at=1 + i)
    for i in range(6):
        run_builder.span(0.8, at=11 + i)
        run_builder.span(0.5, at=21 + i)
    got = rows(run_builder.load(), "autoscaling_lag")
    assert got["idle"]["insufficient"]
    assert {r["reference"] for r in got.values()} == {"warm"}
    assert got["scaling"]["delta_mean"] == pytest.approx(-0.3)


def test_kv_cache_eviction(run_builder):
    for _ in range(6):
        run_builder.span(1.0, prompt_tokens=100, cached_tokens=90)    # high
        run_builder.span(0.9, prompt_tokens=200, cached_tokens=120)   # medium (0.6)
        run_builder.span(0.5, prompt_tokens=400, cached_tokens=0)     # low
    run_builder.span(0.0, prompt_tokens=None, cached_tokens=None, status="http_error")
    got = rows(run_builder.load(), "kv_cache_eviction")
    cache = {b: r for b, r in got.items() if r["dimension"] == "cache_hit"}
    assert {b: r["n"] for b, r in cache.items()} == {"high": 6, "medium": 6, "low": 6,
                                                     "unknown": 1}
    assert cache["low"]["reference"] == "high"
    assert cache["low"]["delta_mean"] == pytest.approx(-0.5)
    assert cache["medium"]["mean_hit_ratio"] == pytest.approx(0.6)
    assert cache["unknown"]["insufficient"] and cache["unknown"]["error_rate"] == 1.0
    deciles = {b: r for b, r in got.items() if r["dimension"] == "prompt_length"}
    # three distinct lengths: equal lengths share the lowest decile they reach
    assert {b: r["n"] for b, r in deciles.items()} == {"len_d1": 6, "len_d4": 6, "len_d7": 6}
    assert all(r["reference"] == "aggregate" for r in deciles.values())
    assert deciles["len_d7"]["mean_quality"] == pytest.approx(0.5)  # the 400-token prompts


def test_kv_cache_eviction_compares_within_request_classes(run_builder):
    # JSON requests always hit a shared cached prefix, math ones never: raw bucket
    # means differ by 0.6 although no request did worse for a cache state
    for _ in range(6):
        run_builder.span(0, prompt_tokens=100, cached_tokens=95,
                         rubrics={"json_adherence": 1.0, "completion": 1.0})
        run_builder.span(0, prompt_tokens=100, cached_tokens=0,
                         rubrics={"reference_match": 0.2, "completion": 0.6})
    got = rows(run_builder.load(), "kv_cache_eviction")
    assert got["low"]["delta_mean"] == pytest.approx(0.0)
    # ...while a class that is found in both buckets keeps its difference
    for _ in range(6):
        run_builder.span(0, prompt_tokens=100, cached_tokens=0,
                         rubrics={"json_adherence": 0.0, "completion": 0.0})
    got = rows(run_builder.load(), "kv_cache_eviction")
    assert got["low"]["delta_mean"] < -0.3


def test_kv_prompt_length_deciles_split_distinct_lengths_evenly(run_builder):
    for i in range(50):
        run_builder.span(1.0 if i < 45 else 0.0, prompt_tokens=100 + i)
    got = rows(run_builder.load(), "kv_cache_eviction")
    deciles = {b: r for b, r in got.items() if r["dimension"] == "prompt_length"}
    assert {b: r["n"] for b, r in deciles.items()} == {f"len_d{i}": 5 for i in range(1, 11)}
    assert deciles["len_d10"]["delta_mean"] == pytest.approx(-0.9)


def test_kv_cache_eviction_falls_back_to_aggregate_without_high(run_builder):
    for _ in range(6):
        run_builder.span(0.8, prompt_tokens=100, cached_tokens=0)
        run_builder.span(0.4, prompt_tokens=100, cached_tokens=60)
    got = rows(run_builder.load(), "kv_cache_eviction")
    assert got["high"]["n"] == 0 and got["high"]["insufficient"]
    assert got["low"]["reference"] == "aggregate"
    assert got["low"]["delta_mean"] == pytest.approx(0.2)
    assert got["medium"]["delta_mean"] == pytest.approx(-0.2)


def reuse_rows(db) -> dict[str, dict]:
    return {b: r for b, r in rows(db, "kv_cache_eviction").items()
            if r["dimension"] == "prefix_reuse"}


def test_kv_prefix_reuse_follows_each_replicas_shared_contexts(run_builder):
    manual = document_question("manual " * 300)     # ~2,100 characters of shared context
    # rep-a computes the manual's context once (first token at 0.25 s) ...
    run_builder.span(1.0, at=0, body=manual, prompt_tokens=600, cached_tokens=0, ttft_ms=250)
    # ... a request sent before that first token could not reuse it yet
    run_builder.span(1.0, at=0.1, body=manual, prompt_tokens=600, cached_tokens=0)
    for i in range(6):
        run_builder.span(1.0, at=1 + i, body=manual, prompt_tokens=600, cached_tokens=512,
                         ttft_ms=20)                                   # retained
        run_builder.span(1.0, at=1.5 + i, body=manual, prompt_tokens=600, cached_tokens=0,
                         ttft_ms=200)                                  # evicted
    # another replica has not computed it: its first request is a first use
    run_builder.span(1.0, at=3, replica="rep-b", body=manual, prompt_tokens=600)
    # a short shared context (a one-line system prompt) is not followed
    run_builder.span(1.0, at=4, body=document_question("Be brief.", "manual " * 300),
                     prompt_tokens=600, cached_tokens=0)
    got = reuse_rows(run_builder.load())
    assert {b: r["n"] for b, r in got.items()} == {"first_use": 3, "retained": 6, "evicted": 6}
    assert got["evicted"]["evicted_share"] == pytest.approx(0.5)
    assert got["evicted"]["p50_ttft_ms"] == 200 and got["retained"]["p50_ttft_ms"] == 20
    assert got["evicted"]["reference"] == "retained"
    assert got["retained"]["evicted_share"] is None  # judged facts sit on 'evicted' only


def test_kv_prefix_reuse_keeps_tools_and_earlier_turns_in_the_context(run_builder):
    tools = [{"type": "function", "function": {"name": "lookup", "description": "x " * 600}}]
    with_tools = {"messages": [{"role": "user", "content": "Find it."}], "tools": tools}
    other_tools = {**with_tools, "tools": [{**tools[0], "function": {"name": "other",
                                                                    "description": "y " * 600}}]}
    run_builder.span(1.0, at=0, body=with_tools, prompt_tokens=400)
    run_builder.span(1.0, at=1, body=with_tools, prompt_tokens=400, cached_tokens=384)
    run_builder.span(1.0, at=2, body=other_tools, prompt_tokens=400)
    got = reuse_rows(run_builder.load())
    assert {b: r["n"] for b, r in got.items() if r["n"]} == {"first_use": 2, "retained": 1}


def test_kv_prefix_reuse_skips_a_body_that_is_not_json(run_builder):
    run_builder.span(1.0, at=0, body=document_question("manual " * 300), prompt_tokens=600)
    run_builder.span(1.0, at=1, prompt_tokens=600)
    run_builder.spans[-1]["request_body"] = '{"messages": [truncated'
    got = rows(run_builder.load(), "kv_cache_eviction")
    assert got["first_use"]["n"] == 1 and got["low"]["n"] == 2  # still counted elsewhere


def test_traffic_pattern_drift(run_builder, monkeypatch):
    window = 10.0
    thresholds = Thresholds(min_samples=MIN)
    thresholds.traffic_pattern_drift.window_s = window
    # window 0 steady: depth 2 throughout; window 1 burst: one spike of 20;
    # window 2 sustained: depth 12 > 0.7 x 2 replicas x 5
    for t in range(10):
        run_builder.sample(t, queue_depth=2, replicas=2)
        run_builder.sample(10 + t, queue_depth=20 if t == 5 else 1, replicas=2)
        run_builder.sample(20 + t, queue_depth=12, replicas=2)
    for i in range(6):
        run_builder.span(1.0, at=0.5 + i)
        run_builder.span(0.8, at=10.5 + i)
        run_builder.span(0.9, at=20.5 + i)
    db = run_builder.load()
    with connect(db) as con:
        run_checks(con, "run-1", thresholds)
        frame = pl.from_arrow(con.sql("SELECT * FROM check_traffic_pattern_drift").to_arrow_table())
    got = {r["bucket"]: r for r in frame.iter_rows(named=True)}
    assert {b: r["n"] for b, r in got.items()} == {"steady": 6, "burst": 6, "sustained": 6}
    assert got["burst"]["delta_mean"] == pytest.approx(-0.2)
    assert got["sustained"]["delta_mean"] == pytest.approx(-0.1)
    assert got["steady"]["replay_share"] == pytest.approx(1 / 3)
    # captured arrivals are evenly spread (one per second): all steady
    assert got["steady"]["captured_share"] == pytest.approx(1.0)
    assert got["burst"]["captured_share"] == 0


def test_tenant_fairness(run_builder):
    # globex's one slow request is 10% of its traffic but under 1% of the cluster's
    for _ in range(200):
        run_builder.span(0.9, tenant="acme", latency_ms=100)
    for i in range(10):
        run_builder.span(0.9 if i else 0.1, tenant="globex", latency_ms=100 if i < 9 else 1000)
    for _ in range(2):
        run_builder.span(0.9, tenant="tiny", latency_ms=100)
    got = rows(run_builder.load(), "tenant_fairness")
    assert set(got) == {"acme", "globex", "tiny"}
    assert got["tiny"]["insufficient"] and not got["acme"]["insufficient"]
    # each tenant against the other sufficient tenants (tiny is too thin to count)
    assert got["globex"]["reference"] == "other_tenants"
    assert got["globex"]["ref_p99_latency_ms"] == pytest.approx(100)   # acme's p99
    assert got["globex"]["p99_latency_ratio"] == pytest.approx(9.19)
    assert got["acme"]["ref_p99_latency_ms"] == pytest.approx(919)     # globex's p99
    assert got["acme"]["p99_latency_ratio"] == pytest.approx(100 / 919)
    assert got["globex"]["delta_p05"] == pytest.approx(got["globex"]["p05_quality"] - 0.9)
    assert got["acme"]["delta_p05"] > 0


def test_tenant_fairness_sees_a_starved_tenant_that_fills_the_aggregate_tail(run_builder):
    # small sends 20 % of the traffic, all of it slow: the aggregate p99 is small's own
    for _ in range(80):
        run_builder.span(0.9, tenant="big", latency_ms=1000)
    for _ in range(20):
        run_builder.span(0.9, tenant="small", latency_ms=5000)
    got = rows(run_builder.load(), "tenant_fairness")
    assert got["small"]["tail_latency_ratio"] == pytest.approx(5.0)
    assert got["big"]["tail_latency_ratio"] == pytest.approx(0.2)


def test_one_tenant_is_judged_against_the_aggregate(run_builder):
    for i in range(10):
        run_builder.span(0.9, tenant="acme", latency_ms=100 + i)
    got = rows(run_builder.load(), "tenant_fairness")
    assert got["acme"]["reference"] == "aggregate"
    assert got["acme"]["p99_latency_ratio"] == pytest.approx(1.0)
    assert got["acme"]["tail_latency_ratio"] == pytest.approx(1.0)


def tenant_night(run_builder, spans_per_tenant: int, slow_ms: float = 100.0):
    """Two tenants served alike (latencies 100..), but for one slow answer to globex."""
    for i in range(spans_per_tenant):
        run_builder.span(0.9, tenant="acme", latency_ms=100 + i)
        last = i == spans_per_tenant - 1
        run_builder.span(0.9, tenant="globex", latency_ms=slow_ms if last else 100 + i)
    return rows(run_builder.load(), "tenant_fairness")


@pytest.mark.parametrize(("spans_per_tenant", "level"),
                         [(20, 0.75), (49, 0.75), (50, 0.90), (99, 0.90), (100, 0.95),
                          (499, 0.95), (500, 0.99)])
def test_the_latency_tail_is_the_highest_with_five_spans_beyond_it(
        run_builder, spans_per_tenant, level):
    got = tenant_night(run_builder, spans_per_tenant)
    assert [row["tail_latency_q"] for row in got.values()] == [pytest.approx(level)] * 2


def test_one_slow_answer_is_not_a_starved_tenant(run_builder):
    # the drifted-replica scenario: 28 spans a tenant, one 13 s answer on the healthy
    # replica, the rest fast; its p99 is that answer, its p75 is the tenant's service
    got = tenant_night(run_builder, 28, slow_ms=13_000)
    assert got["globex"]["p99_latency_ratio"] > 2.5
    assert got["globex"]["tail_latency_q"] == pytest.approx(0.75)
    assert got["globex"]["tail_latency_ratio"] == pytest.approx(1.0)


def test_a_starved_small_tenant_shows_at_the_tail_its_sample_supports(run_builder):
    # a third of small's 28 requests wait 5x longer; the rest are served like big's
    for i in range(100):
        run_builder.span(0.9, tenant="big", latency_ms=1000 + i)
    for i in range(28):
        run_builder.span(0.9, tenant="small",
                         latency_ms=5000 if i % 3 == 0 else 1000 + (i * 37) % 100)
    got = rows(run_builder.load(), "tenant_fairness")
    assert got["small"]["tail_latency_q"] == pytest.approx(0.75)
    assert got["small"]["tail_latency_ratio"] > 4
    assert got["small"]["p_slower"] > 0.6
    assert got["small"]["measurably_slower"]
    assert not got["big"]["measurably_slower"]


def routing_luck_night(run_builder):
    """One replica answers in ~1 s, the other in ~11 s (a drifted-replica night); acme
    drew 12 of its 30 requests on the slow one, globex 6 of its 28."""
    for tenant, n, slow in (("acme", 30, 12), ("globex", 28, 6)):
        for i in range(n):
            at_slow = i < slow
            run_builder.span(0.9, tenant=tenant,
                             latency_ms=(11_000 if at_slow else 1_000) + 50 * (i % 10))
    return run_builder.load()


def test_routing_luck_on_a_small_night_is_not_a_starved_tenant(run_builder):
    got = rows(routing_luck_night(run_builder), "tenant_fairness")
    # acme's p75 sits among the slow replica's answers, globex's among the fast ones'
    assert got["acme"]["tail_latency_ratio"] > 2.5
    # but its requests are slower than globex's not much more than half the time
    assert got["acme"]["p_slower"] == pytest.approx(0.6, abs=0.05)
    assert not got["acme"]["measurably_slower"]


def test_a_tenant_is_not_starved_for_sending_slower_kinds_of_request(run_builder):
    # both tenants' short JSON requests are served alike; globex also sends long
    # grounded-QA requests nobody else sends, which take 5x longer for everyone
    short, long = {"q": "x"}, {"context": "y" * 2000}
    for i in range(60):
        run_builder.span(0.9, tenant="acme", latency_ms=1000 + i * 7 % 60, body=short,
                         rubrics={"json_adherence": 0.9})
    for i in range(30):
        run_builder.span(0.9, tenant="globex", latency_ms=1000 + i * 11 % 60, body=short,
                         rubrics={"json_adherence": 0.9})
        run_builder.span(0.9, tenant="globex", latency_ms=5000 + i, body=long,
                         rubrics={"groundedness": 0.9})
    got = rows(run_builder.load(), "tenant_fairness")
    assert got["globex"]["tail_latency_ratio"] > 4       # its tail is its long requests
    assert got["globex"]["p_slower"] == pytest.approx(0.5, abs=0.1)  # like for like
    assert not got["globex"]["measurably_slower"]


def test_a_tenant_slower_at_the_same_kind_of_request_is_measurably_slower(run_builder):
    short, long = {"q": "x"}, {"context": "y" * 2000}
    for i in range(40):
        run_builder.span(0.9, tenant="acme", latency_ms=1000 + i, body=short)
        run_builder.span(0.9, tenant="acme", latency_ms=5000 + i, body=long)
        run_builder.span(0.9, tenant="globex", latency_ms=3000 + i, body=short)
    got = rows(run_builder.load(), "tenant_fairness")
    # over the whole night globex looks faster (acme's long requests fill the tail);
    # against acme's requests of the same kind it waits 3x longer on every one
    assert got["globex"]["p_slower"] == pytest.approx(1.0)
    assert got["globex"]["measurably_slower"]
    assert not got["acme"]["measurably_slower"]


def test_a_tenant_is_not_starved_for_the_replica_its_requests_drew(run_builder):
    # drifted-replica: one replica answers in 0.3 s (truncated), the other in 3 s; acme
    # drew 18 of its 30 requests on the slow replica, globex 5 of 28. On each replica
    # both are served alike, so acme is not measurably slower, whatever its tail ratio
    for tenant, on_slow, n in (("acme", 18, 30), ("globex", 5, 28)):
        for i in range(n):
            slow = i < on_slow
            run_builder.span(0.9, tenant=tenant, replica="healthy" if slow else "drifted",
                             latency_ms=(3000 if slow else 300) + i * 37 % 200)
    got = rows(run_builder.load(), "tenant_fairness")
    assert got["acme"]["tail_latency_ratio"] > 1.5     # its p75 is the slow replica's
    assert got["acme"]["p_slower"] == pytest.approx(0.5, abs=0.1)  # replica by replica
    assert not got["acme"]["measurably_slower"]


def test_a_tenant_with_no_counterpart_requests_is_ranked_over_the_whole_night(run_builder):
    # heavy-tenant: the big tenant sends only long prefills, the small one only short
    # requests, which wait behind them; no stratum holds both, so like-with-like has
    # nothing to compare and the whole night is the comparison
    short, long = {"q": "x"}, {"context": "y" * 2000}
    for i in range(90):
        run_builder.span(0.9, tenant="big", latency_ms=2000 + i, body=long)
    for i in range(30):
        run_builder.span(0.9, tenant="small", latency_ms=9000 + i, body=short)
    got = rows(run_builder.load(), "tenant_fairness")
    assert got["small"]["p_slower"] == pytest.approx(1.0)
    assert got["small"]["measurably_slower"]
    assert got["small"]["tail_latency_ratio"] > 4


def test_the_tail_level_follows_the_smallest_tenant_compared(run_builder):
    # a thin tenant (insufficient) does not lower the level; the smallest compared does
    for i in range(600):
        run_builder.span(0.9, tenant="big", latency_ms=100 + i)
    for i in range(60):
        run_builder.span(0.9, tenant="mid", latency_ms=100 + i)
    for _ in range(3):
        run_builder.span(0.9, tenant="thin", latency_ms=100)
    got = rows(run_builder.load(), "tenant_fairness")
    assert got["thin"]["insufficient"]
    assert [row["tail_latency_q"] for row in got.values()] == [pytest.approx(0.90)] * 3
    assert got["mid"]["ref_tail_latency_ms"] == pytest.approx(
        got["big"]["tail_latency_ms"])


def test_rerunning_checks_replaces_rows(run_builder):
    for _ in range(6):
        run_builder.span(1.0, tenant="acme")
    db = run_builder.load()
    rows(db, "tenant_fairness")
    got = rows(db, "tenant_fairness")
    assert got["acme"]["n"] == 6
    with connect(db) as con:
        assert con.execute("SELECT count(*) FROM check_tenant_fairness").fetchone()[0] == 1
