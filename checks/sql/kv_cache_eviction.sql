-- kv_cache_eviction: does quality or latency suffer when the prefix cache misses?
-- Which bucket each span is in, per dimension, is decided once in
-- _kv_cache_eviction_buckets.sql; this file compares the buckets.
-- Per request, cache hit ratio = cached_tokens / prompt_tokens (vLLM prefix cache).
-- Low ratios on prompts that share prefixes mean blocks were evicted under memory
-- pressure. Buckets high (> $kv_high), medium (> $kv_medium), low; reference = high,
-- or the aggregate when high is empty or insufficient. Requests without token counts
-- (failures before the engine answered) go to 'unknown' and stay visible.
-- Second dimension, judged on the eviction itself: prefix reuse. vLLM recomputes
-- evicted blocks, so eviction rarely changes an answer (the cache_hit buckets stay
-- level), and under memory pressure requests that kept their context queue for the
-- same scarce blocks as those that lost it, so first-token times do not separate
-- them either (kv-cache-pressure scenario: which p50 TTFT was higher flipped from run
-- to run). What
-- the engine does report is how much of each prompt it reused. A request's shared
-- context is what comes before its last message: system prompt, earlier turns, and
-- tools (chat templates render them first); its size in tokens is estimated from its
-- share of the request's characters. Requests with a shared context of
-- >= $min_shared_tokens are followed:
--   first_use  no earlier request with this context had its first token from this
--              replica before this one was sent: nothing to reuse yet
--   retained   the replica reused it: cached tokens >= half the context (blocks are
--              cached whole, so a kept context shows up nearly in full)
--   evicted    the replica had computed it and no longer had it
--   unknown    failed before the engine reported cached tokens
-- The 'evicted' row carries the judged fact, evicted_share = evicted / (retained +
-- evicted); every row carries its TTFT and latency quantiles to read the cost. A context
-- inside the last message (e.g. a RAG passage pasted before the question) is not
-- followed: the shared part cannot be told from the question there.
-- Third dimension, diagnostic: quality by prompt-length decile (len_d1 shortest ..
-- len_d10 longest; a prompt's decile = 1 + the decile edges below its length, so
-- equal lengths share a decile) against the aggregate, separating "long prompts are
-- harder" from "evicted prompts are worse".
WITH assigned AS (
    -- quality adjusted for the request's stratum, class x size quartile
    -- (_span_quality.sql). Cache hits follow request kinds and sizes (a shared RAG
    -- context belongs to one kind of request, the longest prompts hit the cache
    -- least), so raw bucket means compare requests, not cache states: a heavy-tenant
    -- run had cached grounded QA 16 points above uncached JSON/math, and the demo's
    -- 'medium' bucket held the longest prompts (0.08 against 0.28) for that alone.
    SELECT sq.* REPLACE (sq.adjusted_quality AS quality), b.dimension, b.bucket, b.hit_ratio
    FROM span_quality AS sq
    JOIN kv_cache_eviction_buckets AS b USING (span_id)
),
by_hit AS MATERIALIZED (
    SELECT * FROM assigned WHERE dimension = 'cache_hit'
),
by_reuse AS MATERIALIZED (
    SELECT * FROM assigned WHERE dimension = 'prefix_reuse'
),
by_length AS MATERIALIZED (
    SELECT * FROM assigned WHERE dimension = 'prompt_length'
),
eviction AS (
    SELECT 'evicted' AS bucket,
           count(*) FILTER (WHERE bucket = 'evicted') / nullif(count(*), 0) AS evicted_share
    FROM by_reuse
    WHERE bucket IN ('retained', 'evicted')
),
hit_ratio AS (
    SELECT bucket, avg(hit_ratio) AS mean_hit_ratio FROM by_hit GROUP BY bucket
    UNION ALL
    SELECT bucket, avg(hit_ratio) FROM by_length GROUP BY bucket
),
reuse_hit_ratio AS (
    SELECT bucket, avg(hit_ratio) AS mean_hit_ratio FROM by_reuse GROUP BY bucket
)
SELECT $run_id AS run_id, 'cache_hit' AS dimension, c.*, h.mean_hit_ratio
FROM compare_buckets('by_hit', $min_samples, ['high', 'medium', 'low'], ['high'],
                     $significance_z) AS c
LEFT JOIN hit_ratio AS h USING (bucket)
UNION ALL BY NAME
SELECT $run_id AS run_id, 'prefix_reuse' AS dimension, c.*, h.mean_hit_ratio,
       e.evicted_share
FROM compare_buckets('by_reuse', $min_samples, ['retained', 'evicted'], ['retained'],
                     $significance_z) AS c
LEFT JOIN reuse_hit_ratio AS h USING (bucket)
LEFT JOIN eviction AS e USING (bucket)
UNION ALL BY NAME
SELECT $run_id AS run_id, 'prompt_length' AS dimension, c.*, h.mean_hit_ratio
FROM compare_buckets('by_length', $min_samples, []::VARCHAR[], []::VARCHAR[], $significance_z) AS c
LEFT JOIN hit_ratio AS h USING (bucket);
