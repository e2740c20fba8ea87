"""The Grafana dashboard (deploy/grafana/cluster-eval.json): valid JSON with the last
night's and the last 30 nights' panels, every query names only metrics the exporter
emits, promtool parses every query, and the verdict and check panels compute what
the gate decided over a judged night's exported series."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cluster_eval.settings import PROJECT_ROOT
from exports.prometheus import render
from tests.exports.promql import UnknownFunction, metric_names
from tests.exports.test_prometheus_rules import PROMTOOL, _series, needs_promtool

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "cluster-eval.json"
LAST_NIGHT = {"Verdict", "Since the last run", "Run duration", "Replay fidelity",
              "Checks (last night)", "Bucket quality (last night)",
              "Bucket error share (last night)", "Bucket p99 latency (last night)"}
THIRTY_NIGHTS = {"Verdict per night", "Checks per night", "Worst bucket quality per check",
                 "Worst bucket error share per check", "Worst bucket p99 latency per check",
                 "Breaches per check", "Replay fidelity per night"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> dict[str, dict]:
    return {p["title"]: p for p in dashboard()["panels"] if p["type"] != "row"}


def exprs() -> list[tuple[str, str]]:
    return [(title, t["expr"]) for title, p in panels().items() for t in p["targets"]]


def emitted(judged_nights) -> dict[str, set[str]]:
    """metric name → its label names, over every judged night's export."""
    names: dict[str, set[str]] = {}
    for night in judged_nights.values():
        for family in text_string_to_metric_families(render(night.db, night.run_id)):
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_the_dashboard_is_valid_json_with_the_last_night_and_the_last_30():
    board = dashboard()
    assert board["uid"] == "cluster-eval-nightly"
    assert board["time"] == {"from": "now-30d", "to": "now"}
    found = panels()
    assert LAST_NIGHT | THIRTY_NIGHTS <= set(found)
    for title in LAST_NIGHT:  # the last exported values, whatever the time range
        assert all(t["instant"] and not t["range"] for t in found[title]["targets"]), title
    for title in THIRTY_NIGHTS:
        assert all(t["range"] and not t["instant"] for t in found[title]["targets"]), title
    for title, panel in found.items():
        assert panel["targets"], title
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_per_bucket_panels_show_each_bucket_and_per_check_panels_each_check():
    found = panels()
    for title, metric in [("Bucket quality (last night)", "cluster_eval_bucket_quality"),
                          ("Bucket error share (last night)", "cluster_eval_bucket_error_share"),
                          ("Bucket p99 latency (last night)",
                           "cluster_eval_bucket_p99_latency_seconds")]:
        (target,) = found[title]["targets"]
        assert metric_names(target["expr"]) == {metric}
        assert "by (check, bucket)" in target["expr"]
        assert target["legendFormat"] == "{{check}} / {{bucket}}"
    for title in ("Checks per night", "Worst bucket quality per check", "Breaches per check"):
        assert all(t["legendFormat"] == "{{check}}" for t in found[title]["targets"]), title


def test_every_query_names_only_metrics_the_exporter_emits(judged_nights):
    available = emitted(judged_nights)
    used: set[str] = set()
    for title, expr in exprs():
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= set(available), (title, names - set(available))
        used |= names
    # and the variables' label_values() queries name an emitted metric and its label
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
        assert match, variable["name"]
        metric, label = match.groups()
        assert label in available[metric], variable["name"]
    assert {"cluster_eval_run_verdict", "cluster_eval_check_status",
            "cluster_eval_bucket_quality", "cluster_eval_replay_spans_planned"} <= used


def _substituted(expr: str, baseline_key: str = "k") -> str:
    """A dashboard query as Grafana sends it for one key and every check."""
    return (expr.replace("$baseline_key", baseline_key).replace("$check", ".*")
            .replace("$__interval", "1h").replace("$__range", "30d"))


@needs_promtool
def test_promtool_parses_every_query(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": _substituted(expr)}
        for i, (_, expr) in enumerate(exprs())]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_verdict_and_checks_panels_show_what_the_gate_decided(tmp_path, judged_nights):
    """promtool evaluates the two panels' queries over the FAIL night's exported series:
    verdict 2 (FAIL), each check 1 pass / 2 fail / 0 not judged, as the gate said."""
    night = judged_nights["fail"]
    gate = night.gate
    text = render(night.db, night.run_id)
    (key,) = {s.labels["baseline_key"] for f in text_string_to_metric_families(text)
              for s in f.samples}
    found = panels()
    (verdict_target,) = found["Verdict"]["targets"]
    (checks_target,) = found["Checks (last night)"]["targets"]
    failed = {b.check for b in gate.breaches}
    codes = {c.check: (2 if c.check in failed else 1) if c.judged else 0 for c in gate.coverage}
    assert set(codes.values()) == {0, 1, 2}  # the night shows all three
    unit = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1h", "input_series": _series(text),
        "promql_expr_test": [
            {"expr": _substituted(verdict_target["expr"], key), "eval_time": "1h",
             "exp_samples": [{"labels": "{}", "value": {"PASS": 1, "FAIL": 2, "INVALID": 3}[
                 gate.verdict.value]}]},
            {"expr": _substituted(checks_target["expr"], key), "eval_time": "1h",
             "exp_samples": [{"labels": f'{{check="{check}"}}', "value": code}
                             for check, code in codes.items()]},
        ]}]}
    (tmp_path / "panels.test.yml").write_text(yaml.safe_dump(unit, allow_unicode=True))
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "test", "rules", "panels.test.yml"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the metric-name scanner the dashboard and rule tests rely on ----------------------------


@pytest.mark.parametrize(("expr", "names"), [
    ('time() - max(cluster_eval_run_timestamp_seconds{baseline_key="$baseline_key"})',
     {"cluster_eval_run_timestamp_seconds"}),
    ('a_total{x="b_total{"} and on (app, check) b == 1', {"a_total", "b"}),
    ("sum by (check) (rate(http_requests_total[5m] offset 1d)) / 1e3", {"http_requests_total"}),
    ('max_over_time(up{job=~"$job"}[$__interval]) unless ignoring(le) c:rec', {"up", "c:rec"}),
    ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ("26 * 3600 > bool 5", set()),
])
def test_the_scanner_finds_exactly_the_metric_names(expr, names):
    assert metric_names(expr) == names


def test_the_scanner_refuses_an_unknown_function():
    with pytest.raises(UnknownFunction, match="maxx"):
        metric_names("maxx(cluster_eval_run_verdict)")
