-- 006: errors and timeouts per bucket against the reference. A timed-out request
-- scores 0, but a bucket's *mean* quality is a noisy way to see a burst of them;
-- the share of failed requests is a sharp one (binomial noise, judged at
-- delta - z * SE, so a single unlucky timeout does not fail a run).
ALTER TABLE check_replica_skew ADD COLUMN ref_error_rate DOUBLE;
ALTER TABLE check_replica_skew ADD COLUMN delta_error_rate DOUBLE;
ALTER TABLE check_replica_skew ADD COLUMN delta_error_rate_lower DOUBLE;
ALTER TABLE check_autoscaling_lag ADD COLUMN ref_error_rate DOUBLE;
ALTER TABLE check_autoscaling_lag ADD COLUMN delta_error_rate DOUBLE;
ALTER TABLE check_autoscaling_lag ADD COLUMN delta_error_rate_lower DOUBLE;
ALTER TABLE check_kv_cache_eviction ADD COLUMN ref_error_rate DOUBLE;
ALTER TABLE check_kv_cache_eviction ADD COLUMN delta_error_rate DOUBLE;
ALTER TABLE check_kv_cache_eviction ADD COLUMN delta_error_rate_lower DOUBLE;
ALTER TABLE check_traffic_pattern_drift ADD COLUMN ref_error_rate DOUBLE;
ALTER TABLE check_traffic_pattern_drift ADD COLUMN delta_error_rate DOUBLE;
ALTER TABLE check_traffic_pattern_drift ADD COLUMN delta_error_rate_lower DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN ref_error_rate DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN delta_error_rate DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN delta_error_rate_lower DOUBLE;
