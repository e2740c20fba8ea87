"""Telemetry headers and faults, around a stand-in for vLLM's OpenAI app."""

import asyncio
import json

import httpx
import pytest

from serving.middleware import ReplicaRuntime, TelemetryMiddleware
from serving.telemetry import ArrivalTelemetry, EngineSnapshot, EngineState, arrival_headers
from serving.user_config import UserConfig

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"

USAGE = {"prompt_tokens": 40, "completion_tokens": 5,
         "prompt_tokens_details": {"cached_tokens": 32}}


class FakeOpenAI:
    """Echoes the request it received; streams when asked; can hold requests open."""

    def __init__(self, engine: EngineState) -> None:
        self.engine = engine
        self.seen: list[dict] = []
        self.release = asyncio.Event()
        self.hold = False

    async def __call__(self, scope, receive, send):
        if scope["path"] == "/v1/models":
            await _json(send, {"data": []})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        self.seen.append(request)
        if self.hold:
            await self.release.wait()
        self.engine.update(running=1, waiting=0, kv_cache_usage=0.5)  # usage rises mid-request
        if request.get("stream"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for event in ({"choices": [{"delta": {"content": "hi"}}]},
                          {"choices": [], "usage": USAGE}):
                await send({"type": "http.response.body",
                            "body": b"data: " + json.dumps(event).encode() + b"\n\n",
                            "more_body": True})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
            return
        await _json(send, {"choices": [{"message": {"content": "ok"}}], "usage": USAGE})


async def _json(send, payload):
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def make(user_config=None, rank=0):
    engine = EngineState()
    engine.update(running=3, waiting=2, kv_cache_usage=0.25)
    runtime = ReplicaRuntime(replica_id="rep-a", rank=rank, engine=engine)
    runtime.apply(UserConfig.parse(user_config))
    inner = FakeOpenAI(engine)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=TelemetryMiddleware(inner, runtime)),
        base_url="http://replica",
    )
    return client, inner, runtime


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


async def test_a_chat_response_carries_every_telemetry_header():
    client, _, _ = make({"config_version": "v3"})
    response = await client.post("/v1/chat/completions", json=CHAT)
    h = response.headers
    assert response.json()["choices"][0]["message"]["content"] == "ok"
    assert h["x-replica-id"] == "rep-a"
    assert h["x-replica-queue-depth"] == "0"
    assert (h["x-engine-running"], h["x-engine-waiting"]) == ("3", "2")
    assert h["x-kv-cache-usage"] == "0.2500"
    assert h["x-kv-cache-usage-peak"] == "0.5000"
    assert (h["x-prompt-tokens"], h["x-cached-tokens"]) == ("40", "32")
    assert h["x-config-version"] == "v3"
    assert int(h["content-length"]) == len(response.content)


async def test_queue_depth_counts_requests_already_in_flight_on_arrival():
    client, inner, runtime = make()
    inner.hold = True
    first = [asyncio.create_task(client.post("/v1/chat/completions", json=CHAT)) for _ in range(3)]
    while runtime.in_flight < 3:
        await asyncio.sleep(0.01)
    inner.hold = False
    fourth = await client.post("/v1/chat/completions", json=CHAT)
    inner.release.set()
    depths = sorted(int(r.headers["x-replica-queue-depth"]) for r in await asyncio.gather(*first))
    assert depths == [0, 1, 2]
    assert fourth.headers["x-replica-queue-depth"] == "3"
    assert runtime.in_flight == 0


async def test_streaming_sends_arrival_headers_first_and_a_closing_telemetry_chunk():
    client, _, _ = make()
    async with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
        assert r.headers["x-replica-id"] == "rep-a"
        events = [line[6:] async for line in r.aiter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    closing = json.loads(events[-2])
    assert closing["choices"] == []
    assert closing["cluster_eval"] == {"x-kv-cache-usage-peak": "0.5000",
                                       "x-prompt-tokens": "40", "x-cached-tokens": "32"}


async def test_sampling_defaults_and_drift_reach_the_engine_rewritten():
    client, inner, _ = make({"sampling_defaults": {"temperature": 0.0},
                             "faults": [{"kind": "drift", "replica_rank": 0, "max_tokens": 3}]})
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert inner.seen[-1]["temperature"] == 0.0 and inner.seen[-1]["max_tokens"] == 3
    assert response.headers["x-config-version"] == "0+fault:drift"


async def test_a_priority_fault_ranks_one_tenants_requests_behind_the_others():
    client, inner, _ = make({"faults": [{"kind": "priority", "all_replicas": True,
                                         "tenant": "small", "priority": 10}]})
    response = await client.post("/v1/chat/completions", json=CHAT,
                                  headers={"x-tenant-id": "small"})
    assert inner.seen[-1]["priority"] == 10
    assert response.headers["x-config-version"] == "0+fault:priority"
    await client.post("/v1/chat/completions", json=CHAT, headers={"x-tenant-id": "big"})
    await client.post("/v1/chat/completions", json=CHAT)
    assert "priority" not in inner.seen[-2] and "priority" not in inner.seen[-1]


async def test_an_error_fault_answers_503_with_telemetry_and_never_reaches_the_engine():
    client, inner, runtime = make({"faults": [{"kind": "error", "all_replicas": True,
                                               "error_rate": 1.0}]})
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 503
    assert response.headers["x-replica-id"] == "rep-a"
    assert "fault:error" in response.headers["x-config-version"]
    assert inner.seen == [] and runtime.in_flight == 0


async def test_other_routes_get_identity_headers_only():
    client, _, _ = make({"config_version": "v9"})
    response = await client.get("/v1/models")
    assert response.headers["x-replica-id"] == "rep-a"
    assert response.headers["x-config-version"] == "v9"
    assert "x-replica-queue-depth" not in response.headers


async def test_a_malformed_body_is_passed_through_for_the_engine_to_reject():
    client, inner, _ = make()
    with pytest.raises(json.JSONDecodeError):
        await client.post("/v1/chat/completions", content=b"{not json")
    assert inner.seen == []


def test_arrival_headers_format():
    headers = arrival_headers(ArrivalTelemetry("r", 4, EngineSnapshot(1, 0, 0.123456), "v1"))
    assert headers == {"x-replica-id": "r", "x-replica-queue-depth": "4",
                       "x-engine-running": "1", "x-engine-waiting": "0",
                       "x-kv-cache-usage": "0.1235", "x-config-version": "v1"}


class HandlerInOwnTask:
    """vLLM's ``with_cancellation``: work in a task of its own, stopped only by a disconnect."""

    def __init__(self) -> None:
        self.work_cancelled = asyncio.Event()

    async def __call__(self, scope, receive, send):
        await receive()  # the body

        async def work():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.work_cancelled.set()
                raise

        async def listen():
            while (await receive())["type"] != "http.disconnect":
                pass

        handler, listener = asyncio.create_task(work()), asyncio.create_task(listen())
        done, pending = await asyncio.wait([handler, listener],
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()


async def test_a_cancelled_request_tells_the_app_the_client_left_so_generation_stops():
    engine = EngineState()
    runtime = ReplicaRuntime(replica_id="rep-a", rank=0, engine=engine)
    inner = HandlerInOwnTask()
    app = TelemetryMiddleware(inner, runtime)
    never = asyncio.Event()
    messages = [{"type": "http.request", "body": json.dumps(CHAT).encode()}]

    async def receive():
        if messages:
            return messages.pop()
        await never.wait()  # Serve cancels the task rather than sending a disconnect

    async def send(message):
        pass

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    request = asyncio.create_task(app(scope, receive, send))
    while runtime.in_flight == 0:
        await asyncio.sleep(0.01)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(inner.work_cancelled.wait(), timeout=2)
    assert runtime.in_flight == 0
