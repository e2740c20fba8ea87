"""Benchmark: what a judged night costs after the gate — the report with its plots,
and the OTLP export of every span.

    python benchmarks/report_exports.py [--spans 600 10000]

For each size: a warehouse with N synthetic spans (benchmarks/synthetic_run.sql: 1 h of
traffic, 8 replicas, 50 tenants, 1 Hz telemetry) and their checks; then, each timed on
its own, ``write_report`` (the page, the timeline of the night and the 30-night trend,
with the bucket assignment staged again as the flow's report task does) and
``export_run`` to an OTLP/HTTP receiver on 127.0.0.1 that answers 200 and keeps
nothing (so the figure is the exporter's cost, not a collector's). Prints the times
and the sizes of what was written.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from checks_speed import build_warehouse  # beside this script

from checks.compute import run_checks
from checks.report import write_report
from checks.thresholds import Thresholds
from exports.otlp import OtlpTarget, export_run
from warehouse import connect

RUN_ID = "bench"  # the synthetic run's id


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def bench(n: int) -> None:
    thresholds = Thresholds()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        build_warehouse(db, n)
        with connect(db) as con:
            run_checks(con, RUN_ID, thresholds)

        started = time.perf_counter()
        page = write_report(db, RUN_ID, Path(tmp) / "report", thresholds)
        report_s = time.perf_counter() - started
        sizes = {p.name: p.stat().st_size for p in page.parent.iterdir()}

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            target = OtlpTarget(endpoint=f"http://127.0.0.1:{server.server_port}")
            started = time.perf_counter()
            result = export_run(db, RUN_ID, target, environ={}, thresholds=thresholds)
            export_s = time.perf_counter() - started
        finally:
            server.shutdown()

    print(f"{n:>7} spans | report {report_s:6.2f} s ("
          + ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in sorted(sizes.items()))
          + f") | OTLP export {export_s:6.2f} s, {result.spans} spans, "
          f"{result.spans / export_s:,.0f} spans/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, nargs="+", default=[600, 10_000])
    for n in parser.parse_args().spans:
        bench(n)


if __name__ == "__main__":
    main()
