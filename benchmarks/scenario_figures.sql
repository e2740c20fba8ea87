-- One line per scenario run in a matrix warehouse: what the night did, beside the
-- verdict. The figures docs/scenarios.md quotes for the scenarios whose fault is
-- load (timeouts, a tenant starved) or the cache (contexts evicted).
WITH scenario_runs AS (
    SELECT DISTINCT run_id, scenario, repetition FROM scenario_results
),
replayed AS (
    -- production-shaped traffic only: warm-up and probes are not the night
    SELECT * FROM spans WHERE mode IN ('replay', 'pinned', 'tenant_burst')
),
outcomes AS (
    SELECT run_id,
           count(*)                                              AS spans,
           count(*) FILTER (WHERE status = 'timeout')            AS timeouts,
           count(*) FILTER (WHERE status NOT IN ('ok', 'timeout')) AS other_errors,
           -- answered at all, within the client timeout (slo's goodput also asks for
           -- the per-request TTFT and latency SLOs: slo_goodput below)
           count(*) FILTER (WHERE status = 'ok') / count(*)      AS answered_share
    FROM replayed
    GROUP BY run_id
),
per_tenant AS (
    SELECT run_id, tenant_id,
           count(*)                                   AS n,
           count(*) FILTER (WHERE status = 'timeout') AS timeouts
    FROM replayed
    GROUP BY run_id, tenant_id
),
tenant_timeouts AS (
    -- 'small 32/71, big 0/233': each tenant's timed-out share of what it sent
    SELECT run_id,
           string_agg(tenant_id || ' ' || timeouts || '/' || n, ', ' ORDER BY tenant_id)
               AS tenant_timeouts
    FROM per_tenant
    GROUP BY run_id
),
slo_night AS (
    SELECT run_id, goodput AS slo_goodput, p99_ttft_ms
    FROM check_slo
    WHERE bucket = 'run'
),
prefix_reuse AS (
    -- as kv_cache_eviction bucketed them (_kv_cache_eviction_buckets.sql)
    SELECT run_id,
           any_value(n) FILTER (WHERE bucket = 'evicted')             AS evicted,
           any_value(n) FILTER (WHERE bucket = 'retained')            AS retained,
           any_value(p50_ttft_ms) FILTER (WHERE bucket = 'evicted')   AS evicted_p50_ttft_ms,
           any_value(p50_ttft_ms) FILTER (WHERE bucket = 'retained')  AS retained_p50_ttft_ms
    FROM check_kv_cache_eviction
    WHERE dimension = 'prefix_reuse'
    GROUP BY run_id
)
SELECT s.scenario, s.repetition, r.verdict,
       o.spans, o.timeouts, o.other_errors, o.answered_share, n.slo_goodput, n.p99_ttft_ms,
       k.evicted, k.retained, k.evicted_p50_ttft_ms, k.retained_p50_ttft_ms,
       t.tenant_timeouts
FROM scenario_runs AS s
JOIN runs AS r USING (run_id)
LEFT JOIN outcomes AS o USING (run_id)
LEFT JOIN slo_night AS n USING (run_id)
LEFT JOIN prefix_reuse AS k USING (run_id)
LEFT JOIN tenant_timeouts AS t USING (run_id)
ORDER BY s.scenario, s.repetition, r.started_at
