"""Telemetry sampler: parsing on realistic Ray 2.60 / vLLM 0.32 text, and a real scrape.

The fixture text follows what the sources export: Serve replica gauges labelled
``deployment`` / ``replica`` / ``application`` (ray/serve/_private/replica.py,
router.py), vLLM gauges and counters with ``model_name`` / ``engine`` / ``ReplicaId``
(vllm/v1/metrics/loggers.py + ray_wrappers.py), Ray's ``ray_`` prefix, its common
labels, counters exported as ``_total`` plus the deprecated gauge twin
(ray/_private/metrics_agent.py), and plenty of unrelated core metrics.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest

from traffic.sampler import (
    TELEMETRY_SCHEMA,
    SamplerConfig,
    TelemetrySampler,
    parse_metrics,
    parse_serve_state,
    run_sampler,
)

COMMON = (
    'Component="core_worker",NodeAddress="127.0.0.1",'
    'SessionName="session_2026_11_23",Version="2.60.0"'
)


def _serve(metric: str, deployment: str, replica: str, value: float, app: str = "llm") -> str:
    return (
        f'{metric}{{{COMMON},WorkerId="w{replica}",application="{app}",'
        f'deployment="{deployment}",replica="{replica}"}} {value}'
    )


def _vllm(metric: str, replica: str, value: float) -> str:
    return (
        f'{metric}{{{COMMON},ReplicaId="{replica}",WorkerId="w{replica}",engine="0",'
        f'model_name="SmolLM2-135M-Instruct"}} {value}'
    )


METRICS = "\n".join(
    [
        "# HELP ray_node_cpu_utilization Total CPU usage on a ray node",
        "# TYPE ray_node_cpu_utilization gauge",
        'ray_node_cpu_utilization{InstanceId="",NodeAddress="127.0.0.1",SessionName="s"} 37.5',
        "# HELP ray_serve_replica_processing_queries The current number of queries being"
        " processed.",
        "# TYPE ray_serve_replica_processing_queries gauge",
        _serve("ray_serve_replica_processing_queries", "LLMServer", "aaa111", 3),
        _serve("ray_serve_replica_processing_queries", "LLMServer", "bbb222", 1),
        _serve("ray_serve_replica_processing_queries", "Ingress", "ccc333", 4),
        _serve("ray_serve_replica_processing_queries", "LLMServer", "dead99", 7),  # stale replica
        "# HELP ray_serve_num_ongoing_requests_at_replicas The current number of requests to this"
        " deployment that have been submitted to a replica.",
        "# TYPE ray_serve_num_ongoing_requests_at_replicas gauge",
        f'ray_serve_num_ongoing_requests_at_replicas{{{COMMON},actor_id="p1",application="llm",'
        'deployment="LLMServer",handle="h1"} 4',
        "# HELP ray_serve_deployment_queued_queries The current number of queries to this"
        " deployment waiting to be assigned to a replica.",
        "# TYPE ray_serve_deployment_queued_queries gauge",
        f'ray_serve_deployment_queued_queries{{{COMMON},actor_id="p1",application="llm",'
        'deployment="LLMServer",handle="h1"} 2',
        f'ray_serve_deployment_queued_queries{{{COMMON},actor_id="p2",application="llm",'
        'deployment="LLMServer",handle="h2"} 1',
        f'ray_serve_deployment_queued_queries{{{COMMON},actor_id="p1",application="llm",'
        'deployment="Ingress",handle="h3"} 5',
        "# HELP ray_vllm_num_requests_running Number of requests in model execution batches.",
        "# TYPE ray_vllm_num_requests_running gauge",
        _vllm("ray_vllm_num_requests_running", "aaa111", 3),
        _vllm("ray_vllm_num_requests_running", "bbb222", 1),
        "# HELP ray_vllm_num_requests_waiting Number of requests waiting to be processed.",
        "# TYPE ray_vllm_num_requests_waiting gauge",
        _vllm("ray_vllm_num_requests_waiting", "aaa111", 2),
        _vllm("ray_vllm_num_requests_waiting", "bbb222", 0),
        "# HELP ray_vllm_num_requests_waiting_by_reason Number of requests waiting, by reason.",
        "# TYPE ray_vllm_num_requests_waiting_by_reason gauge",
        f'ray_vllm_num_requests_waiting_by_reason{{{COMMON},ReplicaId="aaa111",engine="0",'
        'model_name="m",reason="capacity"} 2',
        "# HELP ray_vllm_kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
        "# TYPE ray_vllm_kv_cache_usage_perc gauge",
        _vllm("ray_vllm_kv_cache_usage_perc", "aaa111", 0.62),
        _vllm("ray_vllm_kv_cache_usage_perc", "bbb222", 0.18),
        "# HELP ray_vllm_prefix_cache_queries_total Prefix cache queries, in terms of number of"
        " queried tokens.",
        "# TYPE ray_vllm_prefix_cache_queries_total counter",
        _vllm("ray_vllm_prefix_cache_queries_total", "aaa111", 1200),
        _vllm("ray_vllm_prefix_cache_queries_total", "bbb222", 800),
        "# HELP ray_vllm_prefix_cache_queries (DEPRECATED, use ray_vllm_prefix_cache_queries_total"
        " metric instead) Prefix cache queries.",
        "# TYPE ray_vllm_prefix_cache_queries gauge",
        _vllm("ray_vllm_prefix_cache_queries", "aaa111", 1200),
        _vllm("ray_vllm_prefix_cache_queries", "bbb222", 800),
        "# HELP ray_vllm_prefix_cache_hits_total Prefix cache hits, in terms of number of"
        " cached tokens.",
        "# TYPE ray_vllm_prefix_cache_hits_total counter",
        _vllm("ray_vllm_prefix_cache_hits_total", "aaa111", 640),
        _vllm("ray_vllm_prefix_cache_hits_total", "bbb222", 160),
        "# HELP ray_vllm_time_to_first_token_seconds Histogram of time to first token in seconds.",
        "# TYPE ray_vllm_time_to_first_token_seconds histogram",
        f'ray_vllm_time_to_first_token_seconds_bucket{{{COMMON},ReplicaId="aaa111",le="0.1"}} 3',
        f'ray_vllm_time_to_first_token_seconds_bucket{{{COMMON},ReplicaId="aaa111",le="+Inf"}} 5',
        f'ray_vllm_time_to_first_token_seconds_count{{{COMMON},ReplicaId="aaa111"}} 5',
        f'ray_vllm_time_to_first_token_seconds_sum{{{COMMON},ReplicaId="aaa111"}} 0.9',
    ]
)


def _replica(rid: str, state: str) -> dict:
    return {
        "node_id": "n1",
        "node_ip": "127.0.0.1",
        "actor_id": f"act-{rid}",
        "actor_name": f"SERVE_REPLICA::llm#LLMServer#{rid}",
        "worker_id": f"w{rid}",
        "log_file_path": f"/serve/replica_{rid}.log",
        "replica_id": rid,
        "state": state,
        "pid": 4242,
        "start_time_s": 1763900000.0,
    }


APPLICATIONS = {
    "controller_info": {
        "node_id": "n1",
        "node_ip": "127.0.0.1",
        "actor_id": "c",
        "actor_name": "SERVE_CONTROLLER_ACTOR",
    },
    "proxy_location": "EveryNode",
    "http_options": {"host": "127.0.0.1", "port": 8000},
    "proxies": {"n1": {"node_id": "n1", "status": "HEALTHY"}},
    "applications": {
        "llm": {
            "name": "llm",
            "route_prefix": "/",
            "status": "RUNNING",
            "deployments": {
                "Ingress": {
                    "name": "Ingress",
                    "status": "HEALTHY",
                    "target_num_replicas": 1,
                    "deployment_config": {"name": "Ingress", "num_replicas": 1},
                    "replicas": [_replica("ccc333", "RUNNING")],
                },
                "LLMServer": {
                    "name": "LLMServer",
                    "status": "UPSCALING",
                    "target_num_replicas": 3,
                    "deployment_config": {
                        "name": "LLMServer",
                        "autoscaling_config": {"min_replicas": 1},
                    },
                    "replicas": [
                        _replica("aaa111", "RUNNING"),
                        _replica("bbb222", "RUNNING"),
                        _replica("eee555", "STARTING"),
                    ],
                },
            },
        }
    },
}


def test_serve_state_counts_running_starting_and_target() -> None:
    state = parse_serve_state(APPLICATIONS, deployments=["LLMServer"])
    assert (state.running, state.starting, state.target) == (2, 1, 3)
    assert set(state.replicas) == {"aaa111", "bbb222", "eee555"}

    everything = parse_serve_state(APPLICATIONS)  # default: all deployments of all apps
    assert (everything.running, everything.starting, everything.target) == (3, 1, 4)
    assert parse_serve_state(APPLICATIONS, app="other").replicas == {}


def test_metrics_reduced_to_the_llm_deployment() -> None:
    state = parse_serve_state(APPLICATIONS, deployments=["LLMServer"])
    snap = parse_metrics(
        METRICS, app="llm", deployments=state.deployments, replica_ids=state.replicas
    )
    assert snap.ongoing == {"aaa111": 3.0, "bbb222": 1.0}  # Ingress and the stale replica left out
    assert snap.queued == 3.0
    assert snap.queue_depth == 7.0
    assert snap.running == {"aaa111": 3.0, "bbb222": 1.0}
    assert snap.waiting == {"aaa111": 2.0, "bbb222": 0.0}  # _by_reason not mixed in
    assert snap.kv_usage == {"aaa111": 0.62, "bbb222": 0.18}
    # counters read once (the _total family), not added to their deprecated gauge twin
    assert (snap.prefix_queries, snap.prefix_hits) == (2000.0, 800.0)


def test_metrics_without_dashboard_take_every_engine() -> None:
    snap = parse_metrics(METRICS)
    assert snap.ongoing == {"aaa111": 3.0, "bbb222": 1.0, "ccc333": 4.0, "dead99": 7.0}
    assert snap.queued == 8.0


def test_handles_view_is_the_fallback_when_replicas_do_not_report() -> None:
    text = "\n".join(
        line for line in METRICS.splitlines() if "replica_processing_queries" not in line
    )
    snap = parse_metrics(text, deployments=["LLMServer"])
    assert snap.ongoing == {"(handles)": 4.0}


def test_garbage_metrics_text_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_metrics('ray_serve_replica_processing_queries{replica="a" 3\n')


# --- against a real HTTP server --------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}
    hits: list[tuple[float, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.hits.append((time.monotonic(), self.path))
        status, ctype, body = self.routes.get(self.path, (404, "text/plain", b"no"))
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def ray_head() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"routes": {}, "hits": []})
    handler.routes["/api/serve/applications/"] = (
        200,
        "application/json",
        json.dumps(APPLICATIONS).encode(),
    )
    handler.routes["/metrics"] = (200, "text/plain; version=0.0.4", METRICS.encode())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _config(url: str, **kw) -> SamplerConfig:
    return SamplerConfig(dashboard_url=url, metrics_url=f"{url}/metrics", **kw)


def test_sampler_scrapes_a_real_server_into_the_telemetry_schema(ray_head, tmp_path) -> None:
    url, handler = ray_head
    stop = threading.Event()
    timer = threading.Timer(1.25, stop.set)
    timer.start()
    result = run_sampler(
        _config(url, app="llm", deployments=("LLMServer",), interval_s=0.25),
        stop,
        tmp_path / "t.parquet",
    )
    timer.join()

    assert result.gaps == 0 and result.partial == 0
    assert result.samples >= 4  # ≥ 1 Hz by a wide margin
    table = pq.read_table(result.path)
    assert table.schema.equals(TELEMETRY_SCHEMA)
    row = table.to_pylist()[0]
    assert row["sampled_at"].tzinfo is not None
    assert (row["replica_count"], row["replicas_starting"], row["target_replicas"]) == (2, 1, 3)
    assert row["queue_depth"] == 7.0
    assert (row["engine_running"], row["engine_waiting"], row["kv_cache_usage"]) == (4.0, 2.0, 0.62)
    assert (row["prefix_cache_queries"], row["prefix_cache_hits"]) == (2000.0, 800.0)
    replicas = json.loads(row["replicas"])
    assert replicas["aaa111"] == {
        "state": "RUNNING",
        "ongoing": 3.0,
        "running": 3.0,
        "waiting": 2.0,
        "kv_cache_usage": 0.62,
    }
    assert replicas["eee555"] == {"state": "STARTING"}
    # anchored ticks: evenly spaced dashboard scrapes
    times = [t for t, path in handler.hits if path.startswith("/api")]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0.1 < g < 0.5 for g in gaps), gaps  # not drifting: ticks at k × 0.25 s
    assert abs((times[-1] - times[0]) / (len(times) - 1) - 0.25) < 0.05, times


def test_failed_scrapes_are_gaps_not_crashes(ray_head) -> None:
    url, handler = ray_head

    async def main():
        sampler = TelemetrySampler(_config(url, interval_s=0.05))
        import httpx

        async with httpx.AsyncClient() as client:
            handler.routes["/metrics"] = (500, "text/plain", b"boom")
            half = await sampler.sample_once(client)
            handler.routes["/api/serve/applications/"] = (503, "text/plain", b"down")
            none = await sampler.sample_once(client)
        dead = TelemetrySampler(
            SamplerConfig(
                f"http://127.0.0.1:{_closed_port()}", f"http://127.0.0.1:{_closed_port()}/metrics"
            )
        )
        async with httpx.AsyncClient() as client:
            also_none = await dead.sample_once(client)
        return sampler, half, none, also_none, dead

    sampler, half, none, also_none, dead = asyncio.run(main())
    assert half is not None and half.replica_count == 3 and half.queue_depth is None
    assert none is None and also_none is None
    assert (sampler.gaps, sampler.partial, len(sampler.samples)) == (1, 1, 1)
    assert dead.gaps == 1


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_run_replay_samples_beside_the_replay(ray_head, tmp_path) -> None:
    import httpx

    from traffic.format import TrafficRecord
    from traffic.replay import ReplayPlan, run_replay
    from traffic.schedule import build_replay

    url, _ = ray_head
    sse = 'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    records = [
        TrafficRecord(request_id=f"r{i}", arrival=i * 0.1, tenant_id="t", body={"messages": []})
        for i in range(8)
    ]
    result = run_replay(
        ReplayPlan(build_replay(records)),
        tmp_path,
        lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://t"),
        sampler=_config(url, interval_s=0.2),
    )
    assert result.statuses == {"ok": 8}
    assert result.telemetry_path == tmp_path / "telemetry.parquet"
    assert result.telemetry_samples >= 3 and result.telemetry_gaps == 0
    assert pq.read_table(result.telemetry_path).schema.equals(TELEMETRY_SCHEMA)
