-- slo: did the night meet the service levels the team set, in absolute terms?
-- Every other check compares parts of one night with each other, so a fault that
-- hits every replica, bucket and tenant alike (the usual bad rollout) moves nothing
-- they look at. These floors and ceilings do not move with the night.
-- Rows:
--   run          every request of the modes in $modes (captured traffic and the pinned
--                golden set by default; the tenant-burst phase is a deliberate overload,
--                judged by tenant_fairness)
--   tenant:<id>  the same, per tenant (a small tenant's errors are not diluted by a
--                big tenant's successes)
--   golden       the pinned golden set on the cluster: its quality floor
-- goodput = share of requests that succeeded within both per-request latency SLOs
-- ($request_ttft_ms to the first token, $request_latency_ms to the last).
INSERT INTO check_slo BY NAME
WITH judged AS MATERIALIZED (
    SELECT *,
           status = 'ok'
             AND coalesce(ttft_ms, latency_ms) <= $request_ttft_ms
             AND latency_ms <= $request_latency_ms AS good
    FROM span_quality
    WHERE list_contains($modes, mode)
),
scoped AS (
    SELECT 'run' AS bucket, 'run' AS scope, * FROM judged
    UNION ALL
    SELECT 'tenant:' || coalesce(tenant_id, 'unknown') AS bucket, 'tenant' AS scope, *
    FROM judged
    UNION ALL
    SELECT 'golden' AS bucket, 'golden' AS scope, * FROM judged WHERE mode = 'pinned'
)
SELECT $run_id                                              AS run_id,
       bucket,
       any_value(scope)                                     AS scope,
       count(*)                                             AS n,
       count(*) < $min_samples                              AS insufficient,
       avg(CASE WHEN status = 'ok' THEN 0.0 ELSE 1.0 END)   AS error_share,
       quantile_cont(ttft_ms, 0.5)                          AS p50_ttft_ms,
       quantile_cont(latency_ms, 0.5)                       AS p50_latency_ms,
       quantile_cont(ttft_ms, 0.99)                         AS p99_ttft_ms,
       quantile_cont(latency_ms, 0.99)                      AS p99_latency_ms,
       avg(CASE WHEN good THEN 1.0 ELSE 0.0 END)            AS goodput,
       avg(quality)                                         AS mean_quality,
       stddev_samp(quality)                                 AS sd_quality
FROM scoped
GROUP BY bucket;
