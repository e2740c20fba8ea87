"""Scenario files, their serve-config overlays, and how verdicts are read and shown."""

from __future__ import annotations

import pytest

from checks.compute import BUCKET_CHECKS
from cluster_eval.settings import PROJECT_ROOT
from scenarios import targets
from scenarios.errors import ScenarioError
from scenarios.matrix import is_diagonal, markdown
from scenarios.model import CHECKS, catalog, load_scenario
from scenarios.runner import ScenarioRun, Verdict, expected_status, read_verdicts
from traffic.builders.spec import load_spec
from warehouse import opened


def test_the_catalog_has_healthy_baselines_first_and_a_scenario_per_check():
    scenarios = catalog()
    baselines = [s.name for s in scenarios if s.catches is None]
    assert [s.name for s in scenarios[:len(baselines)]] == baselines == [
        "healthy", "healthy-documents", "healthy-nightly"]
    caught = sorted(s.catches for s in scenarios[len(baselines):])
    # every bucket check, and the SLOs twice: a bad rollout of each kind (drift, errors)
    assert caught == sorted([*BUCKET_CHECKS, "slo", "slo"])
    # history needs a baseline of earlier nights, measurement a broken replay: both are
    # specified on constructed warehouses (tests/checks/test_verdict.py)


@pytest.mark.parametrize("scenario", catalog(), ids=lambda s: s.name)
def test_every_scenario_names_a_workload_spec_that_loads(scenario):
    assert load_spec(PROJECT_ROOT / scenario.traffic).name


def test_an_overlay_changes_only_what_it_names():
    drifted = next(s for s in catalog(["drifted-replica"]))
    config = drifted.serve_config(PROJECT_ROOT)
    deployment = config["applications"][0]["deployments"][0]
    assert deployment["autoscaling_config"]["min_replicas"] == 2
    assert deployment["autoscaling_config"]["upscale_delay_s"] == 5  # kept from the base
    assert deployment["user_config"]["faults"][0]["replica_rank"] == 1
    assert deployment["user_config"]["sampling_defaults"] == {"temperature": 0.0}


def test_the_kv_pressure_overlay_swaps_the_cache_size_knob():
    config = catalog(["kv-cache-pressure"])[0].serve_config(PROJECT_ROOT)
    args = config["applications"][0]["args"]
    assert args["cpu_kvcache_space_gib"] is None
    assert args["engine_kwargs"]["kv_cache_memory_bytes"] == 36_000_000
    assert args["engine_kwargs"]["enable_prefix_caching"] is True


def test_kv_pressure_and_its_control_differ_only_in_the_cache():
    """The same traffic passes on the shipped cache and fails on a small one."""
    pressure, control = catalog(["kv-cache-pressure", "healthy-documents"])
    assert pressure.traffic == control.traffic and pressure.flow == control.flow
    assert load_spec(PROJECT_ROOT / pressure.traffic).tasks == ["doc_qa"]
    p_args, c_args = (s.serve_config(PROJECT_ROOT)["applications"][0]["args"]
                      for s in (pressure, control))
    assert c_args["cpu_kvcache_space_gib"] == 1 and "kv_cache_memory_bytes" not in c_args[
        "engine_kwargs"]
    changed = {k for k in p_args["engine_kwargs"].keys() | c_args["engine_kwargs"].keys()
               if p_args["engine_kwargs"].get(k) != c_args["engine_kwargs"].get(k)}
    assert changed == {"kv_cache_memory_bytes", "max_model_len"}


def test_a_malformed_scenario_names_the_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndescription: d\ncatches: replica_skw\ntraffic: t.yaml\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: field 'catches'"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="unknown scenario"):
        catalog(["no-such-scenario"])


def _expectations(con, run_id, rows, *, recorded_bounds=True):
    for check, bucket, expectation, observed, threshold, success in rows:
        bound = "max" if expectation.endswith("ratio") else "min"
        if not recorded_bounds:
            bound = None
        con.execute(
            "INSERT INTO expectation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, check, bucket, expectation, observed, threshold, success, bound])


def test_verdicts_come_from_the_gates_rows_worst_breach_first(tmp_path):
    db = tmp_path / "wh.duckdb"
    with opened(db) as con:
        _expectations(con, "r1", [
            ("replica_skew", "a", "delta_mean", 0.01, 0.02, True),
            ("replica_skew", "b", "delta_mean", -0.30, -0.02, False),
            ("autoscaling_lag", "idle", "delta_mean", 0.0, -0.05, True),
            ("autoscaling_lag", "warm", "delta_mean", -0.03, -0.05, True),
            ("tenant_fairness", "small", "tail_latency_ratio", 2.4, 1.5, False),
            ("tenant_fairness", "small", "delta_p05", -0.5, -0.05, False),
            ("kv_cache_eviction", "high", "sufficient_samples", 3, 20, False),
        ])
    drifted = catalog(["drifted-replica"])[0]
    verdicts = {v.check: v for v in read_verdicts(db, "r1", drifted)}
    assert (verdicts["replica_skew"].status, verdicts["replica_skew"].bucket) == ("fail", "b")
    assert verdicts["replica_skew"].as_expected
    assert (verdicts["autoscaling_lag"].status, verdicts["autoscaling_lag"].bucket) == (
        "pass", "warm")  # the closest call
    assert verdicts["tenant_fairness"].status == "fail"
    assert not verdicts["tenant_fairness"].as_expected
    assert verdicts["kv_cache_eviction"].status == "insufficient"
    assert verdicts["traffic_pattern_drift"].status == "insufficient"


def test_rows_from_before_the_gate_recorded_bounds_take_the_bound_from_the_rules(tmp_path):
    """The closest call of a passing check is measured toward the rule's own bound, as
    the spec says it, not guessed from the metric's name (an '_ms' ceiling, a '_share'
    floor)."""
    db = tmp_path / "wh.duckdb"
    with opened(db) as con:
        _expectations(con, "r1", [
            ("measurement", "schedule_lag", "lag_p99_ms", 1000.0, 5000.0, True),
            ("measurement", "replica_ids", "identified_share", 0.9, 0.5, True),
        ], recorded_bounds=False)
    healthy = catalog(["healthy"])[0]
    verdict = {v.check: v for v in read_verdicts(db, "r1", healthy)}["measurement"]
    assert (verdict.status, verdict.metric) == ("pass", "identified_share")


def test_the_matrix_marks_the_targeted_check_and_every_miss():
    def run(scenario, rep, statuses):
        return ScenarioRun(scenario, rep, f"{scenario}-{rep}", "COMPLETED", "", 1.0, [
            Verdict(c, s, "fail" if (scenario == "drifted-replica" and c == "replica_skew")
                    else "pass", observed=-0.2 if s == "fail" else 0.0)
            for c, s in zip(CHECKS, statuses, strict=True)])

    rest = ["pass"] * (len(CHECKS) - 1)
    runs = [run("healthy", 1, ["pass", *rest]),
            run("drifted-replica", 1, ["fail", *rest]),
            run("drifted-replica", 2, ["pass", *rest])]
    table = markdown(runs)
    assert "| healthy | n/a | pass 1/1" in table
    assert "FAIL/pass 1/2 (-0.20) ✗ ◀" in table
    assert "| 1/2 |" in table
    assert not is_diagonal(runs) and is_diagonal(runs[:2])


def test_a_check_the_scenario_sends_no_traffic_for_is_expected_insufficient():
    burst = catalog(["burst-mix"])[0]
    assert burst.flow.golden_rounds == 0 and burst.not_exercised == ["replica_skew"]
    assert expected_status(burst, "replica_skew") == "insufficient"
    assert expected_status(burst, "traffic_pattern_drift") == "fail"
    assert expected_status(burst, "tenant_fairness") == "pass"
    assert Verdict("replica_skew", "insufficient", "insufficient").as_expected
    assert not Verdict("replica_skew", "pass", "insufficient").as_expected


def test_every_scenario_without_golden_rounds_says_replica_skew_is_not_exercised():
    for scenario in catalog():
        if scenario.flow.golden_rounds == 0:
            assert "replica_skew" in scenario.not_exercised, scenario.name
        assert scenario.catches not in scenario.not_exercised, scenario.name


def test_a_fault_made_of_timeouts_may_declare_the_slo_it_breaches_by_design(tmp_path):
    scenario = catalog(["burst-mix"])[0].model_copy(update={"also_fails": ["slo"]})
    assert expected_status(scenario, "slo") == "fail"
    assert expected_status(scenario, "traffic_pattern_drift") == "fail"
    assert expected_status(scenario, "tenant_fairness") == "pass"


@pytest.mark.parametrize("body, field", [
    ("catches: replica_skew\nalso_fails: [tenant_fairness]\n", "also_fails"),
    ("catches: null\nalso_fails: [slo]\n", "healthy scenario"),
])
def test_only_night_level_checks_may_fail_alongside_the_target(tmp_path, body, field):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ndescription: x\ntraffic: t.yaml\n" + body)
    with pytest.raises(ScenarioError, match=field):
        load_scenario(path)


def test_scenario_thresholds_are_an_overlay_of_only_the_keys_that_differ():
    import yaml

    from checks.thresholds import DEFAULT_PATH, load_thresholds

    overlay_path = PROJECT_ROOT / "scenarios" / "thresholds.yaml"
    overlay = yaml.safe_load(overlay_path.read_text())
    base = yaml.safe_load(DEFAULT_PATH.read_text())
    assert (overlay_path.parent / overlay.pop("extends")).resolve() == DEFAULT_PATH.resolve()

    def leaves(tree, prefix=()):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from leaves(value, (*prefix, key))
            else:
                yield (*prefix, key), value

    def at(tree, path):
        for key in path:
            tree = tree[key]
        return tree

    changed = dict(leaves(overlay))
    # the tenant tail ratio is the shipped one: judged only for a measurably slower
    # tenant, a looser limit let the starved tenant of heavy-tenant pass (1.95x)
    assert changed == {("traffic_pattern_drift", "window_s"): 15}
    assert all(at(base, path) != value for path, value in changed.items())

    # the merged file validates, and is checks/thresholds.yaml with that key changed
    merged = load_thresholds(overlay_path).model_dump()
    shipped = load_thresholds().model_dump()
    for path, value in changed.items():
        assert at(merged, path) == value
        at(shipped, path[:-1])[path[-1]] = value
    assert merged == shipped


@pytest.mark.parametrize("scenario", catalog(), ids=lambda s: s.name)
def test_every_scenarios_thresholds_load(scenario):
    from checks.thresholds import load_thresholds

    if scenario.thresholds:
        assert load_thresholds(PROJECT_ROOT / scenario.thresholds).min_samples >= 1


# --- faults aimed at replicas that exist, and proven to reach one --------------------


def _config(*faults):
    return {"applications": [{"name": "llm", "import_path": "serving.app:build", "deployments": [
        {"name": "LLMServer", "user_config": {"config_version": "v", "faults": list(faults)}}]}]}


def test_a_rank_aimed_fault_is_aimed_at_that_running_replica_by_id():
    drift = {"kind": "drift", "replica_rank": 1, "max_tokens": 3}
    everyone = {"kind": "error", "all_replicas": True, "error_rate": 0.5}
    config = _config(drift, everyone)
    assert targets.needs_aiming(config)
    # Serve left ranks 0 and 2 after a replacement: 'rank 1' is the second replica running
    aimed = targets.aim_by_id(config, ["r-zz", "r-aa"])
    assert targets.faults(aimed) == [
        {"kind": "drift", "max_tokens": 3, "replica_id": "r-zz"}, everyone]
    assert not targets.needs_aiming(aimed)
    assert targets.faults(config)[0]["replica_rank"] == 1  # the scenario's own config kept


def test_a_fault_aimed_past_the_replicas_that_run_is_a_named_error():
    with pytest.raises(ValueError, match="replica_rank 2, but the deployment runs 2"):
        targets.aim_by_id(_config({"kind": "drift", "replica_rank": 2, "max_tokens": 3}),
                          ["r-a", "r-b"])


def test_the_deployment_is_brought_up_without_faults_but_with_the_rest_of_user_config():
    config = _config({"kind": "drift", "replica_rank": 1, "max_tokens": 3})
    bare = targets.without_faults(config)
    assert bare["applications"][0]["deployments"][0]["user_config"] == {
        "config_version": "v", "faults": []}
    assert targets.faults(config)  # untouched


def _spans(db, run_id, labels):
    with opened(db) as con:
        for i, label in enumerate(labels):
            con.execute("INSERT INTO spans (run_id, span_id, config_version) VALUES (?, ?, ?)",
                        [run_id, f"s{i}", label])


def test_a_fault_no_span_answered_with_is_reported_as_not_reaching_a_replica(tmp_path):
    db = tmp_path / "wh.duckdb"
    _spans(db, "hit", ["drifted", "drifted+fault:drift", "drifted+fault:drift+fault:error"])
    _spans(db, "missed", ["drifted", "drifted", None])
    config = _config({"kind": "drift", "replica_id": "r-b", "max_tokens": 3},
                     {"kind": "error", "all_replicas": True, "error_rate": 0.5})
    assert targets.unreached(db, "hit", config) == []
    assert targets.unreached(db, "missed", config) == [
        "drift fault (replica_id r-b) reached no replica",
        "error fault (all replicas) reached no replica"]


def test_a_run_whose_fault_reached_no_replica_is_never_diagonal_and_is_listed():
    checks = [Verdict(c, "fail" if c == "replica_skew" else "pass",
                      "fail" if c == "replica_skew" else "pass") for c in CHECKS]
    caught = ScenarioRun("drifted-replica", 1, "r1", "FAILED", "", 1.0, checks, "FAIL", "FAIL")
    assert caught.diagonal
    missed = ScenarioRun("drifted-replica", 2, "r2", "FAILED", "", 1.0, checks, "FAIL", "FAIL",
                         ["drift fault (replica_id r-b) reached no replica"])
    assert not missed.diagonal and not is_diagonal([caught, missed])
    assert "- drifted-replica #2: drift fault (replica_id r-b) reached no replica" in markdown(
        [caught, missed])
