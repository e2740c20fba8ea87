"""Prometheus metrics of a judged run: what the gate decided, read back from the
warehouse, in the text exposition format; written atomically for node_exporter's
textfile collector or pushed to a (127.0.0.1) Pushgateway; never a secret.

The nights are built span by span and judged by the project's own code
(tests/exports/conftest.py); the expected values come from the gate's result and
the check tables, not from strings written here."""

from __future__ import annotations

import base64
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from checks.compute import CHECKS
from cluster_eval.cli import app
from exports.prometheus import (
    METRICS,
    PrometheusExportError,
    PrometheusTarget,
    export_run,
    render,
    without_credentials,
)
from tests.checks.test_verdict import KEY
from tests.conftest import loopback_server
from tests.exports.conftest import CLUSTER, DURATION_S, SECRET, JudgedNight
from warehouse import connect

Samples = dict[tuple[str, frozenset], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and label set."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    matches = [v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls]
    assert len(matches) == 1, (name, labels, len(matches))
    return matches[0]


def labelled(found: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(ls)[label]: v for (n, ls), v in found.items() if n == name}


# --- what a run exports ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["pass", "fail", "invalid", "thin"])
def test_the_verdict_and_every_check_status_are_the_gates(judged_nights, name):
    night: JudgedNight = judged_nights[name]
    found = samples(render(night.db, night.run_id))
    verdicts = labelled(found, "cluster_eval_run_verdict", "verdict")
    assert verdicts == {v: float(v == night.gate.verdict.value)
                        for v in ("PASS", "FAIL", "INVALID")}
    failed = {b.check for b in night.gate.breaches}
    for coverage in night.gate.coverage:
        expected = ("fail" if coverage.check in failed else "pass") if coverage.judged \
            else "not_judged"
        statuses = {dict(ls)["status"]: v for (n, ls), v in found.items()
                    if n == "cluster_eval_check_status" and dict(ls)["check"] == coverage.check}
        assert statuses == {s: float(s == expected) for s in ("pass", "fail", "not_judged")}, \
            coverage
        assert value(found, "cluster_eval_check_breaches", check=coverage.check) == \
            sum(1 for b in night.gate.breaches if b.check == coverage.check)
        assert value(found, "cluster_eval_check_insufficient_buckets", check=coverage.check) \
            == sum(1 for s in night.gate.insufficient
                   if s.check == coverage.check and s.bucket is not None)
    assert {c.check for c in night.gate.coverage} == set(CHECKS)


def test_the_nights_cover_every_status(judged_nights):
    """The parametrised test above sees each verdict and each check status."""
    verdicts = {n.gate.verdict.value for n in judged_nights.values()}
    assert verdicts == {"PASS", "FAIL", "INVALID"}
    fail = judged_nights["fail"].gate
    assert {b.check for b in fail.breaches} == {"slo"}
    assert not {c.check: c.judged for c in fail.coverage}["history"]
    thin = judged_nights["thin"].gate
    assert thin.verdict.value == "FAIL" and not thin.breaches and thin.insufficient


def test_bucket_metrics_are_the_check_tables_values(judged_nights):
    night = judged_nights["fail"]
    found = samples(render(night.db, night.run_id))
    with connect(night.db, read_only=True) as con:
        slo = con.execute("SELECT bucket, n, mean_quality, error_share, p99_latency_ms "
                          "FROM check_slo WHERE run_id = ?", [night.run_id]).fetchall()
        skew = con.execute("SELECT bucket, mean_quality, error_rate, p99_latency_ms "
                           "FROM check_replica_skew WHERE run_id = ?",
                           [night.run_id]).fetchall()
        kv = con.execute("SELECT dimension || '/' || bucket FROM check_kv_cache_eviction "
                         "WHERE run_id = ?", [night.run_id]).fetchall()
    assert slo and skew
    for bucket, n, quality, errors, p99_ms in slo:
        where = {"check": "slo", "bucket": bucket}
        assert value(found, "cluster_eval_bucket_requests", **where) == n
        assert value(found, "cluster_eval_bucket_quality", **where) == pytest.approx(quality)
        assert value(found, "cluster_eval_bucket_error_share", **where) == pytest.approx(errors)
        assert value(found, "cluster_eval_bucket_p99_latency_seconds", **where) == \
            pytest.approx(p99_ms / 1000)
    assert value(found, "cluster_eval_bucket_error_share", check="slo", bucket="run") == 0.5
    for bucket, quality, errors, p99_ms in skew:
        where = {"check": "replica_skew", "bucket": bucket}
        assert value(found, "cluster_eval_bucket_quality", **where) == pytest.approx(quality)
        assert value(found, "cluster_eval_bucket_error_share", **where) == pytest.approx(errors)
        assert value(found, "cluster_eval_bucket_p99_latency_seconds", **where) == \
            pytest.approx(p99_ms / 1000)
    # kv_cache_eviction's three dimensions share bucket names: one series each
    exported = {dict(ls)["bucket"] for (n, ls) in found
                if n == "cluster_eval_bucket_requests" and dict(ls)["check"] == "kv_cache_eviction"}
    assert exported == {row[0] for row in kv}
    assert len(kv) == len(exported)


def test_replay_fidelity_counts_planned_against_received(judged_nights):
    invalid = samples(render(judged_nights["invalid"].db, judged_nights["invalid"].run_id))
    assert labelled(invalid, "cluster_eval_replay_spans_planned", "mode") == \
        {"pinned": 48, "replay": 50}
    assert labelled(invalid, "cluster_eval_replay_spans_received", "mode") == \
        {"pinned": 48, "replay": 40}
    healthy = samples(render(judged_nights["pass"].db, judged_nights["pass"].run_id))
    assert value(healthy, "cluster_eval_replay_schedule_lag_p99_seconds") == 0.0
    assert value(healthy, "cluster_eval_telemetry_gap_share") == 0.0
    assert value(healthy, "cluster_eval_replica_id_share") == 1.0
    assert value(healthy, "cluster_eval_host_foreign_cpu_share") == 0.03
    assert value(healthy, "cluster_eval_host_memory_probe_seconds") == pytest.approx(0.0042)
    # a night with no host measurement (a remote cluster) leaves the series out
    assert not {"cluster_eval_host_foreign_cpu_share", "cluster_eval_host_memory_probe_seconds"
                } & {name for name, _ in invalid}


def test_run_identity_time_and_duration(judged_nights):
    night = judged_nights["pass"]
    found = samples(render(night.db, night.run_id))
    with connect(night.db, read_only=True) as con:
        ((finished, key),) = con.execute(
            "SELECT finished_at, baseline_key FROM runs WHERE run_id = ?",
            [night.run_id]).fetchall()
    assert value(found, "cluster_eval_run_timestamp_seconds") == finished.timestamp()
    assert value(found, "cluster_eval_run_duration_seconds") == DURATION_S
    (info,) = [dict(ls) for (n, ls) in found if n == "cluster_eval_run_info"]
    assert info == {"app": "llm", "baseline_key": key, "run_id": night.run_id,
                    "config_hash": "", "deployments": "LLMReplica"}
    # every series carries the comparable-nights identity, and only the info the run id
    for (name, ls) in found:
        labels = dict(ls)
        assert labels["app"] == "llm" and labels["baseline_key"] == key, name
        assert ("run_id" in labels) == (name == "cluster_eval_run_info"), name


def test_every_documented_metric_is_emitted_and_nothing_else(judged_nights):
    night = judged_nights["pass"]
    names = {family.name if family.type != "info" else family.name + "_info"
             for family in text_string_to_metric_families(render(night.db, night.run_id))}
    assert names == set(METRICS)


def test_no_secret_and_no_url_is_exported(judged_nights):
    for night in judged_nights.values():
        text = render(night.db, night.run_id)
        assert SECRET not in text
        assert "://" not in text and CLUSTER["serve_url"] not in text


def test_a_run_without_a_verdict_is_refused(tmp_path, judged_nights):
    from tests.checks.test_verdict import night
    from tests.exports.conftest import load_and_judge

    db, _ = load_and_judge(tmp_path, night(tmp_path, "unjudged", 1))
    with connect(db) as con:
        con.execute("UPDATE runs SET verdict = NULL, status = 'loaded'")
    with pytest.raises(PrometheusExportError, match="has no verdict yet"):
        render(db, "unjudged")
    with pytest.raises(PrometheusExportError, match="'nope' is not in the warehouse"):
        render(db, "nope")


# --- the textfile collector ------------------------------------------------------------


def test_the_textfile_is_replaced_atomically_and_parses(tmp_path, judged_nights, monkeypatch):
    night = judged_nights["fail"]
    target = tmp_path / "cluster_eval.prom"
    target.write_text("# an earlier night\n")
    renamed: list[tuple[str, str]] = []
    real_rename = os.rename

    def watch(src, dst, *args, **kwargs):
        renamed.append((str(src), str(dst)))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", watch)
    where = export_run(night.db, night.run_id, PrometheusTarget(textfile=target))
    assert where == str(target)
    # written beside it under another name, then renamed over it in one step
    ((src, dst),) = renamed
    assert dst == str(target) and Path(src).parent == tmp_path and src != dst
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster_eval.prom"]
    found = samples(target.read_text())
    assert value(found, "cluster_eval_run_verdict", verdict="FAIL") == 1.0


def test_a_textfile_target_must_be_a_prom_file_in_an_existing_folder(tmp_path, judged_nights):
    with pytest.raises(ValueError, match=r"must end in \.prom"):
        PrometheusTarget(textfile=tmp_path / "metrics.txt")
    with pytest.raises(ValueError, match="exactly one of textfile or pushgateway"):
        PrometheusTarget()
    night = judged_nights["pass"]
    missing = tmp_path / "no-such-dir" / "x.prom"
    with pytest.raises(PrometheusExportError, match="no-such-dir is not a directory"):
        export_run(night.db, night.run_id, PrometheusTarget(textfile=missing))


# --- the Pushgateway ---------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """A Pushgateway stand-in: records each request, answers ``status``."""

    requests: list[dict] = []
    status = 200

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).requests.append({"method": self.command, "path": self.path,
                                    "headers": dict(self.headers), "body": body.decode()})
        self.send_response(type(self).status)
        self.end_headers()
        if type(self).status >= 400:
            self.wfile.write(b"pushed metrics are invalid")

    do_PUT = do_POST = _record  # noqa: N815 (http.server's names)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pushgateway():
    Recorder.requests = []
    Recorder.status = 200
    with loopback_server(Recorder) as url:
        yield url


def test_push_replaces_the_group_of_the_baseline_key(judged_nights, pushgateway):
    night = judged_nights["invalid"]
    where = export_run(night.db, night.run_id, PrometheusTarget(pushgateway=pushgateway))
    assert where == f"{pushgateway} (job cluster_eval)"
    (request,) = Recorder.requests
    assert request["method"] == "PUT"  # replaces the group: last night's series go
    # the key holds spaces, so the grouping key is base64 (Pushgateway >= 0.9)
    key = base64.urlsafe_b64encode(KEY.encode()).decode()
    assert request["path"] == f"/metrics/job/cluster_eval/baseline_key@base64/{key}"
    assert "Authorization" not in request["headers"]
    found = samples(request["body"])
    assert value(found, "cluster_eval_run_verdict", verdict="INVALID") == 1.0
    assert value(found, "cluster_eval_check_status", check="measurement", status="fail") == 1.0


def test_credentials_in_the_pushgateway_url_become_basic_auth_and_are_never_shown(
        judged_nights, pushgateway):
    night = judged_nights["pass"]
    url = pushgateway.replace("http://", f"http://pusher:{SECRET}@")
    result = CliRunner().invoke(app, ["export", "prometheus", "--warehouse", str(night.db),
                                      "--run-id", night.run_id, "--pushgateway", url,
                                      "--job", "nightly"])
    assert result.exit_code == 0, result.output
    (request,) = Recorder.requests
    expected = base64.b64encode(f"pusher:{SECRET}".encode()).decode()
    assert request["headers"]["Authorization"] == f"Basic {expected}"
    assert request["path"].startswith("/metrics/job/nightly/")
    assert SECRET not in result.output and SECRET not in request["path"]
    assert SECRET not in request["body"]
    assert result.output.strip() == f"metrics of run {night.run_id} → {pushgateway} (job nightly)"


def test_a_refused_push_is_one_line_without_the_password(judged_nights, pushgateway):
    Recorder.status = 400
    night = judged_nights["pass"]
    url = pushgateway.replace("http://", f"http://pusher:{SECRET}@")
    result = CliRunner().invoke(app, ["export", "prometheus", "--warehouse", str(night.db),
                                      "--run-id", night.run_id, "--pushgateway", url])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0] == f"error: the Pushgateway at {pushgateway} refused the push: HTTP 400 " \
                       "Bad Request"
    assert SECRET not in result.output


def test_an_unreachable_pushgateway_is_one_line_without_the_password(judged_nights):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    night = judged_nights["pass"]
    result = CliRunner().invoke(app, [
        "export", "prometheus", "--warehouse", str(night.db), "--run-id", night.run_id,
        "--pushgateway", f"http://pusher:{SECRET}@127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert result.output.startswith(
        f"error: cannot push to the Pushgateway at http://127.0.0.1:{port}: ")
    assert len(result.output.strip().splitlines()) == 1
    assert SECRET not in result.output and "Traceback" not in result.output


# --- the command line -------------------------------------------------------------------


def test_the_command_writes_the_textfile_and_stdout_prints_the_same_metrics(
        tmp_path, judged_nights):
    night = judged_nights["fail"]
    prom = tmp_path / "cluster_eval.prom"
    written = CliRunner().invoke(app, ["export", "prometheus", "--warehouse", str(night.db),
                                       "--run-id", night.run_id, "--textfile", str(prom)])
    assert written.exit_code == 0, written.output
    assert written.output.strip() == f"metrics of run {night.run_id} → {prom}"
    printed = CliRunner().invoke(app, ["export", "prometheus", "--warehouse", str(night.db),
                                       "--run-id", night.run_id, "--stdout"])
    assert printed.exit_code == 0
    assert samples(printed.output) == samples(prom.read_text())


@pytest.mark.parametrize(("args", "expected"), [
    (["--run-id", "nope", "--stdout"], "run 'nope' is not in the warehouse"),
    (["--run-id", "r"], "give exactly one of --textfile PATH.prom, --pushgateway URL or --stdout"),
    (["--run-id", "r", "--textfile", "x.txt"], "must end in .prom"),
    (["--run-id", "r", "--pushgateway", f"ftp://u:{SECRET}@host"],
     "pushgateway 'ftp://***@host' is not an http:// or https:// URL"),
    (["--run-id", "r", "--stdout", "--textfile", "x.prom"], "--stdout prints the metrics"),
    (["--run-id", "r", "--job", "", "--textfile", "x.prom"], "--job: String should have"),
])
def test_bad_input_is_one_line_and_exit_2(judged_nights, args, expected):
    db = judged_nights["pass"].db
    result = CliRunner().invoke(app, ["export", "prometheus", "--warehouse", str(db), *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert SECRET not in result.output


@pytest.mark.parametrize("content", [b"not a database\n", b"\x89PNG\r\n\x1a\n\x00" * 300])
def test_a_warehouse_that_is_not_duckdb_is_exit_2(tmp_path, content):
    bogus = tmp_path / "notes.duckdb"
    bogus.write_bytes(content)
    result = CliRunner().invoke(app, ["export", "prometheus", "--warehouse", str(bogus),
                                      "--run-id", "r", "--stdout"])
    assert result.exit_code == 2
    assert "is not a cluster-eval warehouse" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_credentials_are_removed_from_any_url_in_a_message():
    assert without_credentials("push to https://u:p@gw:9091/x failed; http://gw ok") == \
        "push to https://***@gw:9091/x failed; http://gw ok"


def test_the_export_never_writes_to_the_global_registry(judged_nights):
    from prometheus_client import REGISTRY, generate_latest

    night = judged_nights["pass"]
    assert "cluster_eval_run_verdict" in render(night.db, night.run_id)
    assert b"cluster_eval_" not in generate_latest(REGISTRY)
