"""docs/exports.md documents every metric, alert and command of the Prometheus export,
and the README links it."""

from __future__ import annotations

import typer

from cluster_eval.settings import PROJECT_ROOT
from exports.prometheus import METRICS
from exports.prometheus_cli import register
from tests.exports.test_prometheus_rules import rules

DOC = (PROJECT_ROOT / "docs" / "exports.md").read_text()


def test_every_metric_is_documented():
    for name in METRICS:
        assert f"| `{name}` |" in DOC, name


def test_every_alert_is_documented():
    for rule in rules():
        assert f"| `{rule['alert']}` |" in DOC, rule["alert"]


def test_the_command_and_the_flow_parameter_are_documented():
    app = typer.Typer()
    register(app)
    (group,) = app.registered_groups
    for command in group.typer_instance.registered_commands:
        assert f"cluster-eval export {command.name}" in DOC, command.name
    assert "prometheus: {textfile:" in DOC
    assert "deploy/grafana/cluster-eval.json" in DOC


def test_the_readme_links_the_exports_doc():
    assert "(docs/exports.md)" in (PROJECT_ROOT / "README.md").read_text()
