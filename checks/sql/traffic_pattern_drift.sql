-- traffic_pattern_drift: does quality hold in bursts and sustained load, and did the
-- replay reproduce production's mix of patterns?
--
-- Time is cut into windows of $window_s seconds from the run's first send (the
-- nightly demo compresses time, so it passes shorter windows). From telemetry, a
-- window is
--   burst      peak queue depth > $burst_factor x the window's mean queue depth, and
--              above one replica's capacity (a peak one replica absorbs is noise)
--   sustained  mean queue depth > $sustained_factor x replicas x $per_replica_capacity
--   steady     otherwise (also windows without telemetry: nothing says otherwise)
-- and every replayed span takes its window's label. Reference = steady (aggregate
-- when steady is empty or insufficient).
-- A burst or sustained span sent while the deployment ran fewer replicas than its
-- ceiling ($max_replicas, from the run's ServeConfig) goes to 'below_ceiling': the
-- autoscaler had room to absorb that load, so a loss there is autoscaling_lag's
-- finding (it judges exactly those spans), not the pattern's. Reported, not judged:
-- one loss, one owner, the mirror of autoscaling_lag's 'at_capacity'.
--
-- The captured traffic has no queue depth, only intended arrival times. Its offered
-- load is estimated by Little's law, arrivals x mean latency / duration, per window
-- and per tenth of a window (the peak), and labelled with the same thresholds and
-- the run's mean replica count. captured_share vs replay_share per pattern shows
-- whether the replay stressed the cluster the way production did.
INSERT INTO check_traffic_pattern_drift BY NAME
WITH replayed AS MATERIALIZED (
    -- like with like: quality adjusted for the request's stratum (_span_quality.sql)
    SELECT * REPLACE (adjusted_quality AS quality)
    FROM span_quality WHERE mode IN ('replay', 'tenant_burst')
),
origin AS (
    SELECT min(sent_at) AS t0, min(intended_at) AS i0, avg(latency_ms) / 1000 AS mean_latency_s
    FROM replayed
),
run_telemetry AS (
    SELECT t.*, floor((epoch(t.sampled_at) - epoch(o.t0)) / $window_s) AS window_no
    FROM telemetry AS t, origin AS o
    WHERE t.run_id = $run_id
),
observed_windows AS (
    SELECT window_no,
           CASE WHEN max(queue_depth) > $burst_factor * avg(queue_depth)
                 AND max(queue_depth) > $per_replica_capacity THEN 'burst'
                WHEN avg(queue_depth) > $sustained_factor * avg(replica_count)
                                        * $per_replica_capacity THEN 'sustained'
                ELSE 'steady'
           END AS pattern
    FROM run_telemetry
    GROUP BY window_no
),
arrivals AS (
    -- the replicas running when each span was sent (sample just before it)
    SELECT r.*, t.replica_count AS replicas_at_arrival
    FROM replayed AS r
    ASOF LEFT JOIN run_telemetry AS t ON r.sent_at >= t.sampled_at
),
labelled AS MATERIALIZED (
    SELECT r.* EXCLUDE (replicas_at_arrival),
           CASE WHEN coalesce(w.pattern, 'steady') <> 'steady'
                 AND r.replicas_at_arrival < $max_replicas THEN 'below_ceiling'
                ELSE coalesce(w.pattern, 'steady')
           END AS bucket
    FROM arrivals AS r
    CROSS JOIN origin AS o
    LEFT JOIN observed_windows AS w
           ON w.window_no = floor((epoch(r.sent_at) - epoch(o.t0)) / $window_s)
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
