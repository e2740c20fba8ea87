-- autoscaling_lag: does quality hold while the autoscaler catches up?
-- Which bucket each span is in is decided once, in _autoscaling_lag_samples.sql (the
-- rule, per telemetry sample) and _autoscaling_lag_buckets.sql (each span takes the
-- sample before it); this file compares the buckets.
-- Saturation at arrival = cluster queue depth per RUNNING replica, read from the
-- telemetry sample just before the request was sent (ASOF JOIN). Replicas still
-- starting do not serve, so a high value means requests wait on scale-up.
-- Reference: the idle bucket; when idle has too few spans (a busy night), the next
-- sufficient bucket up (warm, then saturating), else the run aggregate.
-- A loaded span that arrived while the deployment already ran max_replicas replicas
-- (its ServeConfig's autoscaling ceiling, or its fixed num_replicas) goes to
-- 'at_capacity': the autoscaler could not add anything, so that is a capacity limit,
-- judged by traffic_pattern_drift and tenant_fairness, not a lag. Reported, not judged.
WITH labelled AS MATERIALIZED (  -- read three times below
    -- like with like: quality adjusted for the request's stratum (_span_quality.sql)
    SELECT sq.* REPLACE (sq.adjusted_quality AS quality), b.saturation, b.bucket
    FROM span_quality AS sq
    JOIN autoscaling_lag_buckets AS b USING (span_id)
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
