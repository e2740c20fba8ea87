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
-- The failures are counted by kind (timeouts, other errors), and those in flight while
-- a telemetry sample saw a replica starting are counted apart: a share says that the
-- night failed, these say how.
WITH judged AS MATERIALIZED (
    SELECT s.*,
           s.status = 'ok'
             AND coalesce(s.ttft_ms, s.latency_ms) <= $request_ttft_ms
             AND s.latency_ms <= $request_latency_ms AS good,
           s.status <> 'ok' AND EXISTS (
               SELECT 1
               FROM telemetry AS t
               WHERE t.run_id = $run_id
                 AND t.replicas_starting > 0
                 AND t.sampled_at BETWEEN s.sent_at
                                      AND s.sent_at + to_milliseconds(s.latency_ms::BIGINT)
           ) AS failed_while_starting
    FROM span_quality AS s
    WHERE list_contains($modes, s.mode)
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
       count(*) FILTER (WHERE status = 'timeout')           AS timeouts,
       count(*) FILTER (WHERE status NOT IN ('ok', 'timeout')) AS errors,
       count(*) FILTER (WHERE failed_while_starting)        AS failed_while_starting,
       quantile_cont(ttft_ms, 0.5)                          AS p50_ttft_ms,
       quantile_cont(latency_ms, 0.5)                       AS p50_latency_ms,
       quantile_cont(ttft_ms, 0.99)                         AS p99_ttft_ms,
       quantile_cont(latency_ms, 0.99)                      AS p99_latency_ms,
       avg(CASE WHEN good THEN 1.0 ELSE 0.0 END)            AS goodput,
       avg(quality)                                         AS mean_quality,
       stddev_samp(quality)                                 AS sd_quality
FROM scoped
GROUP BY bucket;
