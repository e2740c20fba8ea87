"""The replay engine against a real OpenAI-style server on 127.0.0.1.

The server is a raw ASGI app under uvicorn in a thread (random free port, stopped at
teardown). Its behaviour per request is picked by the request's ``model`` field, and it
records when each request arrived, so lag and coordinated omission are judged from the
server's side, not from the client's own clock.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pyarrow.parquet as pq
import pytest
import uvicorn

from traffic.format import TrafficRecord
from traffic.replay import ReplayPlan, replay, run_replay
from traffic.schedule import build_pinned, build_replay
from traffic.spans import SPAN_SCHEMA
from traffic.transport import ClientSpec, make_client, run_async

TRANSPORTS = ["httpx", "aiohttp"]


# --- the test server -------------------------------------------------------------------


@dataclass
class Seen:
    at: float
    headers: dict[str, str]
    body: dict


@dataclass
class FakeOpenAI:
    """Records arrivals; answers by ``model``: ok, slow, stall, drop, error, tools."""

    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        at = time.time()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        raw = b""
        while True:
            msg = await receive()
            raw += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        body = json.loads(raw)
        self.seen.append(Seen(at, headers, body))
        behaviour = body.get("model", "ok")
        if behaviour == "error":
            payload = json.dumps({"error": {"type": "ServiceUnavailable", "message": "busy"}})
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": payload.encode()})
            return
        if behaviour == "stall":
            await asyncio.sleep(30)
        replica = headers.get("x-pin-replica", "replica-a")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"x-replica-id", replica.encode()),
                    (b"x-replica-queue-depth", b"3"),
                    (b"x-engine-running", b"2"),
                    (b"x-engine-waiting", b"1"),
                    (b"x-kv-cache-usage", b"0.25"),
                    (b"x-kv-cache-usage-peak", b"0.25"),
                    (b"x-prompt-tokens", b"11"),
                    (b"x-cached-tokens", b"0"),
                    (b"x-config-version", b"v7+fault:slow"),
                    # a sticky-session cookie, as some gateways set
                    (b"set-cookie", b"route=" + replica.encode() + b"; Path=/"),
                ],
            }
        )

        async def event(obj) -> None:
            data = obj if isinstance(obj, str) else json.dumps(obj)
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {data}\n\n".encode(),
                    "more_body": True,
                }
            )

        def chunk(delta, finish=None):
            return {
                "id": "c",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        await event(chunk({"role": "assistant", "content": ""}))
        if behaviour == "drop":
            raise RuntimeError("connection dropped mid-stream")
        if behaviour == "slow":
            await asyncio.sleep(0.2)
        if behaviour == "tools":
            await event(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ]
                    }
                )
            )
            await event(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]})
            )
            await event(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})
            )
            await event(chunk({}, "tool_calls"))
        else:
            await event(chunk({"content": "Hello"}))
            await event(chunk({"content": " world"}))
            await event(chunk({}, "stop"))
        await event(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {
                    "prompt_tokens": 11,
                    "completion_tokens": 2,
                    "total_tokens": 13,
                    "prompt_tokens_details": {"cached_tokens": 8},
                },
                "cluster_eval": {"kv_cache_usage_peak": 0.5, "cached_tokens": 8},
            }
        )
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Server:
    app: FakeOpenAI
    url: str


@pytest.fixture
def server() -> Iterator[Server]:
    app = FakeOpenAI()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="critical",
        loop="asyncio",
        http="h11",
        timeout_graceful_shutdown=1,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.01)
    yield Server(app, f"http://127.0.0.1:{port}")
    srv.should_exit = True
    thread.join(timeout=5)
    sock.close()


def records(
    n: int, rate: float, model: str = "ok", tenant: str = "acme", **special: str
) -> list[TrafficRecord]:
    """n records at a fixed rate; ``special`` maps a request id to another behaviour."""
    return [
        TrafficRecord(
            request_id=f"r{i}",
            arrival=i / rate,
            tenant_id=tenant,
            body={
                "model": special.get(f"r{i}", model),
                "messages": [{"role": "user", "content": f"q{i}"}],
                "max_tokens": 8,
            },
            tags={"task": "smoke"},
        )
        for i in range(n)
    ]


def run(plan: ReplayPlan, url: str, transport: str):
    return run_async(lambda: replay(plan, lambda: make_client(url, transport)))


def server_lag_ms(srv: Server, spans) -> dict[str, float]:
    """Per span: server receive time minus intended send time, in ms."""
    arrived = {s.headers["x-request-id"]: s.at for s in srv.app.seen}
    return {sp.span_id: (arrived[sp.span_id] - sp.intended_at) * 1000 for sp in spans}


# --- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fixed_rate_records_one_span_per_request_with_lag(server: Server, transport: str) -> None:
    recs = records(40, rate=100)
    spans = run(ReplayPlan(build_replay(recs), timeout_s=5), server.url, transport)

    assert len(spans) == 40 == len(server.app.seen)
    assert len({s.span_id for s in spans}) == 40
    assert {s.status for s in spans} == {"ok"}
    for s in spans:
        assert s.mode == "replay" and s.tenant_id == "acme" and s.endpoint == "/v1/chat/completions"
        assert s.sent_at >= s.intended_at - 1e-6
        assert s.schedule_lag_ms == pytest.approx((s.sent_at - s.intended_at) * 1000, abs=0.01)
        assert 0 < s.ttft_ms <= s.latency_ms
        assert s.output_text == "Hello world" and s.finish_reason == "stop"
        assert (s.prompt_tokens, s.completion_tokens, s.cached_tokens) == (11, 2, 8)
        assert json.loads(s.tags) == {"task": "smoke"}
    # the schedule is anchored: intended times are exactly 10 ms apart
    intended = sorted(s.intended_at for s in spans)
    gaps = [b - a for a, b in zip(intended, intended[1:], strict=False)]
    assert max(gaps) - min(gaps) < 1e-5
    lags = sorted(server_lag_ms(server, spans).values())
    assert lags[0] > -0.5, "a request reached the server before its intended time"
    assert lags[len(lags) // 2] < 50, f"median server-side lag {lags[len(lags) // 2]:.1f} ms"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stalled_request_times_out_without_delaying_later_requests(
    server: Server, transport: str
) -> None:
    # r2 and r3 stall far past the timeout; the 20 requests after them must still leave
    # on schedule (open loop: no coordinated omission)
    recs = records(25, rate=50, r2="stall", r3="stall")
    spans = {
        s.request_id: s
        for s in run(ReplayPlan(build_replay(recs), timeout_s=0.4), server.url, transport)
    }

    for rid in ("r2", "r3"):
        assert spans[rid].status == "timeout" and spans[rid].error_class == "RequestTimeout"
        assert 390 <= spans[rid].latency_ms < 1500
        assert spans[rid].ttft_ms is None and spans[rid].output_text is None
    later = [spans[f"r{i}"] for i in range(4, 25)]
    assert {s.status for s in later} == {"ok"}
    server_lag = server_lag_ms(server, later)
    # requests sent while the stalled ones were outstanding arrived on schedule: a
    # client that waited for the stalled answers would have held them back ≥ 400 ms
    # (the timeout); the bound leaves room for a loaded CI machine, not for that
    assert max(server_lag.values()) < 200, server_lag
    assert max(s.schedule_lag_ms for s in later) < 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dropped_connection_and_refused_connection_are_recorded(
    server: Server, transport: str
) -> None:
    recs = records(6, rate=100, r1="drop")
    spans = {
        s.request_id: s
        for s in run(ReplayPlan(build_replay(recs), timeout_s=5), server.url, transport)
    }
    assert spans["r1"].status == "connection_error", spans["r1"]
    assert spans["r1"].error_class
    assert spans["r1"].http_status == 200  # headers arrived, then the stream was cut
    assert all(spans[f"r{i}"].status == "ok" for i in (0, 2, 3, 4, 5))

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed_port = sock.getsockname()[1]
    sock.close()
    refused = run(
        ReplayPlan(build_replay(records(2, rate=100)), timeout_s=2),
        f"http://127.0.0.1:{closed_port}",
        transport,
    )
    assert [s.status for s in refused] == ["connection_error"] * 2
    assert all(s.http_status is None and s.latency_ms < 2000 for s in refused)


def test_http_error_is_recorded_with_status_and_type(server: Server) -> None:
    spans = run(
        ReplayPlan(build_replay(records(2, rate=100, r0="error")), timeout_s=5), server.url, "httpx"
    )
    err = next(s for s in spans if s.request_id == "r0")
    assert (err.status, err.http_status, err.error_class) == (
        "http_error",
        503,
        "ServiceUnavailable",
    )
    assert next(s for s in spans if s.request_id == "r1").status == "ok"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_streaming_ttft_is_time_to_first_content_token(server: Server, transport: str) -> None:
    spans = run(
        ReplayPlan(build_replay(records(1, rate=1, model="slow")), timeout_s=5),
        server.url,
        transport,
    )
    (span,) = spans
    assert span.status == "ok"
    # the empty role chunk arrives at once; the first token 200 ms later
    assert 195 <= span.ttft_ms <= span.latency_ms < 3000


def test_telemetry_headers_and_final_chunk_are_captured(server: Server) -> None:
    (span,) = run(ReplayPlan(build_replay(records(1, rate=1)), timeout_s=5), server.url, "aiohttp")
    assert span.replica_id == "replica-a"
    assert (span.replica_queue_depth, span.engine_running, span.engine_waiting) == (3, 2, 1)
    assert span.kv_cache_usage == 0.25
    assert span.kv_cache_usage_peak == 0.5  # final SSE chunk's cluster_eval wins over the header
    assert span.config_version == "v7+fault:slow"
    assert span.http_status == 200


def test_tool_calls_are_assembled_from_deltas(server: Server) -> None:
    (span,) = run(
        ReplayPlan(build_replay(records(1, rate=1, model="tools")), timeout_s=5),
        server.url,
        "httpx",
    )
    assert span.finish_reason == "tool_calls"
    assert json.loads(span.tool_calls) == [
        {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert span.ttft_ms is not None


def test_request_goes_out_streaming_with_tenant_header(server: Server) -> None:
    run(
        ReplayPlan(build_replay(records(1, rate=1, tenant="globex")), timeout_s=5),
        server.url,
        "httpx",
    )
    (seen,) = server.app.seen
    assert seen.headers["x-tenant-id"] == "globex"
    assert seen.body["stream"] is True and seen.body["stream_options"] == {"include_usage": True}
    assert seen.body["messages"] == [{"role": "user", "content": "q0"}]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cookies_a_response_sets_are_not_sent_with_later_requests(
    server: Server, transport: str
) -> None:
    # by host name: the standard cookie policy keeps no cookies for a bare IP address
    url = server.url.replace("127.0.0.1", "localhost")
    run(ReplayPlan(build_replay(records(3, rate=20)), timeout_s=5), url, transport)
    assert len(server.app.seen) == 3
    assert all("cookie" not in seen.headers for seen in server.app.seen)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pinned_mode_sends_every_golden_request_to_every_replica(
    server: Server, transport: str
) -> None:
    golden = records(3, rate=20)
    replicas = ["rep-1", "rep-2", "rep-3"]
    spans = run(ReplayPlan(build_pinned(golden, replicas), timeout_s=5), server.url, transport)

    sent = sorted(
        (s.body["messages"][0]["content"], s.headers["x-pin-replica"]) for s in server.app.seen
    )
    assert sent == sorted((f"q{i}", rep) for i in range(3) for rep in replicas)
    assert len(spans) == 9 and len({s.span_id for s in spans}) == 9
    for s in spans:
        assert s.mode == "pinned" and s.status == "ok"
        assert s.pinned_replica in replicas and s.replica_id == s.pinned_replica


def test_mock_transport_is_a_valid_client() -> None:
    """The engine needs nothing but an httpx client: MockTransport works too."""
    sse = (
        'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n'
        "data: [DONE]\n\n"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, text=sse, headers={"content-type": "text/event-stream", "x-replica-id": "m"}
        )

    async def main():
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://test"
        ) as c:
            return await replay(ReplayPlan(build_replay(records(5, rate=500))), c)

    spans = asyncio.run(main())
    assert [s.status for s in spans] == ["ok"] * 5
    assert {(s.output_text, s.finish_reason, s.replica_id) for s in spans} == {
        ("hi", "length", "m")
    }


def test_incomplete_stream_and_garbage_are_protocol_errors() -> None:
    bodies = {
        "cut": 'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
        "junk": "data: {not json}\n\n",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        kind = json.loads(request.content)["model"]
        return httpx.Response(200, text=bodies[kind], headers={"content-type": "text/event-stream"})

    async def main():
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://t"
        ) as c:
            return await replay(
                ReplayPlan(build_replay(records(2, rate=100, r0="cut", r1="junk"))), c
            )

    spans = {s.request_id: s for s in asyncio.run(main())}
    assert (spans["r0"].status, spans["r0"].error_class) == ("protocol_error", "IncompleteStream")
    assert spans["r0"].output_text == "hi"
    assert (spans["r1"].status, spans["r1"].error_class) == ("protocol_error", "JSONDecodeError")


def test_speedup_compresses_the_schedule(server: Server) -> None:
    spans = run(
        ReplayPlan(build_replay(records(5, rate=2)), speedup=20, timeout_s=5), server.url, "httpx"
    )
    intended = sorted(s.intended_at for s in spans)
    assert intended[-1] - intended[0] == pytest.approx(2.0 / 20, abs=1e-4)


def test_run_replay_writes_documented_parquet(server: Server, tmp_path) -> None:
    plan = ReplayPlan(build_replay(records(10, rate=100, r3="error")), timeout_s=5)
    result = run_replay(plan, tmp_path, ClientSpec(server.url, "aiohttp"))

    assert result.spans == 10 and result.statuses == {"ok": 9, "http_error": 1}
    assert result.spans_path == tmp_path / "spans.parquet"
    assert result.lag_p99_ms is not None and 0 <= result.lag_p50_ms < 250
    table = pq.read_table(result.spans_path)
    assert table.schema.equals(SPAN_SCHEMA)
    assert str(table.schema.field("sent_at").type) == "timestamp[us, tz=UTC]"
    row = table.slice(0, 1).to_pylist()[0]
    assert row["sent_at"].tzinfo is not None and json.loads(row["request_body"])["stream"] is True


def test_run_replay_in_worker_processes_merges_spans(server: Server, tmp_path) -> None:
    plan = ReplayPlan(build_replay(records(30, rate=100)), timeout_s=5)
    result = run_replay(plan, tmp_path, ClientSpec(server.url, "aiohttp"), workers=2)
    assert result.spans == 30 == len(server.app.seen)
    assert result.statuses == {"ok": 30}
    table = pq.read_table(result.spans_path)
    assert sorted(table.column("request_id").to_pylist()) == sorted(f"r{i}" for i in range(30))
    assert not list(tmp_path.glob(".spans.part*"))
    # both processes anchored to the same start: one schedule, 10 ms apart
    intended = table.column("intended_at").cast("int64").to_pylist()
    assert all(abs((b - a) - 10_000) <= 2 for a, b in zip(intended, intended[1:], strict=False))


def test_cli_replays_the_golden_set_pinned(server: Server, tmp_path) -> None:
    from pathlib import Path

    import typer
    from typer.testing import CliRunner

    from traffic.replay_cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep typer in multi-command mode
    golden = Path(__file__).parents[2] / "traffic" / "golden" / "golden.jsonl"
    args = [
        "replay",
        "--traffic",
        str(golden),
        "--base-url",
        server.url,
        "--mode",
        "pinned",
        "--replicas",
        "rep-a,rep-b",
        "--speedup",
        "100",
        "--timeout",
        "5",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "spans.parquet")
    n_golden = sum(1 for line in golden.read_text().splitlines() if line.strip())
    assert table.num_rows == 2 * n_golden == len(server.app.seen)
    assert set(table.column("pinned_replica").to_pylist()) == {"rep-a", "rep-b"}
    assert set(table.column("status").to_pylist()) == {"ok"}

    bad = CliRunner().invoke(
        app, ["replay", "--traffic", str(golden), "--mode", "pinned", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "replica" in bad.output
