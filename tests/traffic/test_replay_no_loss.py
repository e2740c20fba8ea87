"""Nothing lost: every scheduled request becomes exactly one span, whatever comes back.

Odd answers are served by ``httpx.MockTransport`` (picked by the request's ``model``)
or, where the fault is below HTTP (a malformed status line, a header's bytes), by a raw
asyncio server on 127.0.0.1 that writes whatever bytes the test gives it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from traffic.format import TrafficRecord
from traffic.replay import ReplayPlan, replay, run_replay
from traffic.schedule import build_replay
from traffic.spans import SPAN_SCHEMA
from traffic.transport import make_client, run_async

ROOT = Path(__file__).resolve().parents[2]


def chunk(delta: dict | None = None, finish: object = None) -> str:
    return json.dumps(
        {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    )


def sse(*events: str) -> str:
    return "".join(f"data: {e}\n\n" for e in events)


GOOD_USAGE = json.dumps(
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 8},
        },
    }
)
GOOD = sse(chunk({"content": "hi"}), chunk(finish="stop"), GOOD_USAGE, "[DONE]")


def records(models: list[str], tenant: str = "acme", rate: float = 1000) -> list[TrafficRecord]:
    return [
        TrafficRecord(
            request_id=model,
            arrival=i / rate,
            tenant_id=tenant,
            body={"model": model, "messages": [{"role": "user", "content": "q"}]},
        )
        for i, model in enumerate(models)
    ]


def plan_for(recs: list[TrafficRecord], timeout_s: float = 5) -> ReplayPlan:
    return ReplayPlan(build_replay(recs), timeout_s=timeout_s, lead_s=0.0, tune_gc=False)


def mock_client(bodies: dict[str, str | tuple[str, dict[str, str]]]) -> httpx.AsyncClient:
    """Answers each request with ``bodies[model]``: SSE text, or (text, headers)."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = bodies[json.loads(request.content)["model"]]
        text, headers = answer if isinstance(answer, tuple) else (answer, {})
        headers = {"content-type": "text/event-stream", **headers}
        return httpx.Response(200, text=text, headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://t")


def replay_mock(bodies: dict, models: list[str] | None = None) -> dict[str, object]:
    async def main():
        async with mock_client(bodies) as client:
            return await replay(plan_for(records(models or list(bodies))), client)

    spans = asyncio.run(main())
    assert len(spans) == len(models or bodies)
    return {s.request_id: s for s in spans}


# --- a raw HTTP server -------------------------------------------------------------------


@dataclass
class RawServer:
    """127.0.0.1 server in a thread: ``respond(head, body)`` returns the bytes to write."""

    respond: Callable[[bytes, bytes], bytes]
    heads: list[bytes] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    body = await reader.readexactly(length)
                    self.heads.append(head)
                    writer.write(self.respond(head, body))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        async def start() -> None:
            self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10), "raw server did not start"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def http_sse(text: str, extra: bytes = b"") -> bytes:
    body = text.encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        + extra
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[bytes, bytes], bytes]], RawServer]]:
    started: list[RawServer] = []

    def start(respond: Callable[[bytes, bytes], bytes]) -> RawServer:
        started.append(RawServer(respond))
        return started[-1]

    yield start
    for server in started:
        server.stop()


# --- 1. an odd answer is a span, not a lost task ----------------------------------------

ODD = {
    "ok": GOOD,
    "list_chunk": sse("[1, 2]", "[DONE]"),
    "string_delta": sse('{"choices":[{"index":0,"delta":"hi"}]}', "[DONE]"),
    "choices_object": sse('{"choices":{"index":0}}', "[DONE]"),
    "tool_calls_string": sse('{"choices":[{"index":0,"delta":{"tool_calls":"x"}}]}', "[DONE]"),
    "usage_list": sse(chunk({"content": "hi"}), chunk(finish="stop"), '{"usage":[1,2]}', "[DONE]"),
    "infinity": sse(
        chunk({"content": "hi"}),
        chunk(finish="stop"),
        '{"choices":[],"usage":{"prompt_tokens":Infinity,"completion_tokens":2},'
        '"cluster_eval":{"cached_tokens":Infinity,"kv_cache_usage_peak":"x"}}',
        "[DONE]",
    ),
    "int_tool_name": sse(
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        '"function":{"name":7,"arguments":"{}"}}]}}]}',
        chunk(finish="tool_calls"),
        "[DONE]",
    ),
    "json_list_body": ('[{"choices":[]}]', {"content-type": "application/json"}),
}


def test_odd_json_answers_each_make_one_span() -> None:
    spans = replay_mock(ODD)

    bad = {"list_chunk", "string_delta", "choices_object", "tool_calls_string", "json_list_body"}
    for name in bad:
        assert (spans[name].status, spans[name].error_class) == ("protocol_error", "BadResponse")
        assert spans[name].http_status == 200
    assert spans["ok"].status == "ok" and spans["ok"].output_text == "hi"
    # a leaf of the wrong type costs that field only
    listed = spans["usage_list"]
    assert (listed.status, listed.output_text, listed.prompt_tokens) == ("ok", "hi", None)
    inf = spans["infinity"]
    assert inf.status == "ok" and inf.output_text == "hi" and inf.finish_reason == "stop"
    assert (inf.prompt_tokens, inf.completion_tokens, inf.cached_tokens) == (None, 2, None)
    assert inf.kv_cache_usage_peak is None
    tool = spans["int_tool_name"]
    assert tool.status == "ok"
    assert json.loads(tool.tool_calls) == [{"name": "7", "arguments": "{}"}]


def test_odd_answers_reach_spans_parquet(tmp_path: Path) -> None:
    plan = plan_for(records(list(ODD)))
    result = run_replay(plan, tmp_path, lambda: mock_client(ODD))
    assert result.spans == len(ODD) == sum(result.statuses.values())
    assert result.statuses == {"ok": 4, "protocol_error": 5}
    assert pq.read_table(result.spans_path).num_rows == len(ODD)


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
@pytest.mark.parametrize(
    "reply",
    [b"HTTP/1.1 abc OK\r\n\r\n", b"GARBAGE\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"],
    ids=["status-code", "status-line", "header-line"],
)
def test_malformed_http_is_a_span_on_every_transport(
    raw_server, transport: str, reply: bytes
) -> None:
    broken = raw_server(lambda head, body: reply)
    sound = raw_server(lambda head, body: http_sse(GOOD))

    async def main():
        async with make_client(broken.url, transport) as client:
            bad = await replay(plan_for(records(["a", "b", "c"])), client)
        async with make_client(sound.url, transport) as client:
            ok = await replay(plan_for(records(["d"])), client)
        return bad, ok

    bad, ok = run_async(main)
    assert [s.request_id for s in bad] == ["a", "b", "c"]
    assert {s.status for s in bad} <= {"protocol_error", "connection_error"}
    assert all(s.error_class and s.http_status is None for s in bad)
    if transport == "aiohttp":  # aiohttp's parser says what was wrong
        assert {s.status for s in bad} == {"protocol_error"}
    assert [s.status for s in ok] == ["ok"]


def test_a_request_that_cannot_be_built_is_a_span() -> None:
    first, second = build_replay(records(["ok", "ok2"]))
    unbuildable = dataclasses.replace(first, endpoint="/v1/\x00")

    async def main():
        async with mock_client({"ok": GOOD, "ok2": GOOD}) as client:
            plan = ReplayPlan([unbuildable, second], timeout_s=5, lead_s=0.0, tune_gc=False)
            return await replay(plan, client)

    spans = asyncio.run(main())
    assert [s.request_id for s in spans] == ["ok", "ok2"]
    assert (spans[0].status, spans[0].error_class) == ("protocol_error", "InvalidURL")
    assert spans[0].http_status is None and spans[0].latency_ms < 1000
    assert spans[1].status == "ok"


# --- 2. one bad value costs only its own field ---------------------------------------------

BAD_VALUES = {
    "ok": GOOD,
    "tokens_abc": sse(
        chunk({"content": "hi"}),
        chunk(finish="stop"),
        '{"choices":[],"usage":{"prompt_tokens":"abc","completion_tokens":2.0}}',
        "[DONE]",
    ),
    "finish_int": sse(chunk({"content": "hi"}), chunk(finish=1), GOOD_USAGE, "[DONE]"),
    "huge_header": (
        sse(chunk({"content": "hi"}), chunk(finish="stop"), "[DONE]"),
        {"x-prompt-tokens": "99999999999999999999", "x-replica-id": "r"},
    ),
    "huge_final": sse(
        chunk({"content": "hi"}),
        chunk(finish="stop"),
        '{"choices":[],"usage":{"prompt_tokens":1e30},"cluster_eval":{"cached_tokens":1e30}}',
        "[DONE]",
    ),
    "surrogate": sse('{"choices":[{"index":0,"delta":{"content":"a\\ud800b"}}]}',
                     chunk(finish="stop"), "[DONE]"),
    "bool_tokens": sse(
        chunk({"content": "hi"}),
        chunk(finish="stop"),
        '{"choices":[],"usage":{"prompt_tokens":true,"completion_tokens":[2]}}',
        "[DONE]",
    ),
}


def test_one_bad_value_costs_only_its_own_field(tmp_path: Path) -> None:
    plan = plan_for(records(list(BAD_VALUES)))
    result = run_replay(plan, tmp_path, lambda: mock_client(BAD_VALUES))

    rows = {r["request_id"]: r for r in pq.read_table(result.spans_path).to_pylist()}
    assert set(rows) == set(BAD_VALUES)
    assert {r["status"] for r in rows.values()} == {"ok"}
    assert (rows["ok"]["prompt_tokens"], rows["ok"]["cached_tokens"]) == (11, 8)
    assert rows["tokens_abc"]["prompt_tokens"] is None
    assert rows["tokens_abc"]["completion_tokens"] == 2
    assert rows["tokens_abc"]["output_text"] == "hi"
    assert rows["finish_int"]["finish_reason"] == "1"
    assert rows["finish_int"]["prompt_tokens"] == 11
    assert rows["huge_header"]["prompt_tokens"] is None  # past int64
    assert rows["huge_header"]["replica_id"] == "r"
    assert rows["huge_final"]["prompt_tokens"] is None
    assert rows["huge_final"]["cached_tokens"] is None
    assert rows["surrogate"]["output_text"] == "a\ufffdb"
    assert (rows["bool_tokens"]["prompt_tokens"], rows["bool_tokens"]["completion_tokens"]) == (
        None,
        None,
    )


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_non_ascii_tenant_is_sent_as_utf8(raw_server, transport: str) -> None:
    server = raw_server(lambda head, body: http_sse(GOOD))
    recs = records(["a"], tenant="café-東京") + records(["b"], tenant="acme")
    recs[1] = recs[1].model_copy(update={"arrival": 0.001})

    async def main():
        async with make_client(server.url, transport) as client:
            return await replay(plan_for(recs), client)

    spans = run_async(main)
    assert [(s.tenant_id, s.status) for s in spans] == [("café-東京", "ok"), ("acme", "ok")]
    assert any("x-tenant-id: café-東京".encode() in head.lower() for head in server.heads)


# --- 3. spans reach the disk while the replay runs -----------------------------------------


def test_span_log_keeps_complete_batches_of_a_torn_file(tmp_path: Path) -> None:
    from traffic.spans import SpanLog, read_span_log

    one = replay_mock({"ok": GOOD})["ok"]
    path = tmp_path / "log.arrows"
    ends = []
    with SpanLog(path) as log:
        for i in range(3):
            log.write([dataclasses.replace(one, span_id=f"s{i}")])
            ends.append(path.stat().st_size)
    full = path.read_bytes()
    assert read_span_log(path).column("span_id").to_pylist() == ["s0", "s1", "s2"]
    # cut anywhere (every 7th byte, and next to every frame's end): the frames before
    # the cut are read, the torn one is not
    cuts = {*range(0, len(full), 7), *(e + d for e in ends for d in (-1, 0, 1))}
    for cut in sorted(c for c in cuts if 0 <= c <= len(full)):
        path.write_bytes(full[:cut])
        got = read_span_log(path).column("span_id").to_pylist()
        assert got == ["s0", "s1", "s2"][: sum(cut >= e for e in ends)], cut
    assert read_span_log(tmp_path / "missing.arrows").num_rows == 0
    assert read_span_log(path).schema.equals(SPAN_SCHEMA)


def test_cancelled_replay_leaves_its_finished_spans_in_the_log(tmp_path: Path) -> None:
    from traffic.spans import SpanLog, read_span_log

    recs = records([f"r{i}" for i in range(200)], rate=100)
    bodies = {r.request_id: GOOD for r in recs}
    log_path = tmp_path / "log.arrows"

    async def main():
        log = SpanLog(log_path)
        async with mock_client(bodies) as client:
            task = asyncio.create_task(replay(plan_for(recs), client, log=log))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        log.close()

    asyncio.run(main())
    ids = read_span_log(log_path).column("request_id").to_pylist()
    assert 20 <= len(ids) < 200
    assert len(set(ids)) == len(ids) and set(ids) <= set(bodies)


KILLED = """
import sys
from pathlib import Path
from traffic.format import TrafficRecord
from traffic.replay import ReplayPlan, run_replay
from traffic.schedule import build_replay
from traffic.transport import ClientSpec

url, out, transport = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
recs = [
    TrafficRecord(request_id=f"r{i}", arrival=i / 50, tenant_id="acme",
                  body={"model": "m", "messages": [{"role": "user", "content": "q"}]})
    for i in range(1000)
]
run_replay(ReplayPlan(build_replay(recs), timeout_s=5), out, ClientSpec(url, transport))
"""


@pytest.mark.parametrize("transport", ["aiohttp"])
def test_killed_replay_keeps_its_finished_spans_on_disk(
    raw_server, tmp_path: Path, transport: str
) -> None:
    from traffic.replay import span_logs
    from traffic.spans import read_span_log

    server = raw_server(lambda head, body: http_sse(GOOD))
    out = tmp_path / "out"
    script = tmp_path / "replay_then_die.py"
    script.write_text(KILLED)
    proc = subprocess.Popen(
        [sys.executable, str(script), server.url, str(out), transport],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while len(server.heads) < 150:  # ~3 s into a 20 s replay
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the replay did not get going"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    sent = len(server.heads)

    assert not (out / "spans.parquet").exists()
    logs = span_logs(out)
    assert logs, list(out.iterdir())
    ids = [i for p in logs for i in read_span_log(p).column("request_id").to_pylist()]
    # everything answered more than the flush interval before the kill is on disk
    assert 50 <= len(ids) <= sent
    assert len(set(ids)) == len(ids) and set(ids) <= {f"r{i}" for i in range(1000)}


# --- 4. a replay nothing reached is an infrastructure failure ------------------------------


def test_cli_exits_2_when_no_request_could_connect(tmp_path: Path) -> None:
    import socket

    import typer
    from typer.testing import CliRunner

    from traffic.replay_cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep typer in multi-command mode
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text(
        "".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in records(["a", "b", "c"]))
    )
    args = ["replay", "--traffic", str(traffic), "--base-url", closed, "--timeout", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit: no traceback
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"infrastructure: all 3 requests failed to connect to {closed} " + (
        "(connection_error)"
    )
    assert "Traceback" not in result.output
    assert pq.read_table(tmp_path / "out" / "spans.parquet").num_rows == 3  # still recorded
