"""Properties of the answer parser and the span writer, for any input hypothesis finds.

* Whatever a server answers — any status, content type, telemetry headers, SSE events
  that are chat chunks with any value in any field, other JSON, or not JSON at all, cut
  into any pieces — the replay makes exactly one span per scheduled request, with a
  known status, and no exception escapes.
* Whatever values a span holds, ``spans.parquet`` and the span log are written, and a
  log cut anywhere reads back as the spans of its complete frames.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traffic.answer import Answer, BadResponse, StreamError, apply_headers
from traffic.format import TrafficRecord
from traffic.replay import ReplayPlan, replay
from traffic.schedule import build_replay
from traffic.spans import (
    SPAN_SCHEMA,
    STATUSES,
    Span,
    SpanLog,
    read_span_log,
    read_spans,
    spans_table,
    write_spans,
)

# --- strategies --------------------------------------------------------------------------

text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=12)
number = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
)
leaf = st.none() | st.booleans() | number | text
json_value = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def maybe(good: st.SearchStrategy) -> st.SearchStrategy:
    """The right kind of value most of the time, any JSON value otherwise."""
    return st.one_of(good, good, json_value)


def obj(**fields: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})


count = st.integers(min_value=0, max_value=10**6) | st.just(2**64)
function = obj(name=text, arguments=text)
tool_call = obj(index=st.integers(0, 2), id=text, function=function)
delta = obj(
    role=st.just("assistant"),
    content=text,
    tool_calls=st.lists(maybe(tool_call), max_size=3),
    reasoning_content=text,
)
choice = obj(
    index=st.just(0) | st.integers(0, 2),
    delta=delta,
    message=delta,
    finish_reason=st.sampled_from(["stop", "length", "tool_calls"]),
)
usage = obj(
    prompt_tokens=count,
    completion_tokens=count,
    prompt_tokens_details=obj(cached_tokens=count),
)
telemetry_keys = st.sampled_from(
    ["kv_cache_usage_peak", "x-kv-cache-usage-peak", "prompt_tokens", "cached_tokens",
     "replica_id", "config-version", "engine_running", "other"]
)
chat_chunk = obj(
    choices=st.lists(maybe(choice), max_size=2),
    usage=usage,
    cluster_eval=st.dictionaries(telemetry_keys, json_value, max_size=3),
    error=obj(type=text),
)
event = (
    chat_chunk.map(json.dumps).map(str.encode)
    | json_value.map(json.dumps).map(str.encode)
    | st.sampled_from([b"[DONE]", b"", b"{", b"null", b"NaN", b"\xff\xfe"])
    | st.binary(max_size=16).filter(lambda b: b"\n" not in b)
)
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=24)
headers = st.dictionaries(
    st.sampled_from(
        ["x-replica-id", "x-replica-queue-depth", "x-engine-running", "x-engine-waiting",
         "x-kv-cache-usage", "x-kv-cache-usage-peak", "x-prompt-tokens", "x-cached-tokens",
         "x-config-version"]
    ),
    header_value | st.sampled_from(["3", "-1", "0.5", "nan", "inf", "1e400", "9" * 25]),
    max_size=4,
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[int, str, dict[str, str], list[bytes]]:
    """One HTTP answer: status, content type, headers, body pieces."""
    status = draw(st.sampled_from([200, 200, 200, 200, 204, 400, 503]))
    kind = draw(st.sampled_from(["text/event-stream", "application/json", ""]))
    if kind == "application/json":
        body = draw(chat_chunk.map(json.dumps).map(str.encode) | event)
    else:
        lines = [b"data: " + e for e in draw(st.lists(event, max_size=6))]
        extra = draw(st.sampled_from([[], [b": keep-alive"], [b"event: x"]]))
        body = b"\n\n".join(extra + lines) + draw(st.sampled_from([b"", b"\n", b"\n\n"]))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return status, kind, draw(headers), pieces


class Pieces(httpx.AsyncByteStream):
    """A body arriving in the pieces hypothesis cut it into."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def records(n: int) -> list[TrafficRecord]:
    return [
        TrafficRecord(
            request_id=f"r{i}",
            arrival=i / 1000,
            tenant_id="acme",
            body={"model": str(i), "messages": [{"role": "user", "content": "q"}]},
        )
        for i in range(n)
    ]


def replay_answers(planned: list[tuple[int, str, dict[str, str], list[bytes]]]) -> list[Span]:
    def handler(request: httpx.Request) -> httpx.Response:
        status, kind, extra, pieces = planned[int(json.loads(request.content)["model"])]
        head = {**extra, **({"content-type": kind} if kind else {})}
        return httpx.Response(status, headers=head, stream=Pieces(pieces))

    async def main() -> list[Span]:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://t"
        ) as client:
            plan = ReplayPlan(
                build_replay(records(len(planned))), timeout_s=5, lead_s=0.0, tune_gc=False
            )
            return await replay(plan, client)

    return asyncio.run(main())


# --- the parser --------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(answers(), min_size=1, max_size=4))
def test_any_answer_makes_exactly_one_span_per_request(planned) -> None:
    spans = replay_answers(planned)

    assert sorted(s.request_id for s in spans) == sorted(f"r{i}" for i in range(len(planned)))
    for span in spans:
        assert span.status in STATUSES
        assert (span.error_class is None) == (span.status == "ok"), span
    table = spans_table(spans)
    assert table.num_rows == len(planned) and table.schema.equals(SPAN_SCHEMA)


@settings(max_examples=300, deadline=None)
@given(st.lists(chat_chunk | json_value, max_size=5), headers)
def test_any_chunk_is_read_or_refused_and_the_span_is_writable(chunks, head) -> None:
    answer = Answer()
    span = _span()
    apply_headers(span, head)
    for chunk in chunks:
        try:
            answer.chunk(chunk, 1.0)
        except (BadResponse, StreamError):
            break
    answer.fill(span)  # never raises

    for name in ("output_text", "tool_calls", "finish_reason", "replica_id", "config_version"):
        assert getattr(span, name) is None or type(getattr(span, name)) is str, name
    for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "replica_queue_depth"):
        value = getattr(span, name)
        assert value is None or (type(value) is int and -(2**63) <= value < 2**63), name
    for name in ("kv_cache_usage", "kv_cache_usage_peak"):
        assert getattr(span, name) is None or type(getattr(span, name)) is float, name
    if span.tool_calls is not None:
        assert all(set(c) == {"name", "arguments"} for c in json.loads(span.tool_calls))
    assert spans_table([span]).num_rows == 1


# --- the writer --------------------------------------------------------------------------

OPTIONAL = [f.name for f in dataclasses.fields(Span) if f.default is None]
any_value = json_value | st.just(float("nan"))


def _span(**values: object) -> Span:
    return Span(
        span_id="s",
        request_id="r",
        mode="replay",
        tenant_id="acme",
        endpoint="/v1/chat/completions",
        intended_at=1_700_000_000.0,
        sent_at=1_700_000_000.001,
        schedule_lag_ms=1.0,
        latency_ms=2.0,
        status="ok",
        request_body="{}",
        **values,  # type: ignore[arg-type]
    )


spans_with_any_values = st.lists(
    st.builds(
        lambda i, tenant, values: dataclasses.replace(
            _span(**values), span_id=f"s{i}", tenant_id=tenant
        ),
        st.integers(0, 10**6),
        text,
        st.dictionaries(st.sampled_from(OPTIONAL), any_value, max_size=6),
    ),
    max_size=5,
)


@settings(max_examples=100, deadline=None)
@given(spans_with_any_values)
def test_any_span_values_write_a_readable_spans_parquet(spans) -> None:
    with TemporaryDirectory() as tmp:
        path = write_spans(spans, Path(tmp) / "spans.parquet")
        table = read_spans(path)
    assert table.num_rows == len(spans)
    assert table.column("span_id").to_pylist() == [s.span_id for s in spans]
    # a value of the column's own type is kept as it was
    for span, row in zip(spans, table.to_pylist(), strict=True):
        for name in OPTIONAL:
            value, kept = getattr(span, name), row[name]
            kind = SPAN_SCHEMA.field(name).type
            if pa.types.is_integer(kind) and type(value) is int and abs(value) < 2**31:
                assert kept == value
            if pa.types.is_floating(kind) and type(value) is float and not math.isnan(value):
                assert kept == value
            if kind == pa.string() and type(value) is str and value.isascii():
                assert kept == value


@settings(max_examples=100, deadline=None)
@given(st.lists(spans_with_any_values, max_size=4), st.data())
def test_a_span_log_cut_anywhere_reads_back_its_complete_frames(batches, data) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.log"
        ends = []
        with SpanLog(path) as log:
            for batch in batches:
                log.write(batch)
                ends.append(path.stat().st_size)
        full = path.read_bytes()
        cut = data.draw(st.integers(0, len(full)), label="cut")
        path.write_bytes(full[:cut])
        table = read_span_log(path)

    kept = [s for batch, end in zip(batches, ends, strict=True) if end <= cut for s in batch]
    assert table.schema.equals(SPAN_SCHEMA)
    assert table.column("span_id").to_pylist() == [s.span_id for s in kept]
    expected = spans_table(kept)
    for name in ("tenant_id", "output_text", "prompt_tokens", "finish_reason"):
        assert table.column(name).to_pylist() == expected.column(name).to_pylist()
