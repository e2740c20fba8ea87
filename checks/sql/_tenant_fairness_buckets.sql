-- tenant_fairness's assignment: production-shaped traffic (replay and tenant bursts),
-- one bucket per tenant.
CREATE OR REPLACE TEMP TABLE tenant_fairness_buckets AS
SELECT span_id, tenant_id AS bucket
FROM span_quality
WHERE mode IN ('replay', 'tenant_burst');
