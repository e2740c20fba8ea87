-- tenant_fairness: does any tenant get a worse cluster than the others?
-- Per tenant: tail latency, tail quality (p05) and error/timeout rate against the OTHER
-- tenants — the median, over the other tenants with enough spans, of their tail
-- latency, p05 quality and error rate. Not against the run aggregate: once a starved
-- tenant sends more than 1 % of the traffic, the aggregate p99 is made of that tenant's
-- own slow requests and the ratio stays near 1 however badly it is treated; the same
-- holds for its share of the night's timeouts. With no other sufficient tenant (a
-- one-tenant night) the reference is the run aggregate.
-- The latency tail is the highest of p75, p90, p95 and p99 with at least $tail_spans
-- spans beyond it in the smallest tenant compared (defaults: p99 from 500 spans, p95
-- from 100, p90 from 50, p75 below). A p99 of 28 spans is the slowest request, and one
-- slow answer is not a starved tenant: the drifted-replica scenario sent 27 of a
-- tenant's 28 requests to its fast replica and one to the healthy one, whose 13 s made
-- the tenant's "p99" 3.3x the other tenant's. Every tenant of a night is judged at the
-- same level, against the same level of the others.
-- A tail ratio over a few dozen spans still moves with routing luck: on a drifted-replica
-- night (one replica answering in 1 s, the other in 11 s) a tenant that drew 12 of its
-- 30 requests on the slow replica had a p75 3.0x the other tenant's, which drew 9 of 28.
-- So the ratio is judged only for a tenant measurably slower than the others as a whole:
-- a Mann-Whitney rank test of its latencies against every other tenant's
-- (`slower_z` >= significance_z; `p_slower` is the chance one of its requests is
-- slower than another tenant's, 0.5 when treated alike). That drifted night: p_slower
-- 0.53, z 0.3; a starved tenant waits on most requests, not on a lucky few.
-- The ranks compare like with like: each request only with the other tenants' requests
-- of its stratum (request class within a request-size quartile, _span_quality.sql) on
-- the same replica, the U statistics summed over strata. Across replicas a tenant
-- ranks slower for the replica it drew: on a drifted-replica night (one replica
-- answering 3 tokens in 0.3 s) acme drew 18 of 30 requests on the healthy replica and
-- globex 11 of 28, and acme was "measurably slower" (z 2.1, p75 ratio 3.5); per
-- replica, z 1.2. Over the whole night, a tenant that sends
-- slower kinds of request ranks slower for sending them: on 8 healthy make-demo nights
-- globex (JSON, tools and math, no short QA) was "measurably slower" on 7 (z 2.1-3.6,
-- tail ratio 0.90-1.12). A stratum no other tenant sends compares nothing, so a
-- tenant whose strata shared with others hold less than half of its spans is ranked
-- over the whole night instead: heavy-tenant's small tenant (short requests, starved
-- behind the big tenant's long prefills, which no other tenant sent) shared none and
-- would never have been judged. There, mix and treatment cannot be told apart.
-- Production-shaped traffic only (replay and tenant bursts).
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
tail_level AS (
    -- one level for the night, from the smallest tenant compared (a one-tenant night:
    -- every span); decimal levels, so (1 - 0.90) * 50 is 5 exactly
    SELECT q, list_position([0.75, 0.90, 0.95, 0.99], q) AS i
    FROM (
        SELECT coalesce(max(level), 0.75) AS q
        FROM unnest([0.75, 0.90, 0.95, 0.99]) AS l(level)
        WHERE (1 - level) * (SELECT coalesce(min(n) FILTER (WHERE NOT insufficient), sum(n))
                             FROM per_tenant) >= $tail_spans
    )
),
latency_tails AS (
    -- every level at once: quantile_cont takes constant levels only
    SELECT bucket, quantile_cont(latency_ms, [0.75, 0.90, 0.95, 0.99]) AS latency_at
    FROM labelled
    GROUP BY bucket
),
latency_ranks AS (
    -- every span's latency rank among the night's spans of its stratum on its replica
    -- (a failure that never named its replica: '?'), and among all of the night's
    -- spans, tied latencies sharing their mean rank
    SELECT bucket, stratum,
           rank() OVER (PARTITION BY stratum ORDER BY latency_ms)
               + (count(*) OVER (PARTITION BY stratum, latency_ms) - 1) / 2.0 AS r,
           count(*) OVER (PARTITION BY stratum) AS n_stratum,
           rank() OVER (ORDER BY latency_ms)
               + (count(*) OVER (PARTITION BY latency_ms) - 1) / 2.0 AS r_night,
           count(*) OVER () AS n_night
    FROM (SELECT bucket, latency_ms,
                 stratum || ' @ ' || coalesce(replica_id, '?') AS stratum
          FROM labelled
          WHERE latency_ms IS NOT NULL)
),
rank_sums AS (
    -- per tenant and stratum: Mann-Whitney U of its spans against the other tenants'
    -- counts as DOUBLE: their products overflow BIGINT on a night of 10 M spans
    SELECT bucket, stratum, count(*)::DOUBLE AS n1,
           any_value(n_stratum) - count(*)::DOUBLE AS n2,
           sum(r) - count(*)::DOUBLE * (count(*) + 1) / 2.0 AS u
    FROM latency_ranks
    GROUP BY bucket, stratum
),
within_strata AS (
    -- the strata's U summed, with its mean's pairs and its variance; like with like
    -- where the strata it shares with other tenants hold at least half of its spans
    SELECT bucket, sum(u) AS u, sum(n1 * n2) AS pairs,
           sum(n1 * n2 * (n1 + n2 + 1) / 12.0) AS var,
           coalesce(sum(n1) FILTER (WHERE n2 > 0), 0) >= sum(n1) / 2.0 AS like_with_like
    FROM rank_sums
    GROUP BY bucket
),
over_the_night AS (
    -- U against every other tenant's span of the night, whatever its kind (a tenant
    -- whose requests have no counterpart can only be ranked against different ones)
    SELECT bucket, sum(r_night) - count(*)::DOUBLE * (count(*) + 1) / 2.0 AS u,
           count(*)::DOUBLE * (any_value(n_night) - count(*)) AS pairs,
           count(*)::DOUBLE * (any_value(n_night) - count(*)) * (any_value(n_night) + 1)
               / 12.0 AS var
    FROM latency_ranks
    GROUP BY bucket
),
rank_test AS (
    -- U's normal approximation (no tie correction: ties only widen it, toward no alarm)
    SELECT bucket, u / nullif(pairs, 0) AS p_slower,
           (u - pairs / 2.0) / nullif(sqrt(var), 0) AS slower_z
    FROM (SELECT bucket, u, pairs, var FROM within_strata WHERE like_with_like
          UNION ALL
          SELECT n.bucket, n.u, n.pairs, n.var
          FROM over_the_night AS n
          JOIN within_strata AS s USING (bucket)
          WHERE NOT s.like_with_like)
),
tenants AS (
    SELECT p.*, t.latency_at[l.i] AS tail_latency_ms, r.p_slower, r.slower_z
    FROM per_tenant AS p
    JOIN latency_tails AS t USING (bucket)
    LEFT JOIN rank_test AS r USING (bucket)
    CROSS JOIN tail_level AS l
),
overall AS (
    SELECT quantile_cont(latency_ms, 0.99) AS p99_latency_ms,
           quantile_cont(latency_ms, [0.75, 0.90, 0.95, 0.99]) AS latency_at
    FROM labelled
),
other_tenants AS (
    SELECT t.bucket,
           count(o.bucket)           AS n_other_tenants,
           median(o.p99_latency_ms)  AS p99_latency_ms,
           median(o.tail_latency_ms) AS tail_latency_ms,
           median(o.p05_quality)     AS p05_quality,
           median(o.error_rate)      AS error_rate,
           sum(o.n)                  AS n
    FROM tenants AS t
    LEFT JOIN tenants AS o ON o.bucket <> t.bucket AND NOT o.insufficient
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
           AS p99_latency_ratio,
       l.q::DOUBLE AS tail_latency_q,
       coalesce(k.tail_latency_ms, o.latency_at[l.i]) AS ref_tail_latency_ms,
       c.tail_latency_ms / nullif(coalesce(k.tail_latency_ms, o.latency_at[l.i]), 0)
           AS tail_latency_ratio,
       -- judged against the aggregate (no other sufficient tenant), the ratio is about
       -- 1 and judged; against other tenants, only when measurably slower than them
       CASE WHEN k.n_other_tenants = 0 THEN true
            ELSE coalesce(c.slower_z >= $significance_z, false)
       END AS measurably_slower
FROM tenants AS c
JOIN other_tenants AS k USING (bucket)
CROSS JOIN overall AS o
CROSS JOIN tail_level AS l;
