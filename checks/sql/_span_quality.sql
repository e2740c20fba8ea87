-- Staging for every check: one row per span of the run with its quality.
-- quality = mean of the span's non-null rubric scores (avg skips nulls), and one
-- column per rubric, pivoted once here so the five checks never re-scan `scores`.
-- request_class = the rubrics that apply to the span ('json+completion', ...): what
-- was asked of it, known even when it failed (failures score 0 on each of them).
-- adjusted_quality compares like with like (docs/checks.md, "Like with like"): the
-- span's quality minus the mean of its stratum, plus the run's mean. A stratum is a
-- request class within a request-size quartile (the request body's length, known
-- before the answer, so a timeout keeps its place and its 0). Within a stratum
-- nothing changes; a stratum that sits in one bucket only no longer moves that
-- bucket, so a bucket holding the night's longest or hardest requests is not failed
-- for holding them. autoscaling_lag, kv_cache_eviction and traffic_pattern_drift
-- compare adjusted means; tenant_fairness (a tail), replica_skew (the same prompts on
-- every replica), the SLO floor and the history check judge the raw quality.
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
),
classified AS (
SELECT s.span_id, s.mode, s.tenant_id, s.request_id,
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
                 CASE WHEN q.completion IS NOT NULL THEN 'completion' END) AS request_class,
       length(s.request_body) AS request_chars
FROM spans AS s
LEFT JOIN per_span AS q USING (span_id)
WHERE s.run_id = $run_id
),
size_edges AS (
    SELECT quantile_disc(request_chars, [0.25, 0.5, 0.75]) AS edges FROM classified
),
stratified AS (
    SELECT c.* EXCLUDE (request_chars),
           c.request_class || '/q'
             || (1 + len(list_filter(e.edges, lambda x: c.request_chars > x))) AS stratum
    FROM classified AS c
    CROSS JOIN size_edges AS e
)
SELECT *,
       quality - avg(quality) OVER (PARTITION BY stratum) + avg(quality) OVER ()
           AS adjusted_quality
FROM stratified;
