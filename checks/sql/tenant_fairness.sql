-- tenant_fairness: does any tenant get a worse cluster than the others?
-- Per tenant: p99 latency against the aggregate p99 (a noisy neighbour shows as
-- one tenant's tail stretching) and tail quality (p05) against the aggregate p05.
-- Production-shaped traffic only (replay and tenant bursts).
INSERT INTO check_tenant_fairness BY NAME
WITH labelled AS MATERIALIZED (
    SELECT *, tenant_id AS bucket
    FROM span_quality
    WHERE mode IN ('replay', 'tenant_burst')
),
overall AS (
    SELECT quantile_cont(latency_ms, 0.99) AS ref_p99_latency_ms FROM labelled
)
SELECT $run_id AS run_id,
       c.*,
       o.ref_p99_latency_ms,
       c.p99_latency_ms / nullif(o.ref_p99_latency_ms, 0) AS p99_latency_ratio
FROM compare_buckets('labelled', $min_samples, []::VARCHAR[], []::VARCHAR[], $significance_z) AS c
CROSS JOIN overall AS o;
