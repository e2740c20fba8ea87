"""Chaos on the real stack: the flow's process is SIGKILLed while its replay runs.

The warehouse already holds one finished (judged) night. A second night is started
as its own process against the embedded stack and the same warehouse, and killed —
with everything it started — once its replay has logged answers. The warehouse file
is then byte for byte what it was: no row of the killed night, no half-written run,
nothing of the first night changed. What the killed replay had answered is in its
span log, one span per request at most.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from cluster_eval.settings import PROJECT_ROOT
from flows import pipeline
from traffic.format import TrafficRecord
from traffic.loader import load_traffic
from traffic.replay import span_logs
from traffic.spans import Span, read_span_log, write_spans
from traffic.writer import write_traffic
from warehouse import RunInfo

pytestmark = pytest.mark.stack

MODEL = "smollm2-135m-instruct"
NIGHT = 40  # requests of the killed night, 2 a second
FLOW = """
import sys
from flows.cluster_eval import cluster_eval
serve_config, traffic, golden, warehouse, out_dir = sys.argv[1:]
cluster_eval(serve_config=serve_config, traffic=traffic, golden=golden, warehouse=warehouse,
             out_dir=out_dir, golden_rounds=0, tenant_burst={"enabled": False},
             baseline_key="", request_timeout_s=60.0)
"""


def finished_night(db: Path, work: Path) -> str:
    """One night loaded, checked and judged, from 40 spans written here (no replay)."""
    t0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC).timestamp()
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi."}]})
    spans = [Span(
        span_id=f"replay:r{i}:", request_id=f"r{i}", mode="replay", tenant_id="ab"[i % 2],
        endpoint="/v1/chat/completions", intended_at=t0 + i, sent_at=t0 + i + 0.001,
        schedule_lag_ms=1.0, latency_ms=800.0 + i, ttft_ms=90.0, status="ok",
        request_body=body, output_text="Hello!", finish_reason="stop", prompt_tokens=20,
        completion_tokens=3, cached_tokens=0, replica_id=f"rep-{'ab'[i % 2]}",
        replica_queue_depth=1) for i in range(40)]
    write_spans(spans, work / "spans.parquet")
    telemetry = pipeline.empty_telemetry(work / "telemetry.parquet")
    pipeline.score(work / "spans.parquet", None, work / "scores.parquet")
    run = RunInfo(run_id="night-1", started_at=datetime.fromtimestamp(t0, UTC),
                  finished_at=datetime.fromtimestamp(t0 + 60, UTC),
                  config={"applications": [{"name": "llm"}]},
                  cluster={"replicas": ["rep-a", "rep-b"]}, plan={"planned": {"replay": 40}})
    pipeline.load_warehouse(db, run, work / "spans.parquet", telemetry, work / "scores.parquet")
    pipeline.evaluate(db, run.run_id, None, work / "data-docs")
    return run.run_id


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}


def night_traffic(path: Path) -> Path:
    return write_traffic([TrafficRecord(
        request_id=f"night-2-{i:02d}", arrival=i * 0.5, tenant_id="ab"[i % 2],
        body={"model": MODEL, "max_tokens": 32, "temperature": 0,
              "messages": [{"role": "user", "content": f"Name {i % 7 + 2} colours."}]},
    ) for i in range(NIGHT)], path)


def group_alive(pgid: int) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] not in ("Z", "X"):
                alive.append(int(entry.name))
    return alive


def test_a_flow_killed_mid_replay_leaves_the_warehouse_unchanged(stack, prefect_server,
                                                                 tmp_path):
    from prefect.settings import PREFECT_API_URL

    db = tmp_path / "warehouse.duckdb"
    first = finished_night(db, tmp_path)
    rows = snapshot(db)
    assert [r[0] for r in rows["runs"]] == [first] and len(rows["spans"]) == 40
    digest = hashlib.sha256(db.read_bytes()).hexdigest()

    golden = tmp_path / "golden.jsonl"
    golden.write_text("".join(PROJECT_ROOT.joinpath("traffic/golden/golden.jsonl")
                              .read_text().splitlines(keepends=True)[:2]))
    traffic = night_traffic(tmp_path / "night-2.jsonl")
    out = tmp_path / "runs"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    output = tmp_path / "night-2.log"
    with output.open("w") as log_file:
        night = subprocess.Popen(
            [sys.executable, "-c", FLOW, str(stack.config_path), str(traffic), str(golden),
             str(db), str(out)],
            cwd=PROJECT_ROOT, env=env, start_new_session=True,
            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        logged = 0
        while logged == 0:
            assert night.poll() is None, f"the flow ended first: {output.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the replay never logged a span"
            time.sleep(0.2)
            logs = [log for run_dir in out.glob("*") for log in span_logs(run_dir / "replay")]
            logged = sum(read_span_log(log).num_rows for log in logs)
        os.killpg(night.pid, signal.SIGKILL)
        night.wait(timeout=30)
    finally:
        if night.poll() is None:
            os.killpg(night.pid, signal.SIGKILL)
            night.wait()
    deadline = time.monotonic() + 10
    while group_alive(night.pid):
        assert time.monotonic() < deadline, f"left behind: {group_alive(night.pid)}"
        time.sleep(0.2)

    (killed_dir,) = out.glob("*")
    assert not (killed_dir / "spans.parquet").exists()  # it never got to load anything
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert not db.with_name(db.name + ".wal").exists()
    after = snapshot(db)
    assert after == rows
    assert killed_dir.name not in {r[0] for r in after["runs"]}
    # what the killed replay had answered stayed on disk, each request once at most
    (log,) = span_logs(killed_dir / "replay")
    kept = read_span_log(log).column("span_id").to_pylist()
    sent = {f"replay:{r.request_id}:" for r in load_traffic(killed_dir / "traffic.jsonl").records}
    assert 0 < len(kept) < NIGHT and len(set(kept)) == len(kept) and set(kept) <= sent
