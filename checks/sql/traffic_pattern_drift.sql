-- traffic_pattern_drift: does quality hold in bursts and sustained load, and did the
-- replay reproduce production's mix of patterns?
-- Which bucket each span is in is decided once, in _traffic_pattern_windows.sql (the
-- rule, per window of time) and _traffic_pattern_drift_buckets.sql (each span takes
-- its window's pattern, or below_ceiling); this file compares the buckets and the
-- captured traffic's mix of patterns with the replay's.
--
-- Buckets: burst, sustained, steady (windows without telemetry too), below_ceiling
-- (burst or sustained load the autoscaler still had room to absorb: autoscaling_lag's
-- finding, reported here, not judged; one loss, one owner). Reference = steady
-- (aggregate when steady is empty or insufficient).
--
-- The captured traffic has no queue depth, only intended arrival times. Its offered
-- load is estimated by Little's law, arrivals x mean latency / duration, per window
-- and per tenth of a window (the peak), and labelled with the same thresholds and
-- the run's mean replica count. captured_share vs replay_share per pattern shows
-- whether the replay stressed the cluster the way production did.
WITH replayed AS MATERIALIZED (
    -- like with like: quality adjusted for the request's stratum (_span_quality.sql)
    SELECT * REPLACE (adjusted_quality AS quality)
    FROM span_quality WHERE mode IN ('replay', 'tenant_burst')
),
origin AS (
    SELECT min(intended_at) AS i0, avg(latency_ms) / 1000 AS mean_latency_s
    FROM replayed
),
run_telemetry AS (
    SELECT replica_count FROM telemetry WHERE run_id = $run_id
),
labelled AS MATERIALIZED (
    SELECT r.*, b.bucket
    FROM replayed AS r
    JOIN traffic_pattern_drift_buckets AS b USING (span_id)
),
-- captured arrival pattern, from intended send times
captured AS (
    SELECT floor((epoch(r.intended_at) - epoch(o.i0)) / $window_s)        AS window_no,
           floor((epoch(r.intended_at) - epoch(o.i0)) / ($window_s / 10)) AS slice_no
    FROM replayed AS r, origin AS o
),
captured_slices AS (
    SELECT window_no, slice_no, count(*) AS arrivals FROM captured GROUP BY ALL
),
captured_windows AS (
    SELECT c.window_no,
           sum(c.arrivals)                                                   AS arrivals,
           sum(c.arrivals) * o.mean_latency_s / $window_s                    AS offered_load,
           max(c.arrivals) * o.mean_latency_s / ($window_s / 10)             AS peak_load
    FROM captured_slices AS c, origin AS o
    GROUP BY c.window_no, o.mean_latency_s
),
captured_mix AS (
    SELECT CASE WHEN w.peak_load > $burst_factor * w.offered_load
                 AND w.peak_load > $per_replica_capacity THEN 'burst'
                WHEN w.offered_load > $sustained_factor * r.replicas * $per_replica_capacity
                     THEN 'sustained'
                ELSE 'steady'
           END AS bucket,
           sum(w.arrivals) / sum(sum(w.arrivals)) OVER () AS captured_share
    FROM captured_windows AS w,
         (SELECT avg(replica_count) AS replicas FROM run_telemetry) AS r
    GROUP BY 1
),
replay_mix AS (
    SELECT bucket, count(*) / sum(count(*)) OVER () AS replay_share
    FROM labelled
    GROUP BY bucket
)
SELECT $run_id AS run_id,
       c.*,
       coalesce(rm.replay_share, 0)   AS replay_share,
       coalesce(cm.captured_share, 0) AS captured_share
FROM compare_buckets('labelled', $min_samples, ['steady', 'burst', 'sustained'],
                     ['steady'], $significance_z) AS c
LEFT JOIN replay_mix AS rm USING (bucket)
LEFT JOIN captured_mix AS cm USING (bucket);
