-- traffic_pattern_drift's rule, applied to windows of time: the run is cut into
-- windows of $window_s seconds from its first replayed send (the nightly demo
-- compresses time, so it passes shorter windows). From telemetry, a window is
--   burst      peak queue depth > $burst_factor x the window's mean queue depth, and
--              above one replica's capacity (a peak one replica absorbs is noise)
--   sustained  mean queue depth > $sustained_factor x replicas x $per_replica_capacity
--   steady     otherwise
-- Windows without telemetry have no row here; their spans are steady (nothing says
-- otherwise, _traffic_pattern_drift_buckets.sql). The report's timeline shades these
-- windows from origin_s + window_no x $window_s.
CREATE OR REPLACE TEMP TABLE traffic_pattern_windows AS
WITH origin AS (
    SELECT epoch(min(sent_at)) AS origin_s
    FROM span_quality
    WHERE mode IN ('replay', 'tenant_burst')
),
run_telemetry AS (
    SELECT t.queue_depth, t.replica_count,
           floor((epoch(t.sampled_at) - o.origin_s) / $window_s) AS window_no
    FROM telemetry AS t, origin AS o
    WHERE t.run_id = $run_id
)
SELECT w.window_no,
       o.origin_s,
       o.origin_s + w.window_no * $window_s       AS start_s,
       o.origin_s + (w.window_no + 1) * $window_s AS end_s,
       w.pattern
FROM (
    SELECT window_no,
           CASE WHEN max(queue_depth) > $burst_factor * avg(queue_depth)
                 AND max(queue_depth) > $per_replica_capacity THEN 'burst'
                WHEN avg(queue_depth) > $sustained_factor * avg(replica_count)
                                        * $per_replica_capacity THEN 'sustained'
                ELSE 'steady'
           END AS pattern
    FROM run_telemetry
    GROUP BY window_no
) AS w
CROSS JOIN origin AS o;
