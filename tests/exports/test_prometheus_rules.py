"""The example alerting rules (deploy/prometheus/cluster-eval-alerts.yml): valid for
promtool, their own unit tests pass, they select only metrics the exporter emits,
and over the exporter's real output for judged nights they fire exactly when the
gate's verdict says they should."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cluster_eval.settings import PROJECT_ROOT
from exports.prometheus import METRICS, render
from tests.exports.promql import metric_names

RULES = PROJECT_ROOT / "deploy" / "prometheus" / "cluster-eval-alerts.yml"
RULE_TESTS = PROJECT_ROOT / "deploy" / "prometheus" / "cluster-eval-alerts.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian: apt-get install prometheus; or a Prometheus "
           "release tarball); the rules' metric names are still checked without it")


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def emitted(judged_nights) -> set[str]:
    names = set()
    for night in judged_nights.values():
        for family in text_string_to_metric_families(render(night.db, night.run_id)):
            names |= {s.name for s in family.samples}
    return names


def test_the_rules_alert_on_a_failed_check_an_invalid_run_and_a_missing_night():
    names = {rule["alert"] for rule in rules()}
    assert {"ClusterEvalCheckFailed", "ClusterEvalRunInvalid", "ClusterEvalNoRecentRun"} <= names
    stale = next(r for r in rules() if r["alert"] == "ClusterEvalNoRecentRun")
    assert "26 * 3600" in stale["expr"]


def test_every_metric_a_rule_selects_is_emitted_by_the_exporter(judged_nights):
    available = emitted(judged_nights)
    assert available == set(METRICS)
    for rule in rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= available, (rule["alert"], used - available)


@needs_promtool
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    checked = promtool("check", "rules", str(RULES), cwd=RULES.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def _escaped(label_value: str) -> str:
    return label_value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(exposition: str) -> list[dict]:
    """The exporter's samples as promtool input series, constant for 30 hours."""
    out = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escaped(v)}"' for k, v in sorted(sample.labels.items()))
            out.append({"series": f"{sample.name}{{{labels}}}", "values": f"{sample.value}x30"})
    return out


_LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")


def _annotations(rule: dict, labels: dict[str, str]) -> dict[str, str]:
    """The rule's annotations with their ``{{ $labels.x }}`` filled in (the only
    template the rules use), as Prometheus renders them."""
    out = {}
    for key, text in rule["annotations"].items():
        assert "{{" not in _LABEL.sub("", text), f"{rule['alert']}: template beyond $labels"
        out[key] = _LABEL.sub(lambda m: labels.get(m.group(1), ""), text)
    return out


@needs_promtool
@pytest.mark.parametrize("name", ["pass", "fail", "invalid", "thin"])
def test_the_rules_fire_on_the_exporters_output_as_the_verdict_says(
        tmp_path, judged_nights, name):
    """promtool evaluates the rules over this night's exported series (one hour later,
    far from the 26 h staleness alert) and must find exactly the alerts the gate's
    result implies."""
    night = judged_nights[name]
    gate = night.gate
    text = render(night.db, night.run_id)
    base = {s.labels["app"]: s.labels["baseline_key"] for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == "cluster_eval_run_timestamp_seconds"}
    ((app, key),) = base.items()
    by_name = {rule["alert"]: rule for rule in rules()}

    def alert(rule_name: str, **labels: str) -> dict:
        rule = by_name[rule_name]
        full = {"app": app, "baseline_key": key, **labels, **rule.get("labels", {})}
        return {"exp_labels": full, "exp_annotations": _annotations(rule, full)}

    expected: dict[str, list[dict]] = {
        "ClusterEvalCheckFailed": [
            alert("ClusterEvalCheckFailed", check=check, status="fail")
            for check in sorted({b.check for b in gate.breaches})
        ] if gate.verdict.value == "FAIL" else [],
        "ClusterEvalFailedOnInsufficientSamples": [
            alert("ClusterEvalFailedOnInsufficientSamples", verdict="FAIL")
        ] if gate.verdict.value == "FAIL" and not gate.breaches else [],
        "ClusterEvalRunInvalid": [alert("ClusterEvalRunInvalid", verdict="INVALID")]
        if gate.verdict.value == "INVALID" else [],
        "ClusterEvalNoRecentRun": [],
        "ClusterEvalMetricsAbsent": [],
    }
    assert set(expected) == set(by_name)
    # the run finished at Unix time ~1.8e9; promtool's clock starts at 0, so the
    # timestamp is shifted to "finished at 0" to keep the staleness rule meaningful
    series = [s if not s["series"].startswith("cluster_eval_run_timestamp_seconds")
              else {**s, "values": "0x30"} for s in _series(text)]
    shutil.copy(RULES, tmp_path / RULES.name)
    unit = {"rule_files": [RULES.name], "evaluation_interval": "1m",
            "tests": [{"interval": "1h", "input_series": series,
                       "alert_rule_test": [{"eval_time": "1h", "alertname": alert_name,
                                            "exp_alerts": alerts}
                                           for alert_name, alerts in expected.items()]}]}
    (tmp_path / "night.test.yml").write_text(yaml.safe_dump(unit, allow_unicode=True))
    result = promtool("test", "rules", "night.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    if name == "fail":
        assert expected["ClusterEvalCheckFailed"], "the FAIL night must page"


@needs_promtool
def test_promtool_lints_the_exposition_clean(judged_nights):
    """Naming and help-text conventions (promtool check metrics) hold for every night."""
    assert PROMTOOL is not None
    for night in judged_nights.values():
        result = subprocess.run([PROMTOOL, "check", "metrics"], capture_output=True, text=True,
                                input=render(night.db, night.run_id), timeout=120)
        assert result.returncode == 0 and not result.stdout + result.stderr, \
            result.stdout + result.stderr
