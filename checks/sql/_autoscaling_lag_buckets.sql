-- autoscaling_lag's assignment: each production-shaped span (replay and tenant
-- bursts; pinned and baseline probes set their own load) takes the label of the
-- telemetry sample just before it was sent (ASOF JOIN on autoscaling_lag_samples,
-- where the rule is). A span sent before any sample is 'unknown'.
CREATE OR REPLACE TEMP TABLE autoscaling_lag_buckets AS
SELECT sq.span_id,
       s.sample_no,
       s.saturation,
       coalesce(s.bucket, 'unknown') AS bucket
FROM span_quality AS sq
ASOF LEFT JOIN autoscaling_lag_samples AS s ON sq.sent_at >= s.sampled_at
WHERE sq.mode IN ('replay', 'tenant_burst');
