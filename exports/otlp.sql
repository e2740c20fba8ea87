-- One row per span of the run, with what the OTLP export puts on it: its scores, the
-- bucket each of the five bucket checks put it in, and the run's verdict.
-- Reads `span_quality` (checks/sql/_span_quality.sql, created by checks.compute.prepare
-- in this connection) and the warehouse tables; writes nothing.
--
-- The bucket labels are read from `span_buckets` (checks/sql/_span_buckets.sql, created
-- by checks.compute.assign_buckets in this connection): the checks aggregate the same
-- assignment, so a span is exported with the bucket its check counted it in.
-- No prompt or completion text leaves this query: only the request's model and
-- sampling parameters are read out of the request body.
WITH scores_by_span AS (
    -- every rubric that applied (the LLM judge too), not only the five span_quality pivots
    SELECT span_id, map(list(rubric ORDER BY rubric), list(score ORDER BY rubric)) AS scores
    FROM scores
    WHERE run_id = $run_id AND score IS NOT NULL
    GROUP BY span_id
),
buckets_by_span AS (
    -- one column per check (two for kv_cache_eviction: its cache_hit and prefix_reuse
    -- dimensions; prompt_length is a diagnostic and not exported)
    SELECT span_id,
           any_value(bucket) FILTER (WHERE "check" = 'replica_skew')          AS replica_skew,
           any_value(bucket) FILTER (WHERE "check" = 'autoscaling_lag')       AS autoscaling_lag,
           any_value(bucket) FILTER (WHERE "check" = 'kv_cache_eviction'
                                       AND dimension = 'cache_hit')          AS kv_cache_hit,
           any_value(bucket) FILTER (WHERE "check" = 'kv_cache_eviction'
                                       AND dimension = 'prefix_reuse')       AS kv_prefix_reuse,
           any_value(bucket) FILTER (WHERE "check" = 'traffic_pattern_drift') AS traffic_pattern_drift,
           any_value(bucket) FILTER (WHERE "check" = 'tenant_fairness')       AS tenant_fairness
    FROM span_buckets
    GROUP BY span_id
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
       b.replica_skew          AS bucket_replica_skew,
       b.autoscaling_lag       AS bucket_autoscaling_lag,
       b.kv_cache_hit          AS bucket_kv_cache_eviction,
       b.kv_prefix_reuse       AS bucket_kv_cache_eviction_prefix_reuse,
       b.traffic_pattern_drift AS bucket_traffic_pattern_drift,
       b.tenant_fairness       AS bucket_tenant_fairness
FROM spans AS s
JOIN runs AS r USING (run_id)
LEFT JOIN span_quality AS q USING (span_id)
LEFT JOIN scores_by_span AS sc USING (span_id)
LEFT JOIN buckets_by_span AS b USING (span_id)
WHERE s.run_id = $run_id
ORDER BY s.sent_at, s.span_id;
