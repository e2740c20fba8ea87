"""Loader against hostile or broken input: several writers in one directory, bytes that
are not UTF-8, numbers and nesting the parser chokes on, clocks that are decades off.

Each test keeps every good record and finds each bad one in quarantine, named by file,
line and field.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from traffic.format import capture_file_name
from traffic.loader import load_capture_dir

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def record(request_id: str, arrival: float | datetime, **changes) -> dict:
    stamp = arrival.isoformat() if isinstance(arrival, datetime) else arrival
    return {
        "request_id": request_id,
        "arrival": stamp,
        "tenant_id": "acme",
        "body": BODY,
        **changes,
    }


def line(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def write_bytes(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def offsets_file(path: Path, n: int, bad: dict[int, bytes]) -> Path:
    """``n`` good offset records, line ``i`` (1-based) replaced by ``bad[i]``."""
    lines = [line(record(f"r{i}", float(i))) for i in range(1, n + 1)]
    for number, text in bad.items():
        lines[number - 1] = text
    return write_bytes(path, lines)


def quarantined(result) -> list[dict]:
    assert result.quarantine_path is not None
    return [json.loads(x) for x in result.quarantine_path.read_text("utf-8").splitlines()]


def good_ids(n: int, bad: set[int]) -> set[str]:
    return {f"r{i}" for i in range(1, n + 1) if i not in bad}


# --- several replicas writing into one capture directory ------------------------------


def write_capture(directory: Path, writer: str, opened: datetime, arrivals: list[datetime]):
    name = capture_file_name(opened, 1, ".jsonl", writer)
    rows = [line(record(f"{writer}-{i}", at)) for i, at in enumerate(arrivals)]
    return write_bytes(directory / name, rows)


def two_replicas(directory: Path) -> None:
    """replicaA opens its file a second before replicaB; both write 15 records."""
    opened_b = START + timedelta(seconds=1)
    for writer, opened, first in (("replicaA", START, 30), ("replicaB", opened_b, 45)):
        arrivals = [opened + timedelta(seconds=first + 60 * i) for i in range(15)]
        write_capture(directory, writer, opened, arrivals)


def writers(result) -> dict[str, int]:
    return dict(Counter(rec.request_id.split("-")[0] for rec in result.records))


def test_every_replica_in_a_shared_directory_is_loaded_in_a_window(tmp_path):
    two_replicas(tmp_path)
    result = load_capture_dir(tmp_path, START + timedelta(seconds=5), START + timedelta(hours=1))
    assert writers(result) == {"replicaA": 15, "replicaB": 15}
    assert result.n_bad == 0


def test_strict_clock_is_per_writer(tmp_path):
    two_replicas(tmp_path)  # the two files interleave in time: no clock went backwards
    result = load_capture_dir(tmp_path, strict_clock=True)
    assert writers(result) == {"replicaA": 15, "replicaB": 15}
    assert result.n_bad == 0


def test_a_superseded_file_of_one_writer_is_still_skipped(tmp_path):
    minute = timedelta(minutes=1)
    write_capture(tmp_path, "replicaA", START, [START + i * minute for i in range(10)])
    later = START + timedelta(minutes=10)
    path = write_capture(tmp_path, "replicaA", later, [later + i * minute for i in range(10)])
    path.rename(tmp_path / capture_file_name(later, 2, ".jsonl", "replicaA"))

    result = load_capture_dir(tmp_path, START + timedelta(minutes=12), START + timedelta(hours=1))
    assert [p.name[:24] for p in result.sources] == ["capture-20261123T081000."]
    assert result.n_good == 8


def test_a_journal_beside_its_finished_parquet_file_is_not_read_twice(tmp_path):
    arrivals = [START + timedelta(seconds=i) for i in range(5)]
    journal = write_capture(tmp_path, "replicaA", START, arrivals)
    frame = pl.DataFrame(
        {
            "request_id": [f"replicaA-{i}" for i in range(5)],
            "arrival": [START + timedelta(seconds=i) for i in range(5)],
            "tenant_id": ["acme"] * 5,
            "endpoint": ["/v1/chat/completions"] * 5,
            "body": [json.dumps(BODY)] * 5,
            "expect": pl.Series([None] * 5, dtype=pl.String),
            "tags": pl.Series([None] * 5, dtype=pl.String),
        }
    )
    frame.write_parquet(journal.with_suffix(".parquet"))

    result = load_capture_dir(tmp_path)
    assert [p.suffix for p in result.sources] == [".parquet"]
    assert result.n_good == 5 and result.n_bad == 0
