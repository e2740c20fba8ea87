-- The statistics every check reports per bucket, defined once.
-- `labelled` names a relation (CTE or table) of span_quality rows plus a `bucket`
-- column; a bucket with fewer than `min_n` spans is marked insufficient so the gate
-- can report it instead of letting it pass on noise.
CREATE OR REPLACE TEMP MACRO bucket_stats(labelled, min_n) AS TABLE
SELECT * EXCLUDE (latency_q, ttft_q),
       latency_q[1] AS p50_latency_ms,
       latency_q[2] AS p99_latency_ms,
       ttft_q[1]    AS p50_ttft_ms,
       ttft_q[2]    AS p99_ttft_ms
FROM (
    SELECT bucket,
           count(*)                                  AS n,
           count(*) < min_n                          AS insufficient,
           avg(quality)                              AS mean_quality,
           stddev_samp(quality)                      AS sd_quality,
           quantile_cont(quality, 0.05)              AS p05_quality,
           avg(json_adherence)                       AS json_adherence,
           avg(tool_call_correctness)                AS tool_call_correctness,
           avg(groundedness)                         AS groundedness,
           avg(reference_match)                      AS reference_match,
           avg(completion)                           AS completion,
           -- both quantiles from one sort per column
           quantile_cont(latency_ms, [0.50, 0.99])   AS latency_q,
           quantile_cont(ttft_ms, [0.50, 0.99])      AS ttft_q,
           avg(CASE WHEN status = 'ok' THEN 0.0 ELSE 1.0 END) AS error_rate
    FROM query_table(labelled)
    GROUP BY bucket
);

-- Bucket statistics plus the reference they are judged against and the deltas.
-- `expected_buckets` always get a row (n = 0, insufficient) so an empty bucket is
-- visible rather than silently absent; other buckets found in the data follow.
-- The reference is the first bucket of `ref_buckets` (in list order) with enough
-- spans, else the aggregate over all labelled spans (pass [] to always use the
-- aggregate). A thin reference bucket is noise, and the aggregate is mostly the
-- loaded buckets themselves, so a ladder (idle, then warm, ...) judges better.
-- `se_delta_mean` is the standard error of the bucket-minus-reference difference
-- (Welch); `delta_mean_upper = delta_mean + z * se` is what the gate judges, so a
-- bucket of 25 spans is not failed for a drop its sampling noise explains.
CREATE OR REPLACE TEMP MACRO compare_buckets(labelled, min_n, expected_buckets, ref_buckets, z)
AS TABLE
WITH stats AS MATERIALIZED (
    SELECT * FROM bucket_stats(labelled, min_n)
),
expected AS (
    SELECT unnest(expected_buckets) AS bucket
),
all_buckets AS MATERIALIZED (
    SELECT e.bucket,
           coalesce(s.n, 0)               AS n,
           coalesce(s.insufficient, true) AS insufficient,
           s.* EXCLUDE (bucket, n, insufficient)
    FROM expected AS e
    LEFT JOIN stats AS s USING (bucket)
    UNION ALL BY NAME
    SELECT * FROM stats WHERE bucket NOT IN (SELECT bucket FROM expected)
),
overall AS (
    SELECT avg(quality) AS mean_quality, quantile_cont(quality, 0.05) AS p05_quality,
           stddev_samp(quality) AS sd_quality, count(*) AS n,
           avg(CASE WHEN status = 'ok' THEN 0.0 ELSE 1.0 END) AS error_rate
    FROM query_table(labelled)
),
first_sufficient AS (
    SELECT *
    FROM all_buckets
    WHERE NOT insufficient AND list_contains(ref_buckets, bucket)
    ORDER BY list_position(ref_buckets, bucket)
    LIMIT 1
),
reference AS (
    SELECT coalesce(b.bucket, 'aggregate')          AS reference,
           coalesce(b.mean_quality, o.mean_quality) AS ref_mean_quality,
           coalesce(b.p05_quality, o.p05_quality)   AS ref_p05_quality,
           coalesce(b.sd_quality, o.sd_quality)     AS ref_sd_quality,
           coalesce(b.n, o.n)                       AS ref_n,
           coalesce(b.error_rate, o.error_rate)     AS ref_error_rate
    FROM overall AS o
    LEFT JOIN first_sufficient AS b ON true
),
compared AS (
    SELECT a.*,
           r.reference, r.ref_mean_quality, r.ref_p05_quality, r.ref_error_rate,
           a.mean_quality - r.ref_mean_quality AS delta_mean,
           a.p05_quality - r.ref_p05_quality   AS delta_p05,
           a.error_rate - r.ref_error_rate     AS delta_error_rate,
           CASE WHEN a.bucket = r.reference THEN 0.0
                WHEN a.n > 0 THEN sqrt(coalesce(a.sd_quality, 0) ^ 2 / a.n
                                       + coalesce(r.ref_sd_quality, 0) ^ 2 / r.ref_n)
           END AS se_delta_mean,
           CASE WHEN a.bucket = r.reference THEN 0.0
                WHEN a.n > 0 THEN sqrt(a.error_rate * (1 - a.error_rate) / a.n
                                       + r.ref_error_rate * (1 - r.ref_error_rate) / r.ref_n)
           END AS se_delta_error_rate
    FROM all_buckets AS a
    CROSS JOIN reference AS r
)
SELECT * EXCLUDE (se_delta_error_rate),
       delta_mean + z * se_delta_mean             AS delta_mean_upper,
       delta_error_rate - z * se_delta_error_rate AS delta_error_rate_lower
FROM compared;
