-- Staging for every check: one row per span of the run with its quality.
-- quality = mean of the span's non-null rubric scores (avg skips nulls), and one
-- column per rubric, pivoted once here so the five checks never re-scan `scores`.
-- request_class = the rubrics that apply to the span ('json+completion', ...): what
-- was asked of it, known even when it failed (failures score 0 on each of them).
CREATE OR REPLACE TEMP TABLE span_quality AS
WITH per_span AS (
    SELECT span_id,
           avg(score)                                                 AS quality,
           avg(score) FILTER (WHERE rubric = 'json_adherence')        AS json_adherence,
           avg(score) FILTER (WHERE rubric = 'tool_call_correctness') AS tool_call_correctness,
           avg(score) FILTER (WHERE rubric = 'groundedness')          AS groundedness,
           avg(score) FILTER (WHERE rubric = 'reference_match')       AS reference_match,
           avg(score) FILTER (WHERE rubric = 'completion')            AS completion
    FROM scores
    -- avg skips nulls anyway; dropping them first halves the rows grouped
    WHERE run_id = $run_id AND score IS NOT NULL
    GROUP BY span_id
)
SELECT s.span_id, s.mode, s.tenant_id,
       -- a failed request to a pinned replica may not name its replica: charge the pin
       coalesce(s.replica_id, s.pinned_replica) AS replica_id,
       s.intended_at, s.sent_at, s.latency_ms, s.ttft_ms, s.status,
       s.prompt_tokens, s.cached_tokens,
       q.* EXCLUDE (span_id),
       concat_ws('+',
                 CASE WHEN q.json_adherence IS NOT NULL THEN 'json' END,
                 CASE WHEN q.tool_call_correctness IS NOT NULL THEN 'tools' END,
                 CASE WHEN q.groundedness IS NOT NULL THEN 'grounded' END,
                 CASE WHEN q.reference_match IS NOT NULL THEN 'reference' END,
                 CASE WHEN q.completion IS NOT NULL THEN 'completion' END) AS request_class
FROM spans AS s
LEFT JOIN per_span AS q USING (span_id)
WHERE s.run_id = $run_id;
