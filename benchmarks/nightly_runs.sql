-- One line per recent run: how long it took and how fast the cluster answered.
WITH recent AS (
    SELECT run_id, started_at, finished_at
    FROM runs
    ORDER BY started_at DESC
    LIMIT $last
),
replayed AS (
    SELECT run_id,
           count(*)                                   AS spans,
           count(*) FILTER (WHERE status = 'ok')      AS ok,
           count(*) FILTER (WHERE status = 'timeout') AS timeouts,
           quantile_cont(latency_ms, 0.99) FILTER (WHERE mode = 'replay') AS replay_p99_ms,
           quantile_cont(ttft_ms, 0.99) FILTER (WHERE mode = 'replay')    AS replay_p99_ttft_ms,
           -- first send to last answer of the production-shaped traffic
           epoch(max(sent_at + to_milliseconds(latency_ms::BIGINT)) - min(sent_at)) AS replay_s
    FROM spans
    WHERE mode IN ('replay', 'pinned', 'tenant_burst')
    GROUP BY run_id
)
SELECT r.run_id,
       r.started_at,
       epoch(r.finished_at - r.started_at) AS wall_s,
       p.spans, p.ok, p.timeouts, p.replay_p99_ms, p.replay_p99_ttft_ms,
       p.replay_s,
       p.ok / p.replay_s                   AS ok_per_s
FROM recent AS r
JOIN replayed AS p USING (run_id)
ORDER BY r.started_at DESC
