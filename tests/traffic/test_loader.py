"""Loader: every good line kept, each kind of bad line quarantined with where and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from traffic.errors import TrafficError, TrafficFormatError
from traffic.format import TrafficRecord, capture_file_name
from traffic.loader import load_capture_dir, load_traffic
from traffic.writer import write_traffic

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def good(i: int, arrival: float | str | None = None) -> dict:
    return {
        "request_id": f"r{i}",
        "arrival": float(i) if arrival is None else arrival,
        "tenant_id": "acme",
        "body": BODY,
    }


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def quarantined(result) -> list[dict]:
    return [json.loads(line) for line in result.quarantine_path.read_text().splitlines()]


def test_keeps_every_good_line_and_quarantines_each_bad_kind(tmp_path):
    lines = [json.dumps(good(i)) for i in range(40)]
    lines[3] = '{"request_id": "r3", "arrival": 3.0, '  # bad JSON
    missing = good(10)
    del missing["tenant_id"]
    lines[10] = json.dumps(missing)  # missing field
    lines[20] = json.dumps({**good(20), "arrival": "soon"})  # wrong type
    lines[30] = json.dumps({**good(30), "body": "not an object"})  # wrong type
    path = write_lines(tmp_path / "t.jsonl", lines)

    result = load_traffic(path, max_bad_share=0.2)

    assert (result.n_total, result.n_bad, result.n_good) == (40, 4, 36)
    assert {r.request_id for r in result.records} == {f"r{i}" for i in range(40)} - {
        "r3",
        "r10",
        "r20",
        "r30",
    }
    bad = quarantined(result)
    assert [(b["line"], b["field"]) for b in bad] == [
        (4, None),
        (11, "tenant_id"),
        (21, "arrival"),
        (31, "body"),
    ]
    assert "bad JSON" in bad[0]["reason"]
    assert bad[1]["reason"] == "missing"
    assert all(b["file"] == str(path) for b in bad)
    assert result.quarantine_path == path.with_name("t.jsonl.quarantine.jsonl")


def test_strict_clock_quarantines_a_clock_step_back(tmp_path):
    arrivals = [0.0, 1.0, 2.0, 1.5, 3.0]
    lines = [json.dumps(good(i, a)) for i, a in enumerate(arrivals)]
    path = write_lines(tmp_path / "t.jsonl", lines)

    relaxed = load_traffic(path)
    assert relaxed.n_bad == 0
    assert [r.request_id for r in relaxed.records] == ["r0", "r1", "r3", "r2", "r4"]

    strict = load_traffic(
        path, strict_clock=True, max_bad_share=0.5, quarantine_path=tmp_path / "q.jsonl"
    )
    assert strict.n_bad == 1
    (bad,) = quarantined(strict)
    assert (bad["line"], bad["field"]) == (4, "arrival")
    assert "backwards" in bad["reason"]
    assert strict.quarantine_path == tmp_path / "q.jsonl"


def test_share_limit_raises_naming_file_line_and_field(tmp_path):
    lines = [json.dumps(good(i)) for i in range(10)]
    lines[2] = json.dumps({**good(2), "tenant_id": 7})
    lines[5] = "not json"
    path = write_lines(tmp_path / "t.jsonl", lines)

    with pytest.raises(TrafficFormatError) as caught:
        load_traffic(path)

    error = caught.value
    assert isinstance(error, TrafficError)
    assert (error.file, error.line, error.field) == (str(path), 3, "tenant_id")
    message = str(error)
    assert str(path) in message and "line 3" in message and "'tenant_id'" in message
    assert "line 6" in message  # the first few bad lines are all named
    assert "2 of 10" in message
    assert (tmp_path / "t.jsonl.quarantine.jsonl").exists()  # written even when raising


def test_timestamps_become_offsets_from_the_first(tmp_path):
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    lines = [
        json.dumps(good(i, (start + timedelta(seconds=s)).isoformat()))
        for i, s in enumerate([5.0, 0.0, 2.5])
    ]
    result = load_traffic(write_lines(tmp_path / "t.jsonl", lines))
    assert [r.arrival for r in result.records] == [0.0, 2.5, 5.0]
    assert result.start == start


def test_mixed_arrival_kinds_and_duplicates_are_bad(tmp_path):
    lines = [json.dumps(good(i)) for i in range(30)]
    lines.append(json.dumps(good(99, "2026-11-23T02:00:00Z")))
    lines.append(json.dumps(good(0)))
    result = load_traffic(write_lines(tmp_path / "t.jsonl", lines), max_bad_share=0.1)
    assert [(b.line, b.field) for b in result.bad] == [(31, "arrival"), (32, "request_id")]


def test_empty_file_and_missing_file_raise(tmp_path):
    with pytest.raises(TrafficFormatError, match="no traffic records"):
        load_traffic(write_lines(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(TrafficFormatError, match="no such traffic file"):
        load_traffic(tmp_path / "absent.jsonl")


def records(n: int) -> list[TrafficRecord]:
    return [
        TrafficRecord(
            request_id=f"r{i}",
            arrival=i * 0.5,
            tenant_id="acme" if i % 2 else "globex",
            body={**BODY, "response_format": {"type": "json_object"}, "stop": None},
            expect={"reference": str(i), "answerable": True} if i % 3 == 0 else None,
            tags={"task": "math"} if i % 2 else {},
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip(tmp_path, suffix):
    original = records(7)
    loaded = load_traffic(write_traffic(original, tmp_path / f"t{suffix}"))
    assert loaded.n_bad == 0
    assert [r.model_dump() for r in loaded.records] == [r.model_dump() for r in original]


def test_parquet_holds_json_text_columns_and_reports_rows(tmp_path):
    path = write_traffic(records(40), tmp_path / "t.parquet")
    frame = pl.read_parquet(path)
    assert frame.schema["body"] == pl.String and frame.schema["arrival"] == pl.Float64
    assert json.loads(frame["body"][0]) == {
        **BODY,
        "response_format": {"type": "json_object"},
        "stop": None,
    }

    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit("{oops"))
        .otherwise(pl.col("body"))
        .alias("body"),
        pl.when(pl.int_range(pl.len()) == 9)
        .then(None)
        .otherwise(pl.col("tenant_id"))
        .alias("tenant_id"),
    )
    broken.write_parquet(tmp_path / "broken.parquet")
    result = load_traffic(tmp_path / "broken.parquet", max_bad_share=0.1)
    assert result.n_good == 38
    assert [(b["row"], b["field"]) for b in quarantined(result)] == [(5, "body"), (10, "tenant_id")]

    with pytest.raises(TrafficFormatError, match="row 5"):
        load_traffic(tmp_path / "broken.parquet", max_bad_share=0.01)


def test_parquet_with_timestamps(tmp_path):
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    stamped = [
        r.model_copy(update={"arrival": start + timedelta(seconds=r.arrival)}) for r in records(3)
    ]
    result = load_traffic(write_traffic(stamped, tmp_path / "t.parquet"))
    assert [r.arrival for r in result.records] == [0.0, 0.5, 1.0]
    assert result.start == start


def test_capture_dir_date_window(tmp_path):
    day = datetime(2026, 11, 23, tzinfo=UTC)
    for hour in (0, 6, 12, 18):  # one file per 6 h, one record per hour
        opened = day + timedelta(hours=hour)
        rows = [
            good(hour + h, (opened + timedelta(hours=h, minutes=1)).isoformat()) for h in range(6)
        ]
        write_lines(
            tmp_path / capture_file_name(opened, hour, ".jsonl", "host.1"),
            [json.dumps(r) for r in rows],
        )
    (tmp_path / "notes.txt").write_text("not a capture file")

    result = load_capture_dir(tmp_path, day + timedelta(hours=8), day + timedelta(hours=13))
    assert [r.request_id for r in result.records] == ["r8", "r9", "r10", "r11", "r12"]
    assert [p.name[:24] for p in result.sources] == [
        "capture-20261123T060000.",
        "capture-20261123T120000.",
    ]
    assert result.start == day + timedelta(hours=8, minutes=1)
    assert result.records[-1].arrival == 4 * 3600.0

    everything = load_capture_dir(tmp_path)
    assert everything.n_good == 24


def test_unwritable_quarantine_is_a_format_error_not_a_traceback(tmp_path):
    lines = [json.dumps(good(i)) for i in range(30)] + ["{broken"]
    path = write_lines(tmp_path / "t.jsonl", lines)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TrafficFormatError, match="cannot write the quarantine file"):
        load_traffic(path, quarantine_path=blocker / "q.jsonl")
