"""A replica that dies loses at most the last ``flush_interval`` of captured records, in
JSONL and in Parquet: a Parquet capture keeps a JSONL journal until its file is built."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from traffic.capture import CaptureMiddleware, CaptureWriter
from traffic.loader import PARQUET_VERSION_KEY, load_capture_dir

DIE_AFTER_CAPTURING = textwrap.dedent(
    """
    import asyncio, os, sys, time
    directory, file_format, here = sys.argv[1:]
    sys.path.insert(0, here)
    from traffic.capture import CaptureWriter
    from test_capture_durability import send

    writer = CaptureWriter(directory, file_format=file_format, flush_interval=0.05).start()
    asyncio.run(send(writer, 20))
    deadline = time.monotonic() + 3.0  # a few flush intervals, then the replica dies
    while time.monotonic() < deadline and writer.stats.written < 20:
        time.sleep(0.05)
    time.sleep(0.2)
    os._exit(9)  # no close(), no atexit, no finally: what a killed replica does
    """
)


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_records_survive_a_replica_that_dies_without_closing(tmp_path, file_format):
    script = tmp_path / "die.py"
    script.write_text(DIE_AFTER_CAPTURING)
    capture = tmp_path / "capture"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script), str(capture), file_format, str(Path(__file__).parent)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 9, done.stderr

    loaded = load_capture_dir(capture)
    assert sorted(r.request_id for r in loaded.records) == sorted(f"r{i}" for i in range(20))
    assert loaded.n_bad == 0


async def ok(scope, receive, send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def send(writer: CaptureWriter, n: int) -> None:
    """``n`` chat requests through the capture middleware, ids r0, r1, …"""
    app = CaptureMiddleware(ok, writer=writer)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://capture.test") as client:
        for i in range(n):
            response = await client.post(
                "/v1/chat/completions", json=body, headers={"x-request-id": f"r{i}"}
            )
            assert response.status_code == 200


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_parquet_records_are_on_disk_within_a_flush_and_close_builds_the_files(tmp_path):
    writer = CaptureWriter(tmp_path, file_format="parquet", rotate_records=5, flush_interval=0.02)
    writer.start()
    asyncio.run(send(writer, 12))
    wait_for(lambda: writer.stats.written == 12)

    live = load_capture_dir(tmp_path)  # while the writer still runs
    assert live.n_good == 12
    assert sorted(p.suffix for p in live.sources) == [".jsonl", ".parquet", ".parquet"]

    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert [Path(name).suffix for name in files] == [".parquet"] * 3  # journals removed
    assert load_capture_dir(tmp_path).n_good == 12
    for name in files:
        assert pl.read_parquet_metadata(tmp_path / name)[PARQUET_VERSION_KEY] == "1"
