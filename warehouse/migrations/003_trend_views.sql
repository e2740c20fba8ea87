-- 003: views for trends across runs (nightly history).

-- Every check row with its run's start time: one place to chart any check over time.
CREATE VIEW v_check_trend AS
WITH all_checks AS (
    SELECT 'replica_skew' AS "check", * FROM check_replica_skew
    UNION ALL BY NAME SELECT 'autoscaling_lag' AS "check", * FROM check_autoscaling_lag
    UNION ALL BY NAME SELECT 'kv_cache_eviction' AS "check", * FROM check_kv_cache_eviction
    UNION ALL BY NAME SELECT 'traffic_pattern_drift' AS "check", * FROM check_traffic_pattern_drift
    UNION ALL BY NAME SELECT 'tenant_fairness' AS "check", * FROM check_tenant_fairness
)
SELECT r.started_at, r.config_hash, c.run_id, c."check", c.bucket, c.n, c.insufficient,
       c.mean_quality, c.p05_quality, c.delta_mean, c.delta_p05,
       c.p50_latency_ms, c.p99_latency_ms, c.error_rate
FROM all_checks AS c
JOIN runs AS r USING (run_id);

-- Replica ids change every night (Serve assigns them), so the trend is per run:
-- how many replicas served pinned traffic, how far apart they were, the worst one.
CREATE VIEW v_replica_trend AS
SELECT r.started_at, r.config_hash, s.run_id,
       count(*)                         AS replicas,
       max(s.spread)                    AS spread,
       min(s.delta_mean)                AS worst_delta_mean,
       arg_min(s.bucket, s.delta_mean)  AS worst_replica,
       max(s.p99_latency_ms)            AS worst_p99_latency_ms,
       bool_or(s.insufficient)          AS any_insufficient
FROM check_replica_skew AS s
JOIN runs AS r USING (run_id)
GROUP BY ALL;

-- Gate outcome per run and check: how many expectations failed, which buckets.
CREATE VIEW v_gate_trend AS
SELECT r.started_at, e.run_id, e."check",
       count(*) FILTER (WHERE e.success = false)                    AS breaches,
       count(*) FILTER (WHERE e.success IS NULL)                    AS insufficient,
       list(DISTINCT e.bucket) FILTER (WHERE e.success = false)     AS breached_buckets
FROM expectation_results AS e
JOIN runs AS r USING (run_id)
GROUP BY ALL;
