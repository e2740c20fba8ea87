-- traffic_pattern_drift's assignment: every replayed span (replay and tenant bursts)
-- takes its window's pattern (traffic_pattern_windows, where the rule is).
-- A burst or sustained span sent while the deployment ran fewer replicas than its
-- ceiling ($max_replicas, from the run's ServeConfig; replicas read from the sample
-- just before the send) goes to 'below_ceiling': the autoscaler had room to absorb
-- that load, so a loss there is autoscaling_lag's finding (it judges exactly those
-- spans), not the pattern's. One loss, one owner: the mirror of 'at_capacity'.
CREATE OR REPLACE TEMP TABLE traffic_pattern_drift_buckets AS
WITH replayed AS (
    SELECT span_id, sent_at
    FROM span_quality
    WHERE mode IN ('replay', 'tenant_burst')
),
run_telemetry AS (
    SELECT sampled_at, replica_count FROM telemetry WHERE run_id = $run_id
),
arrivals AS (
    SELECT r.span_id,
           floor((epoch(r.sent_at) - o.origin_s) / $window_s) AS window_no,
           t.replica_count AS replicas_at_arrival
    FROM replayed AS r
    CROSS JOIN (SELECT epoch(min(sent_at)) AS origin_s FROM replayed) AS o
    ASOF LEFT JOIN run_telemetry AS t ON r.sent_at >= t.sampled_at
)
SELECT a.span_id,
       a.window_no,
       CASE WHEN coalesce(w.pattern, 'steady') <> 'steady'
             AND a.replicas_at_arrival < $max_replicas THEN 'below_ceiling'
            ELSE coalesce(w.pattern, 'steady')
       END AS bucket
FROM arrivals AS a
LEFT JOIN traffic_pattern_windows AS w USING (window_no);
