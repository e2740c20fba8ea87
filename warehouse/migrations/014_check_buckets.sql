-- 014: one long result table for every check, one thin view per check.
-- Until now each check wrote its own table (002 and 008 cloned a 16-line column block
-- eight times, and 005, 006, 010, 012, 013 altered the clones one by one). Now a check
-- writes rows of check_buckets, keyed by (run_id, check, dimension, bucket), and leaves
-- empty the columns it does not compute. `check_<name>` stays, as a view with exactly the
-- columns that check computes (checks/registry.py derives the same views from each
-- check's spec; a test holds them equal). Existing rows move here unchanged: the
-- history of every night is kept.
--   dimension: what the check's buckets are
--     replica_skew 'replica' · autoscaling_lag 'load' · traffic_pattern_drift 'pattern'
--     tenant_fairness 'tenant' · kv_cache_eviction cache_hit / prompt_length /
--     prefix_reuse · slo run / tenant / golden (its scope) · measurement 'item'
--     history the check (or golden set) the compared row comes from

CREATE TABLE check_buckets (
    run_id VARCHAR NOT NULL, "check" VARCHAR NOT NULL, dimension VARCHAR,
    bucket VARCHAR NOT NULL, n BIGINT, insufficient BOOLEAN,
    -- the bucket statistics the five bucket checks share (checks/sql/_macros.sql)
    mean_quality DOUBLE, p05_quality DOUBLE, sd_quality DOUBLE,
    json_adherence DOUBLE, tool_call_correctness DOUBLE, groundedness DOUBLE,
    reference_match DOUBLE, completion DOUBLE,
    p50_latency_ms DOUBLE, p99_latency_ms DOUBLE, p50_ttft_ms DOUBLE, p99_ttft_ms DOUBLE,
    error_rate DOUBLE,
    reference VARCHAR, ref_mean_quality DOUBLE, ref_p05_quality DOUBLE,
    delta_mean DOUBLE, delta_p05 DOUBLE, se_delta_mean DOUBLE, delta_mean_upper DOUBLE,
    ref_error_rate DOUBLE, delta_error_rate DOUBLE, delta_error_rate_lower DOUBLE,
    -- replica_skew
    spread DOUBLE,
    -- autoscaling_lag
    mean_saturation DOUBLE,
    -- kv_cache_eviction
    mean_hit_ratio DOUBLE, evicted_share DOUBLE,
    -- traffic_pattern_drift
    replay_share DOUBLE, captured_share DOUBLE,
    -- tenant_fairness
    ref_p99_latency_ms DOUBLE, p99_latency_ratio DOUBLE, tail_latency_q DOUBLE,
    tail_latency_ms DOUBLE, ref_tail_latency_ms DOUBLE, tail_latency_ratio DOUBLE,
    p_slower DOUBLE, slower_z DOUBLE, measurably_slower BOOLEAN,
    -- slo
    scope VARCHAR, error_share DOUBLE, goodput DOUBLE,
    timeouts BIGINT, errors BIGINT, failed_while_starting BIGINT,
    -- measurement
    item VARCHAR, missing_share DOUBLE, lag_p99_ms DOUBLE, gap_share DOUBLE,
    identified_share DOUBLE, detail VARCHAR, foreign_cpu_share DOUBLE,
    -- history
    metric VARCHAR, worse_when VARCHAR, observed DOUBLE, baseline_nights BIGINT,
    baseline_median DOUBLE, baseline_worst DOUBLE, margin DOUBLE, excess DOUBLE,
    required_n BIGINT, insufficient_reason VARCHAR
);

INSERT INTO check_buckets BY NAME
SELECT 'replica_skew' AS "check", 'replica' AS dimension, * FROM check_replica_skew;
INSERT INTO check_buckets BY NAME
SELECT 'autoscaling_lag' AS "check", 'load' AS dimension, * FROM check_autoscaling_lag;
INSERT INTO check_buckets BY NAME
SELECT 'kv_cache_eviction' AS "check", * FROM check_kv_cache_eviction;
INSERT INTO check_buckets BY NAME
SELECT 'traffic_pattern_drift' AS "check", 'pattern' AS dimension, *
FROM check_traffic_pattern_drift;
INSERT INTO check_buckets BY NAME
SELECT 'tenant_fairness' AS "check", 'tenant' AS dimension, * FROM check_tenant_fairness;
INSERT INTO check_buckets BY NAME
SELECT 'slo' AS "check", scope AS dimension, * FROM check_slo;
INSERT INTO check_buckets BY NAME
SELECT 'measurement' AS "check", 'item' AS dimension, * FROM check_measurement;
INSERT INTO check_buckets BY NAME
SELECT 'history' AS "check", regexp_extract(bucket, '^[a-z_]+') AS dimension, *
FROM check_history;

DROP TABLE check_replica_skew;
DROP TABLE check_autoscaling_lag;
DROP TABLE check_kv_cache_eviction;
DROP TABLE check_traffic_pattern_drift;
DROP TABLE check_tenant_fairness;
DROP TABLE check_slo;
DROP TABLE check_measurement;
DROP TABLE check_history;


-- One view per check: its own columns (the views checks/registry.py derives).
-- replica_skew's view leaves out the error-rate deltas its table had and never filled.
CREATE VIEW check_replica_skew AS
SELECT
    run_id, bucket, n, insufficient, mean_quality, p05_quality, sd_quality,
    json_adherence, tool_call_correctness, groundedness, reference_match, completion,
    p50_latency_ms, p99_latency_ms, p50_ttft_ms, p99_ttft_ms, error_rate, reference,
    ref_mean_quality, ref_p05_quality, delta_mean, delta_p05, se_delta_mean,
    delta_mean_upper, spread
FROM check_buckets WHERE "check" = 'replica_skew';

CREATE VIEW check_autoscaling_lag AS
SELECT
    run_id, bucket, n, insufficient, mean_quality, p05_quality, sd_quality,
    json_adherence, tool_call_correctness, groundedness, reference_match, completion,
    p50_latency_ms, p99_latency_ms, p50_ttft_ms, p99_ttft_ms, error_rate, reference,
    ref_mean_quality, ref_p05_quality, delta_mean, delta_p05, se_delta_mean,
    delta_mean_upper, ref_error_rate, delta_error_rate, delta_error_rate_lower,
    mean_saturation
FROM check_buckets WHERE "check" = 'autoscaling_lag';

CREATE VIEW check_kv_cache_eviction AS
SELECT
    run_id, bucket, n, insufficient, dimension, mean_quality, p05_quality, sd_quality,
    json_adherence, tool_call_correctness, groundedness, reference_match, completion,
    p50_latency_ms, p99_latency_ms, p50_ttft_ms, p99_ttft_ms, error_rate, reference,
    ref_mean_quality, ref_p05_quality, delta_mean, delta_p05, se_delta_mean,
    delta_mean_upper, ref_error_rate, delta_error_rate, delta_error_rate_lower,
    mean_hit_ratio, evicted_share
FROM check_buckets WHERE "check" = 'kv_cache_eviction';

CREATE VIEW check_traffic_pattern_drift AS
SELECT
    run_id, bucket, n, insufficient, mean_quality, p05_quality, sd_quality,
    json_adherence, tool_call_correctness, groundedness, reference_match, completion,
    p50_latency_ms, p99_latency_ms, p50_ttft_ms, p99_ttft_ms, error_rate, reference,
    ref_mean_quality, ref_p05_quality, delta_mean, delta_p05, se_delta_mean,
    delta_mean_upper, ref_error_rate, delta_error_rate, delta_error_rate_lower,
    replay_share, captured_share
FROM check_buckets WHERE "check" = 'traffic_pattern_drift';

CREATE VIEW check_tenant_fairness AS
SELECT
    run_id, bucket, n, insufficient, mean_quality, p05_quality, sd_quality,
    json_adherence, tool_call_correctness, groundedness, reference_match, completion,
    p50_latency_ms, p99_latency_ms, p50_ttft_ms, p99_ttft_ms, error_rate, reference,
    ref_mean_quality, ref_p05_quality, delta_mean, delta_p05, se_delta_mean,
    delta_mean_upper, ref_error_rate, delta_error_rate, delta_error_rate_lower,
    ref_p99_latency_ms, p99_latency_ratio, tail_latency_q, tail_latency_ms,
    ref_tail_latency_ms, tail_latency_ratio, p_slower, slower_z, measurably_slower
FROM check_buckets WHERE "check" = 'tenant_fairness';

CREATE VIEW check_slo AS
SELECT
    run_id, bucket, n, insufficient, scope, error_share, p99_ttft_ms, p99_latency_ms,
    goodput, mean_quality, sd_quality, p50_ttft_ms, p50_latency_ms, timeouts, errors,
    failed_while_starting
FROM check_buckets WHERE "check" = 'slo';

CREATE VIEW check_measurement AS
SELECT
    run_id, bucket, n, insufficient, item, missing_share, lag_p99_ms, gap_share,
    identified_share, detail, foreign_cpu_share
FROM check_buckets WHERE "check" = 'measurement';

CREATE VIEW check_history AS
SELECT
    run_id, bucket, n, insufficient, metric, worse_when, observed, baseline_nights,
    baseline_median, baseline_worst, margin, excess, required_n, insufficient_reason
FROM check_buckets WHERE "check" = 'history';

-- The trend view reads the long table instead of a UNION of the five bucket tables.
CREATE OR REPLACE VIEW v_check_trend AS
SELECT r.started_at, r.config_hash, c.run_id, c."check", c.bucket, c.n, c.insufficient,
       c.mean_quality, c.p05_quality, c.delta_mean, c.delta_p05,
       c.p50_latency_ms, c.p99_latency_ms, c.error_rate
FROM check_buckets AS c
JOIN runs AS r USING (run_id)
WHERE c."check" IN ('replica_skew', 'autoscaling_lag', 'kv_cache_eviction',
                    'traffic_pattern_drift', 'tenant_fairness');
