-- The night over time: one row per time bin, from the first send (or sample) of the
-- run to the last answer (or sample). About $points bins, whole seconds wide.
--   offered_rps    requests the schedule asked for in the bin (intended send time,
--                  every mode) per second: the load the night was meant to be
--   achieved_rps   requests answered ok in the bin (send time + latency) per second:
--                  what the cluster delivered
--   errors         requests sent in the bin that ended in an error or timeout
--   rolling_quality  mean quality (mean of a span's non-null rubric scores, as in
--                  checks/sql/_span_quality.sql) of the requests sent in the last
--                  $rolling_s seconds up to the bin's end; null with none
--   replicas, replicas_starting, target_replicas, queue_depth, kv_cache_usage
--                  the telemetry sampler's series, the bin's highest sample (a burst
--                  is a peak); null when no sample fell in the bin (a gap)
-- Times are epoch seconds; the plot places them relative to the first bin.
WITH run_spans AS (
    SELECT span_id, status, epoch(intended_at) AS intended_s, epoch(sent_at) AS sent_s,
           epoch(sent_at) + coalesce(latency_ms, 0) / 1000 AS done_s
    FROM spans
    WHERE run_id = $run_id
),
run_telemetry AS (
    SELECT epoch(sampled_at) AS sampled_s, replica_count, replicas_starting,
           target_replicas, queue_depth, kv_cache_usage
    FROM telemetry
    WHERE run_id = $run_id
),
span_quality AS (
    SELECT span_id, avg(score) AS quality
    FROM scores
    WHERE run_id = $run_id AND score IS NOT NULL
    GROUP BY span_id
),
extent AS (
    SELECT least(min(s.first_s), min(t.first_s)) AS start_s,
           greatest(max(s.last_s), max(t.last_s)) AS end_s
    FROM (SELECT least(min(intended_s), min(sent_s)) AS first_s, max(done_s) AS last_s
          FROM run_spans) AS s,
         (SELECT min(sampled_s) AS first_s, max(sampled_s) AS last_s FROM run_telemetry) AS t
),
grid AS (
    SELECT start_s, end_s, greatest(1, ceil((end_s - start_s) / $points)) AS bin_s
    FROM extent
    WHERE start_s IS NOT NULL
),
bins AS (
    SELECT g.start_s + b.bin_no * g.bin_s AS bin_start, g.bin_s, b.bin_no
    FROM grid AS g,
         range(0, CAST(floor((SELECT (end_s - start_s) / bin_s FROM grid)) + 1 AS BIGINT))
           AS b(bin_no)
),
offered AS (
    SELECT floor((s.intended_s - g.start_s) / g.bin_s) AS bin_no, count(*) AS n
    FROM run_spans AS s, grid AS g GROUP BY ALL
),
achieved AS (
    SELECT floor((s.done_s - g.start_s) / g.bin_s) AS bin_no, count(*) AS n
    FROM run_spans AS s, grid AS g WHERE s.status = 'ok' GROUP BY ALL
),
errors AS (
    SELECT floor((s.sent_s - g.start_s) / g.bin_s) AS bin_no, count(*) AS n
    FROM run_spans AS s, grid AS g WHERE s.status <> 'ok' GROUP BY ALL
),
sampled AS (
    SELECT floor((t.sampled_s - g.start_s) / g.bin_s) AS bin_no,
           max(t.replica_count)     AS replicas,
           max(t.replicas_starting) AS replicas_starting,
           max(t.target_replicas)   AS target_replicas,
           max(t.queue_depth)       AS queue_depth,
           max(t.kv_cache_usage)    AS kv_cache_usage
    FROM run_telemetry AS t, grid AS g GROUP BY ALL
),
rolling AS (
    -- a range join: every bin against the spans sent in the window ending with it
    SELECT b.bin_no, avg(q.quality) AS rolling_quality
    FROM bins AS b
    JOIN run_spans AS s
      ON s.sent_s < b.bin_start + b.bin_s AND s.sent_s >= b.bin_start + b.bin_s - $rolling_s
    JOIN span_quality AS q USING (span_id)
    GROUP BY b.bin_no
)
SELECT b.bin_no, b.bin_start, b.bin_s,
       coalesce(o.n, 0) / b.bin_s AS offered_rps,
       coalesce(a.n, 0) / b.bin_s AS achieved_rps,
       coalesce(e.n, 0)           AS errors,
       r.rolling_quality,
       t.replicas, t.replicas_starting, t.target_replicas, t.queue_depth, t.kv_cache_usage
FROM bins AS b
LEFT JOIN offered  AS o USING (bin_no)
LEFT JOIN achieved AS a USING (bin_no)
LEFT JOIN errors   AS e USING (bin_no)
LEFT JOIN sampled  AS t USING (bin_no)
LEFT JOIN rolling  AS r USING (bin_no)
ORDER BY b.bin_no;
