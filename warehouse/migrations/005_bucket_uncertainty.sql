-- 005: how sure a bucket's drop is. A nightly bucket holds tens of spans; its mean
-- quality moves by several points on sampling alone. The gate judges the optimistic
-- end of the drop (delta + z * standard error), so a thin bucket must drop by more
-- before it fails the run, and a real cliff still does.
ALTER TABLE check_replica_skew ADD COLUMN sd_quality DOUBLE;
ALTER TABLE check_replica_skew ADD COLUMN se_delta_mean DOUBLE;
ALTER TABLE check_replica_skew ADD COLUMN delta_mean_upper DOUBLE;
ALTER TABLE check_autoscaling_lag ADD COLUMN sd_quality DOUBLE;
ALTER TABLE check_autoscaling_lag ADD COLUMN se_delta_mean DOUBLE;
ALTER TABLE check_autoscaling_lag ADD COLUMN delta_mean_upper DOUBLE;
ALTER TABLE check_kv_cache_eviction ADD COLUMN sd_quality DOUBLE;
ALTER TABLE check_kv_cache_eviction ADD COLUMN se_delta_mean DOUBLE;
ALTER TABLE check_kv_cache_eviction ADD COLUMN delta_mean_upper DOUBLE;
ALTER TABLE check_traffic_pattern_drift ADD COLUMN sd_quality DOUBLE;
ALTER TABLE check_traffic_pattern_drift ADD COLUMN se_delta_mean DOUBLE;
ALTER TABLE check_traffic_pattern_drift ADD COLUMN delta_mean_upper DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN sd_quality DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN se_delta_mean DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN delta_mean_upper DOUBLE;
