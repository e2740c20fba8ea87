-- autoscaling_lag's rule, applied to each telemetry sample of the run: saturation =
-- cluster queue depth per RUNNING replica (replicas still starting do not serve, so
-- a high value means requests wait on scale-up), labelled
--   idle < $warm_at <= warm < $saturating_at <= saturating < $scaling_at <= scaling,
-- and 'at_capacity' when the loaded deployment already ran $max_replicas replicas
-- (its ServeConfig's autoscaling ceiling, or its fixed num_replicas): the autoscaler
-- could not add anything, so that is a capacity limit, not a lag.
-- A span takes the label of the sample just before it was sent
-- (_autoscaling_lag_buckets.sql); the report's timeline shades these samples.
-- sample_no orders the samples once, so a span and a shaded stretch name the same one.
CREATE OR REPLACE TEMP TABLE autoscaling_lag_samples AS
WITH run_telemetry AS (
    SELECT sampled_at, replica_count, queue_depth
    FROM telemetry
    WHERE run_id = $run_id
),
saturated AS (
    SELECT row_number() OVER (ORDER BY sampled_at) AS sample_no,
           sampled_at, replica_count,
           CASE WHEN replica_count > 0 THEN queue_depth / replica_count
                -- no replica running: any queued request waits on a cold start
                WHEN queue_depth > 0 THEN 'infinity'::DOUBLE
                ELSE 0.0
           END AS saturation
    FROM run_telemetry
)
SELECT *,
       CASE WHEN saturation IS NULL              THEN 'unknown'
            WHEN saturation < $warm_at           THEN 'idle'
            WHEN replica_count >= $max_replicas  THEN 'at_capacity'
            WHEN saturation < $saturating_at     THEN 'warm'
            WHEN saturation < $scaling_at        THEN 'saturating'
            ELSE 'scaling'
       END AS bucket
FROM saturated;
