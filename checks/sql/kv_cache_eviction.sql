-- kv_cache_eviction: does quality or latency suffer when the prefix cache misses?
-- Per request, cache hit ratio = cached_tokens / prompt_tokens (vLLM prefix cache).
-- Low ratios on prompts that share prefixes mean blocks were evicted under memory
-- pressure. Buckets high (> $kv_high), medium (> $kv_medium), low; reference = high,
-- or the aggregate when high is empty or insufficient. Requests without token counts
-- (failures before the engine answered) go to 'unknown' and stay visible.
-- Second dimension, diagnostic: quality by prompt-length decile (len_d1 shortest ..
-- len_d10 longest; a prompt's decile = 1 + the decile edges below its length, so
-- equal lengths share a decile) against the aggregate, separating "long prompts are
-- harder" from "evicted prompts are worse".
INSERT INTO check_kv_cache_eviction BY NAME
WITH with_ratio AS (
    -- quality adjusted for request class: the span's quality minus its class's mean,
    -- plus the run's mean. Cache hits follow request classes (a shared RAG context or
    -- system prompt belongs to one kind of request), so raw bucket means would compare
    -- kinds of request, not cache states: a heavy-tenant run had cached grounded QA
    -- 16 points above uncached JSON/math for that reason alone. Within a class the
    -- adjustment changes nothing; a class found in one bucket only no longer moves it.
    SELECT * REPLACE (quality - avg(quality) OVER (PARTITION BY request_class)
                              + avg(quality) OVER () AS quality),
           CASE WHEN prompt_tokens > 0 THEN cached_tokens / prompt_tokens END AS hit_ratio
    FROM span_quality
),
by_hit AS MATERIALIZED (
    SELECT *,
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
by_length AS MATERIALIZED (
    SELECT w.*,
           'len_d' || (1 + len(list_filter(d.edges, lambda e: w.prompt_tokens > e))) AS bucket
    FROM with_ratio AS w
    CROSS JOIN length_deciles AS d
    WHERE w.prompt_tokens IS NOT NULL
),
hit_ratio AS (
    SELECT bucket, avg(hit_ratio) AS mean_hit_ratio FROM by_hit GROUP BY bucket
    UNION ALL
    SELECT bucket, avg(hit_ratio) FROM by_length GROUP BY bucket
)
SELECT $run_id AS run_id, 'cache_hit' AS dimension, c.*, h.mean_hit_ratio
FROM compare_buckets('by_hit', $min_samples, ['high', 'medium', 'low'], ['high'],
                     $significance_z) AS c
LEFT JOIN hit_ratio AS h USING (bucket)
UNION ALL BY NAME
SELECT $run_id AS run_id, 'prompt_length' AS dimension, c.*, h.mean_hit_ratio
FROM compare_buckets('by_length', $min_samples, []::VARCHAR[], []::VARCHAR[], $significance_z) AS c
LEFT JOIN hit_ratio AS h USING (bucket);
