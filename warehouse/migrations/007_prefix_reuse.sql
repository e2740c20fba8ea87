-- 007: kv_cache_eviction follows shared contexts. vLLM recomputes evicted KV blocks,
-- so eviction rarely changes an answer, and requests that kept their context queue
-- for the same scarce blocks as those that lost it, so first-token times do not
-- separate them either. The check's 'prefix_reuse' dimension buckets requests whose
-- shared context (system prompt, tools, earlier turns) their replica had already
-- computed into 'retained' and 'evicted'; the 'evicted' row carries the judged fact:
--   evicted_share = evicted / (retained + evicted)
ALTER TABLE check_kv_cache_eviction ADD COLUMN evicted_share DOUBLE;
