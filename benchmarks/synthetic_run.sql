-- A synthetic run for benchmarks/checks_speed.py: n spans over one hour, 8 replicas,
-- 50 tenants, 1 Hz telemetry with a slow wave and a burst every 5 minutes, and five
-- scores per span (completion always, the others on about a fifth of spans).
INSERT INTO runs (run_id, started_at, status)
VALUES ('bench', TIMESTAMPTZ '2026-11-23 02:00:00+00', 'finished');

INSERT INTO telemetry BY NAME
SELECT 'bench' AS run_id,
       TIMESTAMPTZ '2026-11-23 02:00:00+00' + to_seconds(i) AS sampled_at,
       CASE WHEN i < 1200 THEN 4 WHEN i < 2400 THEN 6 ELSE 8 END AS replica_count,
       -- a slow wave plus a burst every 5 minutes
       greatest(0, 20 + 18 * sin(i / 300.0) + CASE WHEN i % 300 < 10 THEN 60 ELSE 0 END)
         AS queue_depth
FROM range(3600) AS t(i);

INSERT INTO spans BY NAME
SELECT 'bench' AS run_id,
       's' || i AS span_id,
       CASE WHEN i % 10 = 0 THEN 'pinned' WHEN i % 10 = 1 THEN 'tenant_burst' ELSE 'replay' END
         AS mode,
       't' || (i % 50) AS tenant_id,
       'rep-' || (i % 8) AS replica_id,
       TIMESTAMPTZ '2026-11-23 02:00:00+00' + to_microseconds((i * 3600000000 // $n)::BIGINT)
         AS intended_at,
       TIMESTAMPTZ '2026-11-23 02:00:00+00'
         + to_microseconds((i * 3600000000 // $n + 2000)::BIGINT) AS sent_at,
       100 + (hash(i) % 900) AS latency_ms,
       20 + (hash(i * 7) % 200) AS ttft_ms,
       CASE WHEN hash(i * 13) % 100 = 0 THEN 'timeout' ELSE 'ok' END AS status,
       50 + (hash(i * 3) % 4000) AS prompt_tokens,
       (hash(i * 5) % 50) AS cached_tokens,
       -- a fifth of the requests ask about one of 50 documents held in the system turn
       -- (the contexts kv_cache_eviction follows), the rest are a bare question
       CASE WHEN i % 5 = 0
            THEN '{"model":"m","messages":[{"role":"system","content":"'
                 || repeat('document ' || (i % 50) || ' ', 150)
                 || '"},{"role":"user","content":"question ' || i || '"}]}'
            ELSE '{"model":"m","messages":[{"role":"user","content":"question ' || i || '"}]}'
       END AS request_body
FROM range($n) AS t(i);

UPDATE spans SET cached_tokens = (prompt_tokens * (hash(span_id) % 100) / 100)::BIGINT;

INSERT INTO scores
SELECT 'bench', s.span_id, r.rubric,
       CASE WHEN r.rubric = 'completion' THEN (s.status = 'ok')::INT::DOUBLE
            WHEN hash(s.span_id || r.rubric) % 5 = 0 THEN (hash(s.span_id) % 100) / 100.0
       END
FROM spans AS s
CROSS JOIN (VALUES ('json_adherence'), ('tool_call_correctness'), ('groundedness'),
                   ('reference_match'), ('completion')) AS r(rubric);
