-- One row per span of the run, with what the OTLP export puts on it: its scores, the
-- bucket each of the five bucket checks put it in, and the run's verdict.
-- Reads `span_quality` (checks/sql/_span_quality.sql, created by checks.compute.prepare
-- in this connection) and the warehouse tables; writes nothing.
--
-- The bucket labels repeat the labelling CTEs of checks/sql/<check>.sql (the check
-- tables keep one row per bucket, not which span went where). Thresholds are bound by
-- the same names. tests/exports/test_otlp.py holds them together: for every check, the
-- spans exported per bucket must equal the check table's `n` for that bucket — change
-- a check's labelling and that test fails until this file follows.
-- No prompt or completion text leaves this query: only the request's model and
-- sampling parameters are read out of the request body.
WITH run_telemetry AS (
    SELECT sampled_at, replica_count, queue_depth
    FROM telemetry
    WHERE run_id = $run_id
),
scores_by_span AS (
    -- every rubric that applied (the LLM judge too), not only the five span_quality pivots
    SELECT span_id, map(list(rubric ORDER BY rubric), list(score ORDER BY rubric)) AS scores
    FROM scores
    WHERE run_id = $run_id AND score IS NOT NULL
    GROUP BY span_id
),

-- replica_skew: pinned traffic, per replica (a failed pin charged to the pinned replica)
replica_skew AS (
    SELECT span_id, replica_id AS bucket
    FROM span_quality
    WHERE mode = 'pinned' AND replica_id IS NOT NULL
),

-- autoscaling_lag: saturation at arrival, from the telemetry sample just before the send
autoscaling_arrivals AS (
    SELECT sq.span_id,
           t.replica_count AS replicas_at_arrival,
           CASE WHEN t.replica_count > 0 THEN t.queue_depth / t.replica_count
                WHEN t.queue_depth > 0 THEN 'infinity'::DOUBLE
                WHEN t.sampled_at IS NOT NULL THEN 0.0
           END AS saturation
    FROM span_quality AS sq
    ASOF LEFT JOIN run_telemetry AS t ON sq.sent_at >= t.sampled_at
    WHERE sq.mode IN ('replay', 'tenant_burst')
),
autoscaling_lag AS (
    SELECT span_id,
           CASE WHEN saturation IS NULL          THEN 'unknown'
                WHEN saturation < $warm_at       THEN 'idle'
                WHEN replicas_at_arrival >= $max_replicas THEN 'at_capacity'
                WHEN saturation < $saturating_at THEN 'warm'
                WHEN saturation < $scaling_at    THEN 'saturating'
                ELSE 'scaling'
           END AS bucket
    FROM autoscaling_arrivals
),

-- kv_cache_eviction, dimension cache_hit: the request's prefix-cache hit ratio
kv_cache_hit AS (
    SELECT span_id,
           CASE WHEN hit_ratio IS NULL       THEN 'unknown'
                WHEN hit_ratio > $kv_high    THEN 'high'
                WHEN hit_ratio > $kv_medium  THEN 'medium'
                ELSE 'low'
           END AS bucket
    FROM (SELECT span_id,
                 CASE WHEN prompt_tokens > 0 THEN cached_tokens / prompt_tokens END AS hit_ratio
          FROM span_quality)
),

-- kv_cache_eviction, dimension prefix_reuse: followed shared contexts only
shared_contexts AS (
    SELECT span_id,
           list_slice(json_extract(request_body, '$.messages[*]'), 1, -2)::VARCHAR AS earlier,
           json_extract(request_body, '$.tools')::VARCHAR                         AS tools,
           json_extract(request_body, '$.messages[-1]')::VARCHAR                  AS last_message
    FROM spans
    WHERE run_id = $run_id AND prompt_tokens >= $min_shared_tokens
      AND json_valid(request_body)
),
followed AS (
    SELECT w.span_id, w.replica_id, w.sent_at, w.ttft_ms, w.cached_tokens,
           hash(c.earlier, c.tools) AS context_key,
           w.prompt_tokens * (length(c.earlier) + coalesce(length(c.tools), 0))
             / (length(c.earlier) + coalesce(length(c.tools), 0) + length(c.last_message))
             AS shared_tokens
    FROM span_quality AS w
    JOIN shared_contexts AS c USING (span_id)
    WHERE w.replica_id IS NOT NULL
),
reuse AS (
    SELECT *,
           min(epoch(sent_at) + ttft_ms / 1000) OVER (
               PARTITION BY replica_id, context_key ORDER BY sent_at
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS computed_at
    FROM followed
    WHERE shared_tokens >= $min_shared_tokens
),
kv_prefix_reuse AS (
    SELECT span_id,
           CASE WHEN computed_at IS NULL OR computed_at > epoch(sent_at) THEN 'first_use'
                WHEN cached_tokens IS NULL                THEN 'unknown'
                WHEN cached_tokens >= 0.5 * shared_tokens THEN 'retained'
                ELSE 'evicted'
           END AS bucket
    FROM reuse
),

-- traffic_pattern_drift: the window's pattern from telemetry, per replayed span
replayed AS (
    SELECT span_id, sent_at, latency_ms
    FROM span_quality
    WHERE mode IN ('replay', 'tenant_burst')
),
origin AS (
    SELECT min(sent_at) AS t0 FROM replayed
),
windowed_telemetry AS (
    SELECT t.*, floor((epoch(t.sampled_at) - epoch(o.t0)) / $window_s) AS window_no
    FROM telemetry AS t, origin AS o
    WHERE t.run_id = $run_id
),
observed_windows AS (
    SELECT window_no,
           CASE WHEN max(queue_depth) > $burst_factor * avg(queue_depth)
                 AND max(queue_depth) > $per_replica_capacity THEN 'burst'
                WHEN avg(queue_depth) > $sustained_factor * avg(replica_count)
                                        * $per_replica_capacity THEN 'sustained'
                ELSE 'steady'
           END AS pattern
    FROM windowed_telemetry
    GROUP BY window_no
),
drift_arrivals AS (
    SELECT r.*, t.replica_count AS replicas_at_arrival
    FROM replayed AS r
    ASOF LEFT JOIN windowed_telemetry AS t ON r.sent_at >= t.sampled_at
),
traffic_pattern_drift AS (
    SELECT r.span_id,
           CASE WHEN coalesce(w.pattern, 'steady') <> 'steady'
                 AND r.replicas_at_arrival < $max_replicas THEN 'below_ceiling'
                ELSE coalesce(w.pattern, 'steady')
           END AS bucket
    FROM drift_arrivals AS r
    CROSS JOIN origin AS o
    LEFT JOIN observed_windows AS w
           ON w.window_no = floor((epoch(r.sent_at) - epoch(o.t0)) / $window_s)
),

-- tenant_fairness: production-shaped traffic, per tenant
tenant_fairness AS (
    SELECT span_id, tenant_id AS bucket
    FROM span_quality
    WHERE mode IN ('replay', 'tenant_burst')
)

SELECT s.span_id,
       s.request_id,
       s.mode,
       s.tenant_id,
       s.endpoint,
       s.sent_at,
       s.latency_ms,
       s.ttft_ms,
       s.schedule_lag_ms,
       s.status,
       s.http_status,
       s.error_class,
       s.finish_reason,
       s.prompt_tokens,
       s.completion_tokens,
       s.cached_tokens,
       s.replica_id,
       s.pinned_replica,
       s.replica_queue_depth,
       s.engine_running,
       s.engine_waiting,
       s.kv_cache_usage,
       s.kv_cache_usage_peak,
       s.config_version,
       -- the request's parameters, never its messages
       CASE WHEN json_valid(s.request_body)
            THEN json_extract_string(s.request_body, '$.model') END           AS request_model,
       CASE WHEN json_valid(s.request_body)
            THEN TRY_CAST(json_extract_string(s.request_body, '$.max_tokens') AS BIGINT)
       END                                                                     AS max_tokens,
       CASE WHEN json_valid(s.request_body)
            THEN TRY_CAST(json_extract_string(s.request_body, '$.temperature') AS DOUBLE)
       END                                                                     AS temperature,
       CASE WHEN json_valid(s.request_body)
            THEN TRY_CAST(json_extract_string(s.request_body, '$.stream') AS BOOLEAN)
       END                                                                     AS stream,
       q.request_class,
       q.quality,
       sc.scores,
       r.verdict,
       rs.bucket  AS bucket_replica_skew,
       al.bucket  AS bucket_autoscaling_lag,
       kh.bucket  AS bucket_kv_cache_eviction,
       kr.bucket  AS bucket_kv_cache_eviction_prefix_reuse,
       td.bucket  AS bucket_traffic_pattern_drift,
       tf.bucket  AS bucket_tenant_fairness
FROM spans AS s
JOIN runs AS r USING (run_id)
LEFT JOIN span_quality AS q USING (span_id)
LEFT JOIN scores_by_span AS sc USING (span_id)
LEFT JOIN replica_skew AS rs USING (span_id)
LEFT JOIN autoscaling_lag AS al USING (span_id)
LEFT JOIN kv_cache_hit AS kh USING (span_id)
LEFT JOIN kv_prefix_reuse AS kr USING (span_id)
LEFT JOIN traffic_pattern_drift AS td USING (span_id)
LEFT JOIN tenant_fairness AS tf USING (span_id)
WHERE s.run_id = $run_id
ORDER BY s.sent_at, s.span_id;
