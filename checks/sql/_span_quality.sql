-- Staging for every check: one row per span of the run with its quality.
-- quality = mean of the span's non-null rubric scores (avg skips nulls), and one
-- column per rubric, pivoted once here so the five checks never re-scan `scores`.
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
       q.* EXCLUDE (span_id)
FROM spans AS s
LEFT JOIN per_span AS q USING (span_id)
WHERE s.run_id = $run_id;
