"""The real consumers take the export: node_exporter's textfile collector reads the
written file without a scrape error, and a Pushgateway accepts the push, serves it
under its group and replaces it with the next night's. Each binary is started on
127.0.0.1 by the test and stopped after it; the test is skipped, with the reason,
when the binary is not installed (Debian: prometheus-node-exporter,
prometheus-pushgateway)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exports.prometheus import PrometheusTarget, export_run

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(command: list[str], port: int) -> Iterator[str]:
    """Run ``command`` until its /metrics answers on ``port``; stop it afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/metrics", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{command[0]} did not start: "
                            f"{process.stderr.read().decode() if process.stderr else ''}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def scraped(url: str) -> list:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


@pytest.mark.skipif(NODE_EXPORTER is None, reason="node_exporter not installed "
                    "(Debian: apt-get install prometheus-node-exporter)")
def test_node_exporters_textfile_collector_reads_the_file(tmp_path, judged_nights):
    assert NODE_EXPORTER is not None
    night = judged_nights["fail"]
    folder = tmp_path / "textfile"
    folder.mkdir()
    export_run(night.db, night.run_id,
               PrometheusTarget(textfile=folder / "cluster_eval.prom"))
    port = _free_port()
    with serving([NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
                  f"--collector.textfile.directory={folder}",
                  f"--web.listen-address=127.0.0.1:{port}"], port) as url:
        samples = scraped(url)
    errors = [s.value for s in samples if s.name == "node_textfile_scrape_error"]
    assert errors == [0.0]
    verdict = {s.labels["verdict"]: s.value for s in samples
               if s.name == "cluster_eval_run_verdict"}
    assert verdict == {"PASS": 0.0, "FAIL": 1.0, "INVALID": 0.0}
    slo = [s for s in samples if s.name == "cluster_eval_check_status"
           and s.labels["check"] == "slo" and s.labels["status"] == "fail"]
    assert [s.value for s in slo] == [1.0]


@pytest.mark.skipif(PUSHGATEWAY is None, reason="Pushgateway not installed "
                    "(Debian: apt-get install prometheus-pushgateway)")
def test_a_pushgateway_takes_the_push_and_the_next_night_replaces_it(judged_nights):
    assert PUSHGATEWAY is not None
    port = _free_port()
    with serving([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"], port) as url:
        target = PrometheusTarget(pushgateway=url)
        first, second = judged_nights["invalid"], judged_nights["pass"]
        export_run(first.db, first.run_id, target)
        after_first = scraped(url)
        export_run(second.db, second.run_id, target)
        after_second = scraped(url)

    def runs(samples) -> list[tuple[str, str, str]]:
        return [(s.labels["run_id"], s.labels["job"], s.labels["baseline_key"])
                for s in samples if s.name == "cluster_eval_run_info"]

    def verdict(samples) -> str:
        (one,) = [s.labels["verdict"] for s in samples
                  if s.name == "cluster_eval_run_verdict" and s.value == 1.0]
        return one

    key = runs(after_first)[0][2]
    assert runs(after_first) == [(first.run_id, "cluster_eval", key)]
    assert verdict(after_first) == "INVALID"
    # same baseline key, same group: the second night replaced the first entirely
    assert runs(after_second) == [(second.run_id, "cluster_eval", key)]
    assert verdict(after_second) == "PASS"
    assert not [s for s in after_second if s.name == "push_failure_time_seconds"
                and s.value > 0]
