-- 002: the five check tables (one row per bucket per run), gate results, scenarios.
-- The shared columns come first and in the same order in every check table so the
-- trend view can UNION them BY NAME; check-specific columns follow.

CREATE TABLE check_replica_skew (
    run_id VARCHAR NOT NULL, bucket VARCHAR NOT NULL, n BIGINT, insufficient BOOLEAN,
    mean_quality DOUBLE, p05_quality DOUBLE,
    json_adherence DOUBLE, tool_call_correctness DOUBLE, groundedness DOUBLE,
    reference_match DOUBLE, completion DOUBLE,
    p50_latency_ms DOUBLE, p99_latency_ms DOUBLE, p50_ttft_ms DOUBLE, p99_ttft_ms DOUBLE,
    error_rate DOUBLE,
    reference VARCHAR,       -- what the deltas compare against: a bucket, 'aggregate', 'cohort_median'
    ref_mean_quality DOUBLE, ref_p05_quality DOUBLE, delta_mean DOUBLE, delta_p05 DOUBLE,
    spread DOUBLE            -- max - min replica mean quality over the cohort
);

CREATE TABLE check_autoscaling_lag (
    run_id VARCHAR NOT NULL, bucket VARCHAR NOT NULL, n BIGINT, insufficient BOOLEAN,
    mean_quality DOUBLE, p05_quality DOUBLE,
    json_adherence DOUBLE, tool_call_correctness DOUBLE, groundedness DOUBLE,
    reference_match DOUBLE, completion DOUBLE,
    p50_latency_ms DOUBLE, p99_latency_ms DOUBLE, p50_ttft_ms DOUBLE, p99_ttft_ms DOUBLE,
    error_rate DOUBLE,
    reference VARCHAR,       -- what the deltas compare against: a bucket, 'aggregate', 'cohort_median'
    ref_mean_quality DOUBLE, ref_p05_quality DOUBLE, delta_mean DOUBLE, delta_p05 DOUBLE,
    mean_saturation DOUBLE   -- queue depth per running replica at arrival
);

CREATE TABLE check_kv_cache_eviction (
    run_id VARCHAR NOT NULL, bucket VARCHAR NOT NULL, n BIGINT, insufficient BOOLEAN,
    mean_quality DOUBLE, p05_quality DOUBLE,
    json_adherence DOUBLE, tool_call_correctness DOUBLE, groundedness DOUBLE,
    reference_match DOUBLE, completion DOUBLE,
    p50_latency_ms DOUBLE, p99_latency_ms DOUBLE, p50_ttft_ms DOUBLE, p99_ttft_ms DOUBLE,
    error_rate DOUBLE,
    reference VARCHAR,       -- what the deltas compare against: a bucket, 'aggregate', 'cohort_median'
    ref_mean_quality DOUBLE, ref_p05_quality DOUBLE, delta_mean DOUBLE, delta_p05 DOUBLE,
    dimension VARCHAR,       -- 'cache_hit' (high/medium/low) or 'prompt_length' (len_d1..d10)
    mean_hit_ratio DOUBLE
);

CREATE TABLE check_traffic_pattern_drift (
    run_id VARCHAR NOT NULL, bucket VARCHAR NOT NULL, n BIGINT, insufficient BOOLEAN,
    mean_quality DOUBLE, p05_quality DOUBLE,
    json_adherence DOUBLE, tool_call_correctness DOUBLE, groundedness DOUBLE,
    reference_match DOUBLE, completion DOUBLE,
    p50_latency_ms DOUBLE, p99_latency_ms DOUBLE, p50_ttft_ms DOUBLE, p99_ttft_ms DOUBLE,
    error_rate DOUBLE,
    reference VARCHAR,       -- what the deltas compare against: a bucket, 'aggregate', 'cohort_median'
    ref_mean_quality DOUBLE, ref_p05_quality DOUBLE, delta_mean DOUBLE, delta_p05 DOUBLE,
    replay_share DOUBLE,     -- share of replayed spans in windows of this pattern
    captured_share DOUBLE    -- share of captured requests in windows of this pattern
);

CREATE TABLE check_tenant_fairness (
    run_id VARCHAR NOT NULL, bucket VARCHAR NOT NULL, n BIGINT, insufficient BOOLEAN,
    mean_quality DOUBLE, p05_quality DOUBLE,
    json_adherence DOUBLE, tool_call_correctness DOUBLE, groundedness DOUBLE,
    reference_match DOUBLE, completion DOUBLE,
    p50_latency_ms DOUBLE, p99_latency_ms DOUBLE, p50_ttft_ms DOUBLE, p99_ttft_ms DOUBLE,
    error_rate DOUBLE,
    reference VARCHAR,       -- what the deltas compare against: a bucket, 'aggregate', 'cohort_median'
    ref_mean_quality DOUBLE, ref_p05_quality DOUBLE, delta_mean DOUBLE, delta_p05 DOUBLE,
    ref_p99_latency_ms DOUBLE,  -- aggregate p99 latency of the run
    p99_latency_ratio DOUBLE    -- tenant p99 / reference p99 (other tenants' median; docs/checks.md)
);

-- One row per (check, bucket, expectation) the gate evaluated.
CREATE TABLE expectation_results (
    run_id      VARCHAR NOT NULL,
    "check"     VARCHAR NOT NULL,
    bucket      VARCHAR,
    expectation VARCHAR NOT NULL,
    observed    DOUBLE,
    threshold   DOUBLE,
    success     BOOLEAN      -- null: the metric was null, nothing to judge
);

-- Filled by the scenarios issue; created now so the schema is complete.
CREATE TABLE scenario_results (
    run_id   VARCHAR NOT NULL,
    scenario VARCHAR NOT NULL,
    "check"  VARCHAR,
    status   VARCHAR,
    observed DOUBLE
);
