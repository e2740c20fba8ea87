-- The buckets of the night that are periods of time, to shade on the timeline: one
-- row per stretch of time and the label a check gave it.
--
-- Read from the checks' own bucket assignment (checks.compute.assign_buckets, created
-- in this connection), so the shading cannot drift from what the checks counted:
--   traffic_pattern_drift  the check's windows of time and their pattern
--       (traffic_pattern_windows, checks/sql/_traffic_pattern_windows.sql). The check
--       moves a burst/sustained span sent below the replica ceiling to
--       'below_ceiling'; the window keeps its pattern here.
--   autoscaling_lag  each telemetry sample's label (autoscaling_lag_samples,
--       checks/sql/_autoscaling_lag_samples.sql); consecutive samples with the same
--       label make one stretch, which ends at the next stretch's first sample.
--
-- `spans` counts the replayed spans (modes replay and tenant_burst, the ones both
-- checks bucket) that the check put in the stretch's window or sample, so the check
-- tables' `n` per bucket adds up from them (tests/checks/test_report_plots.py).
-- Other bucket checks (replica, tenant, cache hit) are not periods of time.
WITH pattern_stretches AS (
    SELECT 'traffic_pattern_drift' AS band, w.pattern AS label, w.start_s, w.end_s,
           (SELECT count(*) FROM traffic_pattern_drift_buckets AS b
            WHERE b.window_no = w.window_no) AS spans
    FROM traffic_pattern_windows AS w
    WHERE w.origin_s IS NOT NULL  -- no replayed span, no window to place
),

-- autoscaling_lag: runs of equal sample labels
islands AS (
    -- a new stretch starts wherever the label changes (gaps and islands)
    SELECT *,
           sum(CASE WHEN bucket IS DISTINCT FROM prev_bucket THEN 1 ELSE 0 END)
               OVER (ORDER BY sample_no) AS stretch_no
    FROM (SELECT sample_no, epoch(sampled_at) AS sampled_s, bucket,
                 lag(bucket) OVER (ORDER BY sample_no) AS prev_bucket
          FROM autoscaling_lag_samples)
),
saturation_stretches AS (
    SELECT 'autoscaling_lag' AS band, any_value(i.bucket) AS label,
           min(i.sampled_s) AS start_s,
           coalesce(lead(min(i.sampled_s)) OVER (ORDER BY min(i.sampled_s)),
                    max(i.sampled_s) + 1) AS end_s,
           (SELECT count(*) FROM autoscaling_lag_buckets AS b
            JOIN islands AS j USING (sample_no)
            WHERE j.stretch_no = i.stretch_no) AS spans
    FROM islands AS i
    GROUP BY i.stretch_no
)
SELECT * FROM pattern_stretches
UNION ALL
SELECT * FROM saturation_stretches
ORDER BY band, start_s;
