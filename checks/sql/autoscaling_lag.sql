-- autoscaling_lag: does quality hold while the autoscaler catches up?
-- Saturation at arrival = cluster queue depth per RUNNING replica, read from the
-- telemetry sample just before the request was sent (ASOF JOIN). Replicas still
-- starting do not serve, so a high value means requests wait on scale-up.
-- Reference: the idle bucket; when idle has too few spans (a busy night), the next
-- sufficient bucket up (warm, then saturating), else the run aggregate.
-- A loaded span that arrived while the deployment already ran $max_replicas replicas
-- (its ServeConfig's autoscaling ceiling, or its fixed num_replicas) goes to
-- 'at_capacity': the autoscaler could not add anything, so that is a capacity limit,
-- judged by traffic_pattern_drift and tenant_fairness, not a lag. Reported, not judged.
INSERT INTO check_autoscaling_lag BY NAME
WITH run_telemetry AS (
    SELECT sampled_at, replica_count, queue_depth
    FROM telemetry
    WHERE run_id = $run_id
),
arrivals AS (
    -- like with like: quality adjusted for the request's stratum (_span_quality.sql)
    SELECT sq.* REPLACE (sq.adjusted_quality AS quality),
           t.replica_count AS replicas_at_arrival,
           CASE WHEN t.replica_count > 0 THEN t.queue_depth / t.replica_count
                -- no replica running: any queued request waits on a cold start
                WHEN t.queue_depth > 0 THEN 'infinity'::DOUBLE
                WHEN t.sampled_at IS NOT NULL THEN 0.0
           END AS saturation
    FROM span_quality AS sq
    ASOF LEFT JOIN run_telemetry AS t ON sq.sent_at >= t.sampled_at
    -- production-shaped traffic only: pinned and baseline probes set their own load
    WHERE sq.mode IN ('replay', 'tenant_burst')
),
labelled AS MATERIALIZED (  -- read three times below
    SELECT *,
           CASE WHEN saturation IS NULL          THEN 'unknown'  -- sent before any sample
                WHEN saturation < $warm_at       THEN 'idle'
                WHEN replicas_at_arrival >= $max_replicas THEN 'at_capacity'
                WHEN saturation < $saturating_at THEN 'warm'
                WHEN saturation < $scaling_at    THEN 'saturating'
                ELSE 'scaling'
           END AS bucket
    FROM arrivals
),
saturation AS (
    SELECT bucket, avg(saturation) FILTER (WHERE isfinite(saturation)) AS mean_saturation
    FROM labelled
    GROUP BY bucket
)
SELECT $run_id AS run_id, c.*, s.mean_saturation
FROM compare_buckets('labelled', $min_samples, ['idle', 'warm', 'saturating', 'scaling'],
                     ['idle', 'warm', 'saturating'], $significance_z) AS c
LEFT JOIN saturation AS s USING (bucket);
