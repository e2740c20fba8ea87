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
from traffic.loader import load_capture_dir, load_traffic

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


# --- bytes and numbers the parser chokes on ---------------------------------------------


def test_an_integer_past_the_digit_limit_is_quarantined_naming_its_field(tmp_path):
    huge = b'{"request_id": "r5", "arrival": 5.0, "tenant_id": "acme", "body": {"model": "m", '
    huge += b'"messages": [], "max_tokens": ' + b"9" * 5000 + b"}}"
    result = load_traffic(offsets_file(tmp_path / "t.jsonl", 40, {5: huge}))

    assert {r.request_id for r in result.records} == good_ids(40, {5})
    (bad,) = quarantined(result)
    assert (bad["line"], bad["field"]) == (5, "body.max_tokens")
    assert "5000 digits" in bad["reason"]


def test_deep_nesting_is_quarantined_not_a_recursion_error(tmp_path):
    too_deep = b'{"request_id": "r3", "arrival": 3.0, "tenant_id": "a", "body": {"x": '
    too_deep += b"[" * 100_000 + b"]" * 100_000 + b"}}"
    deep = line(record("r7", 7.0, body={**BODY, "metadata": _nested(150)}))
    result = load_traffic(offsets_file(tmp_path / "t.jsonl", 40, {3: too_deep, 7: deep}))

    assert {r.request_id for r in result.records} == good_ids(40, {3, 7})
    first, second = quarantined(result)
    assert first["line"] == 3 and "nested" in first["reason"]
    assert (second["line"], second["field"]) == (7, "body.metadata")
    assert "nested more than" in second["reason"]


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_bytes_that_are_not_utf8_are_quarantined_naming_field_and_byte(tmp_path):
    latin1 = line(record("r4", 4.0, body={**BODY, "messages": [{"role": "user", "content": "X"}]}))
    latin1 = latin1.replace(b'"X"', b'"caf\xe9"')
    broken = b'{"request_id": "r9", \xff\xfe}'
    result = load_traffic(offsets_file(tmp_path / "t.jsonl", 40, {4: latin1, 9: broken}))

    assert {r.request_id for r in result.records} == good_ids(40, {4, 9})
    assert all("\ufffd" not in json.dumps(r.body) for r in result.records)
    first, second = quarantined(result)
    assert (first["line"], first["field"]) == (4, "body.messages.0.content")
    assert "not UTF-8" in first["reason"] and "0xe9" in first["reason"]
    assert "caf\\xe9" in first["raw"]  # the raw line shows the byte, not U+FFFD
    assert (second["line"], second["field"]) == (9, None)
    assert "not UTF-8" in second["reason"] and "0xff" in second["reason"]


def test_an_escaped_lone_surrogate_is_quarantined(tmp_path):
    lone = line(record("r2", 2.0, tenant_id="X")).replace(b'"X"', b'"\\ud800"')
    result = load_traffic(offsets_file(tmp_path / "t.jsonl", 40, {2: lone}))
    assert {r.request_id for r in result.records} == good_ids(40, {2})
    (bad,) = quarantined(result)
    assert (bad["line"], bad["field"]) == (2, "tenant_id")
    assert "surrogate" in bad["reason"]


def test_nan_and_overflowing_numbers_are_not_json(tmp_path):
    nan = line(record("r2", 2.0, body={**BODY, "temperature": 0.5})).replace(b"0.5", b"NaN")
    big = line(record("r6", 6.0, body={**BODY, "temperature": 0.5})).replace(b"0.5", b"1e999")
    result = load_traffic(offsets_file(tmp_path / "t.jsonl", 40, {2: nan, 6: big}))
    assert {r.request_id for r in result.records} == good_ids(40, {2, 6})
    first, second = quarantined(result)
    assert (first["field"], second["field"]) == ("body.temperature", "body.temperature")
    assert "NaN" in first["reason"] and "1e999" in second["reason"]


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = offsets_file(tmp_path / "t.jsonl", 10, {})
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = load_traffic(path)
    assert result.n_bad == 0 and result.n_good == 10


def test_form_feed_and_other_non_json_whitespace_lines_are_bad_not_blank(tmp_path):
    path = offsets_file(tmp_path / "t.jsonl", 40, {8: b"\x0c", 9: b"  \t\r"})
    result = load_traffic(path)
    assert result.n_good == 38 and result.n_total == 39  # line 9 is blank, line 8 is not
    assert [b["line"] for b in quarantined(result)] == [8]


# --- clocks that are decades off ---------------------------------------------------------


def stamped_file(path: Path, n: int, bad: dict[int, str]) -> Path:
    rows = [record(f"r{i}", START + timedelta(seconds=i)) for i in range(1, n + 1)]
    for number, stamp in bad.items():
        rows[number - 1]["arrival"] = stamp
    return write_bytes(path, [line(r) for r in rows])


def test_a_1970_timestamp_is_quarantined_instead_of_shifting_the_night(tmp_path):
    path = stamped_file(tmp_path / "t.jsonl", 40, {6: "1970-01-01T00:00:00Z"})
    result = load_traffic(path)

    assert {r.request_id for r in result.records} == good_ids(40, {6})
    assert result.start == START + timedelta(seconds=1)
    assert result.records[-1].arrival == 39.0  # not 57 years
    (bad,) = quarantined(result)
    assert (bad["line"], bad["field"]) == (6, "arrival")
    assert "before 2000-01-01" in bad["reason"]


def test_a_timestamp_decades_ahead_is_quarantined(tmp_path):
    path = stamped_file(tmp_path / "t.jsonl", 40, {1: "2090-01-01T00:00:00Z"})
    result = load_traffic(path)
    assert {r.request_id for r in result.records} == good_ids(40, {1})
    assert result.records[-1].arrival == 38.0
    (bad,) = quarantined(result)
    assert (bad["line"], bad["field"]) == (1, "arrival")
    assert "median" in bad["reason"] and "7 days" in bad["reason"]


def test_an_offset_of_1e300_is_quarantined(tmp_path):
    path = offsets_file(tmp_path / "t.jsonl", 40, {12: line(record("r12", 1e300))})
    result = load_traffic(path)
    assert {r.request_id for r in result.records} == good_ids(40, {12})
    assert result.records[-1].arrival == 39.0
    (bad,) = quarantined(result)
    assert (bad["line"], bad["field"]) == (12, "arrival")
    assert "1e+300" in bad["reason"]


def test_the_span_limit_is_a_parameter(tmp_path):
    rows = [record(f"r{i}", i * 86_400.0) for i in range(1, 31)]  # a month, one a day
    path = write_bytes(tmp_path / "month.jsonl", [line(r) for r in rows])
    assert load_traffic(path, max_span_s=31 * 86_400).n_good == 30
    assert load_traffic(path, max_bad_share=1.0).n_good == 15  # 7 days either side of the median


def test_quarantine_is_in_file_order_and_the_error_names_the_first_bad_line(tmp_path):
    path = offsets_file(
        tmp_path / "t.jsonl",
        10,
        {2: line(record("r2", 1e300)), 5: b"{oops", 8: line(record("r8", 8.0, tenant_id=""))},
    )
    result = load_traffic(path, max_bad_share=1.0)
    assert [b["line"] for b in quarantined(result)] == [2, 5, 8]
