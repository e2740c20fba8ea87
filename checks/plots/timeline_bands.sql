-- The buckets of the night that are periods of time, to shade on the timeline: one
-- row per stretch of time and the label a check gave it.
--
--   traffic_pattern_drift  the check's windows of $window_s seconds from the first
--       replayed send, labelled from telemetry exactly as checks/sql/
--       traffic_pattern_drift.sql does (burst: peak queue depth > $burst_factor x the
--       window's mean and above one replica's capacity; sustained: mean queue depth >
--       $sustained_factor x replicas x $per_replica_capacity; else steady). The check
--       moves a burst/sustained span sent below the replica ceiling to 'below_ceiling';
--       the window keeps its pattern here.
--   autoscaling_lag  the saturation (cluster queue depth per running replica) of each
--       telemetry sample, labelled as checks/sql/autoscaling_lag.sql labels the spans
--       sent after it (idle < $warm_at <= warm < $saturating_at <= saturating <
--       $scaling_at <= scaling; at_capacity when loaded at $max_replicas replicas);
--       consecutive samples with the same label make one stretch, which ends at the
--       next stretch's first sample.
--
-- `spans` counts the replayed spans (modes replay and tenant_burst, the ones both
-- checks bucket) sent in the stretch: the check tables' `n` per bucket adds up from
-- them, which tests/checks/test_report_plots.py holds this file to (the labelling
-- repeats the checks' SQL, as exports/otlp.sql does; change one, that test fails).
-- Other bucket checks (replica, tenant, cache hit) are not periods of time.
WITH run_telemetry AS (
    SELECT sampled_at, epoch(sampled_at) AS sampled_s, replica_count, queue_depth
    FROM telemetry
    WHERE run_id = $run_id
),
replayed AS (
    SELECT sent_at, epoch(sent_at) AS sent_s
    FROM spans
    WHERE run_id = $run_id AND mode IN ('replay', 'tenant_burst')
),
origin AS (
    SELECT min(sent_s) AS t0 FROM replayed
),

-- traffic_pattern_drift: windows from the first replayed send
windows AS (
    SELECT floor((t.sampled_s - o.t0) / $window_s) AS window_no,
           CASE WHEN max(t.queue_depth) > $burst_factor * avg(t.queue_depth)
                 AND max(t.queue_depth) > $per_replica_capacity THEN 'burst'
                WHEN avg(t.queue_depth) > $sustained_factor * avg(t.replica_count)
                                          * $per_replica_capacity THEN 'sustained'
                ELSE 'steady'
           END AS label
    FROM run_telemetry AS t, origin AS o
    WHERE o.t0 IS NOT NULL
    GROUP BY window_no
),
pattern_stretches AS (
    SELECT 'traffic_pattern_drift' AS band, w.label,
           o.t0 + w.window_no * $window_s       AS start_s,
           o.t0 + (w.window_no + 1) * $window_s AS end_s,
           (SELECT count(*) FROM replayed AS r
            WHERE floor((r.sent_s - o.t0) / $window_s) = w.window_no) AS spans
    FROM windows AS w, origin AS o
),

-- autoscaling_lag: each sample's saturation label, then runs of equal labels
labelled_samples AS (
    SELECT sampled_at, sampled_s,
           CASE WHEN replica_count > 0 THEN queue_depth / replica_count
                WHEN queue_depth > 0 THEN 'infinity'::DOUBLE
                ELSE 0.0
           END AS saturation,
           replica_count
    FROM run_telemetry
),
sample_labels AS (
    SELECT sampled_at, sampled_s,
           CASE WHEN saturation IS NULL                     THEN 'unknown'
                WHEN saturation < $warm_at                  THEN 'idle'
                WHEN replica_count >= $max_replicas         THEN 'at_capacity'
                WHEN saturation < $saturating_at            THEN 'warm'
                WHEN saturation < $scaling_at               THEN 'saturating'
                ELSE 'scaling'
           END AS label
    FROM labelled_samples
),
islands AS (
    -- a new stretch starts wherever the label changes (gaps and islands)
    SELECT *,
           sum(CASE WHEN label IS DISTINCT FROM prev_label THEN 1 ELSE 0 END)
               OVER (ORDER BY sampled_s) AS stretch_no
    FROM (SELECT *, lag(label) OVER (ORDER BY sampled_s) AS prev_label FROM sample_labels)
),
arrivals AS (
    -- each replayed span takes the sample just before it, as the check does
    SELECT i.stretch_no
    FROM replayed AS r
    ASOF JOIN islands AS i ON r.sent_at >= i.sampled_at
),
saturation_stretches AS (
    SELECT 'autoscaling_lag' AS band, any_value(i.label) AS label,
           min(i.sampled_s) AS start_s,
           coalesce(lead(min(i.sampled_s)) OVER (ORDER BY min(i.sampled_s)),
                    max(i.sampled_s) + 1) AS end_s,
           (SELECT count(*) FROM arrivals AS a WHERE a.stretch_no = i.stretch_no) AS spans
    FROM islands AS i
    GROUP BY i.stretch_no
)
SELECT * FROM pattern_stretches
UNION ALL
SELECT * FROM saturation_stretches
ORDER BY band, start_s;
