-- The facts of one judged run that exports/prometheus.py turns into metrics.
-- Read-only; every query binds $run_id. Sections are named (`-- name: <query>`) and
-- run one at a time.

-- name: run
-- The run's ledger row. Only the cluster's app and deployment names are read from
-- `cluster`: it also holds the serve URL, which never becomes a label. The host's
-- memory probe comes from the plan (only when the cluster ran on the flow's host).
SELECT run_id,
       started_at,
       finished_at,
       verdict,
       baseline_key,
       config_hash,
       cluster ->> 'app'                                         AS app,
       CAST(cluster -> 'deployments' AS VARCHAR)                 AS deployments,
       (plan -> 'host_speed' ->> 'probe_ms')::DOUBLE             AS host_probe_ms
FROM runs
WHERE run_id = $run_id;

-- name: checks
-- Each check's outcome as the gate recorded it in expectation_results (the same
-- rules as checks/gate.py's coverage): a check is judged when at least one metric
-- rule looked at a value; it failed when one of those rules failed. Thin buckets
-- (sufficient_samples = false) are counted apart and never read as a pass.
WITH checks AS (
    SELECT unnest($checks::VARCHAR[]) AS "check",
           generate_subscripts($checks::VARCHAR[], 1) AS position
),
results AS (
    SELECT * FROM expectation_results WHERE run_id = $run_id
)
SELECT c."check",
       coalesce(bool_or(r.observed IS NOT NULL)
                  FILTER (WHERE r.expectation <> 'sufficient_samples'), false) AS judged,
       count(*) FILTER (WHERE r.success = false
                          AND r.expectation <> 'sufficient_samples')          AS breaches,
       count(*) FILTER (WHERE r.success = false
                          AND r.expectation = 'sufficient_samples')           AS insufficient
FROM checks AS c
LEFT JOIN results AS r USING ("check")
GROUP BY c."check", c.position
ORDER BY c.position;

-- name: buckets
-- Per bucket: requests, quality, error share and p99 latency, for the five bucket
-- checks and the night's SLO scopes (check_slo: run, golden, tenant:<id>).
-- kv_cache_eviction buckets by three dimensions that share bucket names ('unknown'),
-- so its label is '<dimension>/<bucket>'.
WITH bucket_rows AS (
    SELECT 'replica_skew' AS "check", bucket, n, insufficient, mean_quality,
           error_rate AS error_share, p99_latency_ms
    FROM check_replica_skew WHERE run_id = $run_id
    UNION ALL
    SELECT 'autoscaling_lag', bucket, n, insufficient, mean_quality, error_rate,
           p99_latency_ms
    FROM check_autoscaling_lag WHERE run_id = $run_id
    UNION ALL
    SELECT 'kv_cache_eviction', dimension || '/' || bucket, n, insufficient, mean_quality,
           error_rate, p99_latency_ms
    FROM check_kv_cache_eviction WHERE run_id = $run_id
    UNION ALL
    SELECT 'traffic_pattern_drift', bucket, n, insufficient, mean_quality, error_rate,
           p99_latency_ms
    FROM check_traffic_pattern_drift WHERE run_id = $run_id
    UNION ALL
    SELECT 'tenant_fairness', bucket, n, insufficient, mean_quality, error_rate,
           p99_latency_ms
    FROM check_tenant_fairness WHERE run_id = $run_id
    UNION ALL
    SELECT 'slo', bucket, n, insufficient, mean_quality, error_share, p99_latency_ms
    FROM check_slo WHERE run_id = $run_id
)
SELECT * FROM bucket_rows ORDER BY "check", bucket;

-- name: spans
-- Replay fidelity, spans: requests planned per mode (runs.plan, as check_measurement
-- counted them) against spans recorded per mode.
WITH planned AS (
    SELECT substr(bucket, length('spans:') + 1) AS mode, n AS planned
    FROM check_measurement
    WHERE run_id = $run_id AND item = 'spans'
),
received AS (
    SELECT mode, count(*) AS received
    FROM spans
    WHERE run_id = $run_id
    GROUP BY mode
)
SELECT coalesce(p.mode, r.mode) AS mode, p.planned, coalesce(r.received, 0) AS received
FROM planned AS p
FULL OUTER JOIN received AS r USING (mode)
ORDER BY 1;

-- name: measurement
-- Replay fidelity, the rest: schedule lag, telemetry gaps, replica ids named, and the
-- share of the host's CPU other work took (only when the cluster ran on the flow's host).
SELECT max(lag_p99_ms)        FILTER (WHERE item = 'schedule_lag') AS lag_p99_ms,
       max(gap_share)         FILTER (WHERE item = 'telemetry')    AS gap_share,
       max(identified_share)  FILTER (WHERE item = 'replica_ids')  AS identified_share,
       max(foreign_cpu_share) FILTER (WHERE item = 'host_cpu')     AS foreign_cpu_share
FROM check_measurement
WHERE run_id = $run_id;
