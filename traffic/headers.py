"""The ``x-*`` HTTP header names between the replay and the serving app, spelled once.

docs/architecture.md ("Telemetry headers") is the contract. The serving app writes the
telemetry headers (``serving.telemetry``) and the replay reads them into span columns
(``traffic.answer``); the replay sends the request headers (``traffic.schedule``) and
the serving app's router and middleware read them. Standard library only, so the
orchestrator's environment imports it without Ray or vLLM.
"""

from __future__ import annotations

__all__ = [
    "HEADER_CACHED_TOKENS",
    "HEADER_CONFIG_VERSION",
    "HEADER_ENGINE_RUNNING",
    "HEADER_ENGINE_WAITING",
    "HEADER_KV_USAGE",
    "HEADER_KV_USAGE_PEAK",
    "HEADER_PIN",
    "HEADER_PROMPT_TOKENS",
    "HEADER_QUEUE_DEPTH",
    "HEADER_REPLICA_ID",
    "HEADER_REQUEST_ID",
    "HEADER_TENANT_ID",
    "TELEMETRY_HEADERS",
]

# Response: what the replica saw at arrival, and what it knew only at the end (the last
# three are repeated in a stream's final chunk, under ``cluster_eval``).
HEADER_REPLICA_ID = "x-replica-id"
HEADER_QUEUE_DEPTH = "x-replica-queue-depth"
HEADER_ENGINE_RUNNING = "x-engine-running"
HEADER_ENGINE_WAITING = "x-engine-waiting"
HEADER_KV_USAGE = "x-kv-cache-usage"
HEADER_CONFIG_VERSION = "x-config-version"
HEADER_KV_USAGE_PEAK = "x-kv-cache-usage-peak"
HEADER_PROMPT_TOKENS = "x-prompt-tokens"
HEADER_CACHED_TOKENS = "x-cached-tokens"

TELEMETRY_HEADERS = (
    HEADER_REPLICA_ID,
    HEADER_QUEUE_DEPTH,
    HEADER_ENGINE_RUNNING,
    HEADER_ENGINE_WAITING,
    HEADER_KV_USAGE,
    HEADER_KV_USAGE_PEAK,
    HEADER_PROMPT_TOKENS,
    HEADER_CACHED_TOKENS,
    HEADER_CONFIG_VERSION,
)

# Request: the span id (also the replica's log key), the tenant, the replica to pin to.
HEADER_REQUEST_ID = "x-request-id"
HEADER_TENANT_ID = "x-tenant-id"
HEADER_PIN = "x-pin-replica"
