-- span_buckets: which bucket each bucket check put each span of the run in, one row
-- per span, check and dimension; a span a check does not judge has no row for it.
-- A view over the checks' own assignments (_<check>_buckets.sql): the checks
-- aggregate those tables, and the OTLP export and the report's timeline read them,
-- so the rule that puts a span in a bucket is written once.
--   replica_skew           dimension 'replica'     bucket = replica id
--   autoscaling_lag        dimension 'saturation'  idle .. scaling, at_capacity, unknown
--   kv_cache_eviction      dimensions 'cache_hit', 'prefix_reuse', 'prompt_length'
--   traffic_pattern_drift  dimension 'pattern'     steady, burst, sustained, below_ceiling
--   tenant_fairness        dimension 'tenant'      bucket = tenant id
CREATE OR REPLACE TEMP VIEW span_buckets AS
SELECT span_id, 'replica_skew' AS "check", 'replica' AS dimension, bucket
FROM replica_skew_buckets
UNION ALL
SELECT span_id, 'autoscaling_lag', 'saturation', bucket FROM autoscaling_lag_buckets
UNION ALL
SELECT span_id, 'kv_cache_eviction', dimension, bucket FROM kv_cache_eviction_buckets
UNION ALL
SELECT span_id, 'traffic_pattern_drift', 'pattern', bucket FROM traffic_pattern_drift_buckets
UNION ALL
SELECT span_id, 'tenant_fairness', 'tenant', bucket FROM tenant_fairness_buckets;
