"""Property tests of the loader: whatever the lines, every good record loads, each bad
line is quarantined exactly once (by file and line), and no exception escapes."""

from __future__ import annotations

import codecs
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traffic.loader import MAX_DEPTH, load_traffic

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# text a producer can write: any code point but a lone surrogate
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def good_records(draw, index: int) -> dict:
    body = {
        "model": draw(TEXT),
        "messages": [{"role": "user", "content": draw(TEXT)}],
        "metadata": draw(JSON_VALUES),
    }
    record = {
        "request_id": f"good-{index}",
        "arrival": draw(st.floats(0, 3600, allow_nan=False)),
        "tenant_id": draw(TEXT.filter(bool)),
        "body": body,
    }
    if draw(st.booleans()):
        record["tags"] = draw(st.dictionaries(TEXT, TEXT, max_size=3))
    return record


def encode(record: dict, ascii_only: bool) -> bytes:
    return json.dumps(record, ensure_ascii=ascii_only).encode("utf-8")


def _nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def known_bad(record: dict, kind: str) -> bytes:
    """A line that is certainly not a good record, made from a good one."""
    text = json.dumps({**record, "request_id": "bad-" + record["request_id"]})
    changed = json.loads(text)
    if kind == "missing":
        del changed["tenant_id"]
    elif kind == "wrong_type":
        changed["body"] = [changed["body"]]
    elif kind == "numeric_string":
        changed["arrival"] = str(changed["arrival"])
    elif kind == "unknown_field":
        changed["extra"] = 1
    elif kind == "epoch":
        changed["arrival"] = "1970-01-01T00:00:00Z"
    elif kind == "far":
        changed["arrival"] = 1e300
    if kind in {"missing", "wrong_type", "numeric_string", "unknown_field", "epoch", "far"}:
        return json.dumps(changed).encode()
    line = json.dumps(changed).encode()
    head, _, tail = line.rpartition(b"}")
    if kind == "huge_int":
        return head + b', "n": ' + b"7" * 4400 + b"}" + tail
    if kind == "deep":
        return head + b', "n": ' + _nest(MAX_DEPTH + 5) + b"}" + tail
    if kind == "too_deep_to_parse":
        return head + b', "n": ' + _nest(20_000) + b"}" + tail
    if kind == "nan":
        return head + b', "n": NaN}' + tail
    if kind == "latin1":
        return head + b', "n": "caf\xe9"}' + tail
    if kind == "surrogate":
        return head + b', "n": "\\udc00"}' + tail
    if kind == "truncated":
        return line[: len(line) // 2]
    raise AssertionError(kind)


BAD_KINDS = [
    "missing",
    "wrong_type",
    "numeric_string",
    "unknown_field",
    "epoch",
    "far",
    "huge_int",
    "deep",
    "too_deep_to_parse",
    "nan",
    "latin1",
    "surrogate",
    "truncated",
]
NOISE = (
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b""))
    | TEXT.map(lambda t: t.replace("\n", "").encode("utf-8"))
    | (JSON_SCALARS | st.lists(JSON_VALUES, max_size=4)).map(lambda v: json.dumps(v).encode())
    | st.dictionaries(TEXT, JSON_VALUES, max_size=4).map(lambda v: json.dumps(v).encode())
)
OFFSETS = st.timedeltas(timedelta(hours=-23, minutes=-59), timedelta(hours=23, minutes=59))
# arrivals of every kind and size: good or bad depending on the value, never a crash
WILD_ARRIVALS = (
    st.integers()
    | st.floats()
    | TEXT
    | st.datetimes(timezones=st.builds(timezone, OFFSETS)).map(datetime.isoformat)
    | JSON_VALUES
)


@dataclass
class Line:
    kind: str  # good (must load), bad (must be quarantined), maybe (either), noise, blank
    data: bytes
    request_id: str = ""


@st.composite
def traffic_files(draw) -> list[Line]:
    """Good lines, each followed by up to two others, shuffled.

    Fewer valid records with a stray arrival ("maybe" lines and "far" bad ones) than good
    ones: the loader judges clocks by the median arrival, so sound records must be the
    majority for none of them to be lost (documented).
    """
    lines: list[Line] = []
    n_good = draw(st.integers(1, 12))
    maybe_left = n_good - 1
    for index in range(n_good):
        record = draw(good_records(index))
        lines.append(Line("good", encode(record, draw(st.booleans())), record["request_id"]))
        for _ in range(draw(st.integers(0, 2))):
            choice = draw(st.integers(0, 2 if maybe_left else 1))
            if choice == 0:
                kinds = BAD_KINDS if maybe_left else [k for k in BAD_KINDS if k != "far"]
                kind = draw(st.sampled_from(kinds))
                maybe_left -= kind == "far"
                lines.append(Line("bad", known_bad(record, kind)))
            elif choice == 1:
                lines.append(Line("noise", draw(NOISE)))
            else:
                wild = {**record, "request_id": f"maybe-{index}-{len(lines)}"}
                wild["arrival"] = draw(WILD_ARRIVALS)
                maybe_left -= 1
                lines.append(Line("maybe", json.dumps(wild).encode(), wild["request_id"]))
        if draw(st.integers(0, 5)) == 0:
            lines.append(Line("blank", draw(st.sampled_from([b"", b"  ", b"\t\r", b" \r"]))))
    order = draw(st.permutations(lines))
    if draw(st.booleans()):
        order[0] = Line(order[0].kind, codecs.BOM_UTF8 + order[0].data, order[0].request_id)
    return order


@PROPERTY_SETTINGS
@given(traffic_files())
def test_good_lines_load_and_every_other_line_is_quarantined_once(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("prop") / "t.jsonl"
    path.write_bytes(b"\n".join(line.data for line in lines) + b"\n")

    result = load_traffic(path, max_bad_share=1.0)

    loaded = {r.request_id for r in result.records}
    by_kind = {kind: {n for n, x in enumerate(lines, 1) if x.kind == kind} for kind in KINDS}
    must_load = {lines[n - 1].request_id for n in by_kind["good"]}
    may_load = {lines[n - 1].request_id for n in by_kind["maybe"]}
    assert must_load <= loaded <= must_load | may_load
    assert result.n_good == len(loaded)
    counted = {n for n, line in enumerate(lines, 1) if not _blank(n, line.data)}
    assert result.n_total == len(counted)
    loaded_lines = {n for n in counted if lines[n - 1].request_id in loaded}
    entries = _quarantine(result.quarantine_path)
    assert [e["line"] for e in entries] == sorted(counted - loaded_lines)  # once each, in order
    assert by_kind["bad"] <= {e["line"] for e in entries}
    assert result.n_bad == len(entries)
    for entry in entries:
        assert entry["file"] == str(path)
        assert entry["reason"] and not entry["reason"].startswith("unexpected")
    arrivals = [r.arrival for r in result.records]
    assert arrivals == sorted(arrivals) and all(0 <= a <= 14 * 86_400 for a in arrivals)


KINDS = ("good", "bad", "maybe", "noise", "blank")


def _blank(number: int, line: bytes) -> bool:
    if number == 1 and line.startswith(codecs.BOM_UTF8):
        line = line[len(codecs.BOM_UTF8) :]
    return not line.strip(b" \t\r")


def _quarantine(path: Path | None) -> list[dict]:
    if path is None:
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@PROPERTY_SETTINGS
@given(st.lists(JSON_VALUES, min_size=1, max_size=8))
def test_any_json_body_field_round_trips(tmp_path_factory, values):
    directory = tmp_path_factory.mktemp("body")
    records = [
        {
            "request_id": f"r{i}",
            "arrival": float(i),
            "tenant_id": "t",
            "body": {"model": "m", "messages": [], "extra": value},
        }
        for i, value in enumerate(values)
    ]
    path = directory / "t.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", "utf-8")

    result = load_traffic(path)

    assert result.n_bad == 0
    assert [r.body["extra"] for r in result.records] == values
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in values)
