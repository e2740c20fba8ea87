-- tenant_fairness: does any tenant get a worse cluster than the others?
-- Per tenant: p99 latency, tail quality (p05) and error/timeout rate against the OTHER
-- tenants — the median, over the other tenants with enough spans, of their p99
-- latency, p05 quality and error rate. Not against the run aggregate: once a starved tenant sends more than 1 %
-- of the traffic, the aggregate p99 is made of that tenant's own slow requests and
-- the ratio stays near 1 however badly it is treated; the same holds for its share of
-- the night's timeouts. With no other sufficient
-- tenant (a one-tenant night) the reference is the run aggregate.
-- Production-shaped traffic only (replay and tenant bursts).
INSERT INTO check_tenant_fairness BY NAME
WITH labelled AS MATERIALIZED (
    -- raw quality, not the stratum-adjusted one the other bucket checks compare: the
    -- rules here read a tail (p05), and the p05 of adjusted quality is the stratum of a
    -- tenant's worst request, not how the tenant was treated (cluster-wide-errors, the
    -- same mix for both tenants and errors at random: acme -0.43 against globex -0.07)
    -- production-shaped spans, one bucket per tenant (_tenant_fairness_buckets.sql)
    SELECT sq.*, b.bucket
    FROM span_quality AS sq
    JOIN tenant_fairness_buckets AS b USING (span_id)
),
per_tenant AS MATERIALIZED (
    SELECT *
    FROM compare_buckets('labelled', $min_samples, []::VARCHAR[], []::VARCHAR[],
                         $significance_z)
),
overall AS (
    SELECT quantile_cont(latency_ms, 0.99) AS p99_latency_ms FROM labelled
),
other_tenants AS (
    SELECT t.bucket,
           count(o.bucket)           AS n_other_tenants,
           median(o.p99_latency_ms)  AS p99_latency_ms,
           median(o.p05_quality)     AS p05_quality,
           median(o.error_rate)      AS error_rate,
           sum(o.n)                  AS n
    FROM per_tenant AS t
    LEFT JOIN per_tenant AS o ON o.bucket <> t.bucket AND NOT o.insufficient
    GROUP BY t.bucket
)
SELECT $run_id AS run_id,
       c.* REPLACE (
           CASE WHEN k.n_other_tenants > 0 THEN 'other_tenants' ELSE 'aggregate' END
               AS reference,
           coalesce(k.p05_quality, c.ref_p05_quality) AS ref_p05_quality,
           c.p05_quality - coalesce(k.p05_quality, c.ref_p05_quality) AS delta_p05,
           coalesce(k.error_rate, c.ref_error_rate) AS ref_error_rate,
           c.error_rate - coalesce(k.error_rate, c.ref_error_rate) AS delta_error_rate,
           -- judged at its pessimistic-for-the-alarm end, as in compare_buckets
           CASE WHEN k.n_other_tenants > 0
                THEN c.error_rate - k.error_rate
                     - $significance_z * sqrt(c.error_rate * (1 - c.error_rate) / c.n
                                              + k.error_rate * (1 - k.error_rate) / k.n)
                ELSE c.delta_error_rate_lower
           END AS delta_error_rate_lower
       ),
       coalesce(k.p99_latency_ms, o.p99_latency_ms) AS ref_p99_latency_ms,
       c.p99_latency_ms / nullif(coalesce(k.p99_latency_ms, o.p99_latency_ms), 0)
           AS p99_latency_ratio
FROM per_tenant AS c
JOIN other_tenants AS k USING (bucket)
CROSS JOIN overall AS o;
