-- 012: tenant_fairness judges the latency tail a tenant's sample can estimate. A p99 over
-- 28 spans is the slowest request: on a healthy drifted-replica night one 13 s answer
-- made a tenant's "p99" 3.3x the other's. The gate now reads `tail_latency_ratio`, at
-- the level `tail_latency_q` (p75 / p90 / p95 / p99, the highest with
-- tenant_fairness.tail_spans spans beyond it in the smallest tenant compared; docs/checks.md).
-- `p99_latency_ms`, `ref_p99_latency_ms` and `p99_latency_ratio` stay, reported.
-- The ratio is judged only where `measurably_slower`: a Mann-Whitney rank test of the
-- tenant's latencies against the other tenants' (`slower_z`, `p_slower`), so routing
-- luck on a small night is not read as a starved tenant.
ALTER TABLE check_tenant_fairness ADD COLUMN tail_latency_q DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN tail_latency_ms DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN ref_tail_latency_ms DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN tail_latency_ratio DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN p_slower DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN slower_z DOUBLE;
ALTER TABLE check_tenant_fairness ADD COLUMN measurably_slower BOOLEAN;
