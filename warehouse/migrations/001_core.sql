-- 001: the run ledger and the raw facts of a run (spans, telemetry, scores).
-- Every table carries run_id so a run can be replaced or dropped as a unit.

CREATE TABLE runs (
    run_id       VARCHAR PRIMARY KEY,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    config_hash  VARCHAR,        -- sha256 of the redacted config: same hash, same config
    config       VARCHAR,        -- the ServeConfig as YAML, secrets and env vars stripped
    cluster      JSON,           -- cluster shape: replicas, autoscaling bounds, hardware
    status       VARCHAR,
    message      VARCHAR
);

-- One row per request sent (docs/architecture.md, Span).
CREATE TABLE spans (
    run_id               VARCHAR NOT NULL,
    span_id              VARCHAR NOT NULL,
    request_id           VARCHAR,
    mode                 VARCHAR,
    tenant_id            VARCHAR,
    endpoint             VARCHAR,
    intended_at          TIMESTAMPTZ,
    sent_at              TIMESTAMPTZ,
    schedule_lag_ms      DOUBLE,
    ttft_ms              DOUBLE,
    latency_ms           DOUBLE,
    status               VARCHAR,
    http_status          INTEGER,
    error_class          VARCHAR,
    output_text          VARCHAR,
    tool_calls           VARCHAR,
    finish_reason        VARCHAR,
    prompt_tokens        BIGINT,
    completion_tokens    BIGINT,
    cached_tokens        BIGINT,
    replica_id           VARCHAR,
    pinned_replica       VARCHAR,
    replica_queue_depth  BIGINT,
    engine_running       BIGINT,
    engine_waiting       BIGINT,
    kv_cache_usage       DOUBLE,
    kv_cache_usage_peak  DOUBLE,
    config_version       VARCHAR,
    request_body         VARCHAR,
    expect               VARCHAR,
    tags                 VARCHAR
);

-- Cluster samples, >= 1 Hz (docs/architecture.md, Telemetry sample).
CREATE TABLE telemetry (
    run_id               VARCHAR NOT NULL,
    sampled_at           TIMESTAMPTZ NOT NULL,
    replica_count        BIGINT,
    replicas_starting    BIGINT,
    target_replicas      BIGINT,
    queue_depth          DOUBLE,
    engine_running       DOUBLE,
    engine_waiting       DOUBLE,
    kv_cache_usage       DOUBLE,
    prefix_cache_queries DOUBLE,
    prefix_cache_hits    DOUBLE,
    replicas             VARCHAR
);

-- Long form: one row per span and rubric; null score = rubric does not apply.
CREATE TABLE scores (
    run_id   VARCHAR NOT NULL,
    span_id  VARCHAR NOT NULL,
    rubric   VARCHAR NOT NULL,
    score    DOUBLE CHECK (score BETWEEN 0 AND 1)
);
