"""The flow's optional ``export_prometheus`` step: off by default, validated as a flow
parameter, and whatever goes wrong it logs one warning without a credential and
returns, so the verdict stands. Run as the task's plain function (no Prefect server);
the flow's wiring with a server is tests/flows/test_flow_wiring.py's kind of test."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler

import pytest
from prefect.exceptions import ParameterTypeError
from prometheus_client.parser import text_string_to_metric_families

from exports.prometheus import PrometheusTarget
from flows import cluster_eval as flow_module
from flows import pipeline
from tests.conftest import loopback_server
from tests.exports.conftest import SECRET

LOGGER = "tests.exports.flow_step"


@pytest.fixture
def step(monkeypatch, caplog):
    """The task's function, logging to a plain logger captured by caplog."""
    monkeypatch.setattr(flow_module, "get_run_logger", lambda: logging.getLogger(LOGGER))
    caplog.set_level(logging.INFO, logger=LOGGER)
    return flow_module.export_prometheus.fn


def test_the_export_is_off_by_default_and_validated_as_a_parameter():
    schema = flow_module.cluster_eval.parameters.model_dump()
    assert "prometheus" in schema["properties"]
    assert "prometheus" not in schema.get("required", [])
    ok = flow_module.cluster_eval.validate_parameters(
        {"prometheus": {"textfile": "/var/lib/node_exporter/textfile/cluster_eval.prom"}})
    assert isinstance(ok["prometheus"], PrometheusTarget)
    with pytest.raises(ParameterTypeError, match="must end in .prom"):
        flow_module.cluster_eval.validate_parameters({"prometheus": {"textfile": "x.txt"}})
    with pytest.raises(ParameterTypeError, match="exactly one of textfile or pushgateway"):
        flow_module.cluster_eval.validate_parameters({"prometheus": {}})


def test_the_step_writes_the_metrics_and_says_where(tmp_path, judged_nights, step, caplog):
    night = judged_nights["fail"]
    prom = tmp_path / "cluster_eval.prom"
    assert step(night.db, night.run_id, PrometheusTarget(textfile=prom)) is None
    names = {f.name for f in text_string_to_metric_families(prom.read_text())}
    assert "cluster_eval_run_verdict" in names
    assert [r.getMessage() for r in caplog.records] == [
        f"Prometheus metrics of run {night.run_id} → {prom}"]


class Refusing(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_failed_push_is_a_warning_without_the_password(judged_nights, step, caplog):
    night = judged_nights["pass"]
    with loopback_server(Refusing) as url:
        target = PrometheusTarget(pushgateway=url.replace("http://", f"http://u:{SECRET}@"))
        assert step(night.db, night.run_id, target) is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"Prometheus export failed, the verdict stands: the Pushgateway at {url} refused "
        "the push: HTTP 503 Service Unavailable")
    assert SECRET not in caplog.text


def test_an_unexpected_error_is_named_by_its_type_only(judged_nights, step, caplog,
                                                       monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError(f"connecting with password {SECRET}")

    monkeypatch.setattr(pipeline, "export_prometheus", broken)
    night = judged_nights["pass"]
    assert step(night.db, night.run_id, PrometheusTarget(textfile=tmp_path / "x.prom")) is None
    (record,) = caplog.records
    assert record.getMessage() == "Prometheus export failed, the verdict stands: RuntimeError"
    assert SECRET not in caplog.text
