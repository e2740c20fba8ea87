-- kv_cache_eviction's assignment, one row per span and dimension (the rules are
-- explained in kv_cache_eviction.sql, which reads this table):
--   cache_hit      every span: hit ratio = cached_tokens / prompt_tokens, high
--                  (> $kv_high), medium (> $kv_medium), low, or unknown (no counts)
--   prefix_reuse   followed spans only (a shared context before the last message of
--                  >= $min_shared_tokens, on a known replica): first_use, retained,
--                  evicted or unknown
--   prompt_length  spans with a prompt length: len_d1 (shortest) .. len_d10, by the
--                  decile edges of the run's prompt lengths
-- hit_ratio rides along: the check reports each bucket's mean hit ratio.
CREATE OR REPLACE TEMP TABLE kv_cache_eviction_buckets AS
WITH with_ratio AS (
    SELECT span_id, replica_id, sent_at, ttft_ms, prompt_tokens, cached_tokens,
           CASE WHEN prompt_tokens > 0 THEN cached_tokens / prompt_tokens END AS hit_ratio
    FROM span_quality
),
by_hit AS (
    SELECT span_id, hit_ratio,
           CASE WHEN hit_ratio IS NULL       THEN 'unknown'
                WHEN hit_ratio > $kv_high    THEN 'high'
                WHEN hit_ratio > $kv_medium  THEN 'medium'
                ELSE 'low'
           END AS bucket
    FROM with_ratio
),
length_deciles AS (
    -- decile edges by value, not ntile over a sort: prompts of equal length always
    -- land in the same decile, and no 1 M-row sort is needed
    SELECT quantile_disc(prompt_tokens, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
             AS edges
    FROM with_ratio
),
by_length AS (
    SELECT w.span_id, w.hit_ratio,
           'len_d' || (1 + len(list_filter(d.edges, lambda e: w.prompt_tokens > e))) AS bucket
    FROM with_ratio AS w
    CROSS JOIN length_deciles AS d
    WHERE w.prompt_tokens IS NOT NULL
),
shared_contexts AS (
    -- only prompts long enough to hold a followed context are parsed
    SELECT span_id,
           list_slice(json_extract(request_body, '$.messages[*]'), 1, -2)::VARCHAR AS earlier,
           json_extract(request_body, '$.tools')::VARCHAR                         AS tools,
           json_extract(request_body, '$.messages[-1]')::VARCHAR                  AS last_message
    FROM spans
    WHERE run_id = $run_id AND prompt_tokens >= $min_shared_tokens
      AND json_valid(request_body)  -- a body that is not JSON is not followed, not fatal
),
followed AS (
    SELECT w.*,
           hash(c.earlier, c.tools) AS context_key,
           w.prompt_tokens * (length(c.earlier) + coalesce(length(c.tools), 0))
             / (length(c.earlier) + coalesce(length(c.tools), 0) + length(c.last_message))
             AS shared_tokens
    FROM with_ratio AS w
    JOIN shared_contexts AS c USING (span_id)
    WHERE w.replica_id IS NOT NULL
),
reuse AS (
    SELECT *,
           -- when this replica first had the context computed (an earlier request's
           -- first token), among requests sent before this one
           min(epoch(sent_at) + ttft_ms / 1000) OVER (
               PARTITION BY replica_id, context_key ORDER BY sent_at
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS computed_at
    FROM followed
    WHERE shared_tokens >= $min_shared_tokens
),
by_reuse AS (
    SELECT span_id, hit_ratio,
           CASE WHEN computed_at IS NULL OR computed_at > epoch(sent_at) THEN 'first_use'
                WHEN cached_tokens IS NULL                THEN 'unknown'
                WHEN cached_tokens >= 0.5 * shared_tokens THEN 'retained'
                ELSE 'evicted'
           END AS bucket
    FROM reuse
)
SELECT span_id, 'cache_hit' AS dimension, bucket, hit_ratio FROM by_hit
UNION ALL
SELECT span_id, 'prefix_reuse', bucket, hit_ratio FROM by_reuse
UNION ALL
SELECT span_id, 'prompt_length', bucket, hit_ratio FROM by_length;
