-- history: is tonight worse than the nights this cluster was accepted on?
-- $baseline_runs are the accepted baseline: the last N passing nights with the same
-- baseline key (checks/sql/_baseline_runs.sql), empty while it is being established.
-- Two kinds of row:
--   <check>/<bucket>, one per metric: a bucket's mean quality, error share, goodput
--       median latency and p99 TTFT / latency, for the run-level SLO rows and every bucket of the
--       bucket checks (replica ids change every night, so replica_skew has none)
--   golden: the pinned golden set, prompt by prompt. At temperature 0 the same prompt
--       on the same config gives the same answer, so 'agreement' (share of tonight's
--       golden answers equal to the baseline nights' most common answer to that
--       prompt, any of them on a tie) and 'paired_quality' (mean over prompts of tonight's score minus the
--       baseline nights' score for that prompt) are sharp and cheap.
-- The test (docs/checks.md): tonight breaches when it is worse than the WORST baseline
-- night by more than a margin, the largest of
--   * the baseline nights' own spread (max - min): how much healthy nights move,
--   * z x tonight's standard error: how much tonight's own sample moves,
--   * a floor ($quality_margin for quality and paired_quality, $share_margin for error
--     share and goodput, $agreement_margin for agreement, $latency_margin_ratio x
--     the baseline median for medians and p99s): what a team would not page for.
-- With k baseline nights a healthy night is worse than all of them with chance
-- 1/(k+1); it must then also clear the margin. A value needs >= 2 sufficient
-- baseline nights, and a p99 >= $min_samples_p99 spans (a p99 of 170 spans is the
-- second-slowest request: on healthy nights it moved 20.8-51.8 s), else the row is
-- insufficient; the medians carry latency night to night on smaller nights.
-- Latency and goodput are compared only with baseline nights whose host ran at about
-- tonight's speed: where the cluster runs on the flow's host, the flow probes the
-- host's memory speed while the cluster is idle (runs.plan -> 'host_speed',
-- serving/host_speed.py), and a night whose probe differs from tonight's by more than
-- $max_host_speed_gap (a ratio) measured its host, not the cluster. A night without a
-- probe (a remote cluster, an older night) is compared as before.
WITH nights AS (
    SELECT unnest($baseline_runs::VARCHAR[]) AS run_id
    UNION ALL
    SELECT $run_id
),
-- each night's host speed against tonight's, a ratio >= 1 (NULL: either was not probed)
host_speed_gap AS (
    SELECT r.run_id,
           greatest(r.probe_ms / t.probe_ms, t.probe_ms / r.probe_ms) AS gap,
           r.probe_ms, t.probe_ms AS tonight_probe_ms
    FROM (SELECT run_id, (plan -> 'host_speed' ->> 'probe_ms')::DOUBLE AS probe_ms
          FROM runs WHERE run_id IN (SELECT run_id FROM nights)) AS r,
         (SELECT (plan -> 'host_speed' ->> 'probe_ms')::DOUBLE AS probe_ms
          FROM runs WHERE run_id = $run_id) AS t
),
bucket_rows AS (
    SELECT run_id, 'slo/' || bucket AS bucket, n, insufficient, sd_quality,
           mean_quality, error_share AS error_rate, goodput, p50_latency_ms, p99_latency_ms,
           p99_ttft_ms
    FROM check_slo WHERE run_id IN (SELECT run_id FROM nights)
    UNION ALL BY NAME
    SELECT run_id, 'autoscaling_lag/' || bucket AS bucket, n, insufficient, sd_quality,
           mean_quality, error_rate, p50_latency_ms, p99_latency_ms, p99_ttft_ms
    FROM check_autoscaling_lag WHERE run_id IN (SELECT run_id FROM nights)
    UNION ALL BY NAME
    SELECT run_id, 'kv_cache_eviction/' || dimension || '/' || bucket AS bucket, n, insufficient,
           sd_quality, mean_quality, error_rate, p50_latency_ms, p99_latency_ms, p99_ttft_ms
    FROM check_kv_cache_eviction WHERE run_id IN (SELECT run_id FROM nights)
      -- the prompt-length deciles are a diagnostic breakdown, judged nowhere else
      AND dimension <> 'prompt_length'
    UNION ALL BY NAME
    SELECT run_id, 'traffic_pattern_drift/' || bucket AS bucket, n, insufficient, sd_quality,
           mean_quality, error_rate, p50_latency_ms, p99_latency_ms, p99_ttft_ms
    FROM check_traffic_pattern_drift WHERE run_id IN (SELECT run_id FROM nights)
    UNION ALL BY NAME
    SELECT run_id, 'tenant_fairness/' || bucket AS bucket, n, insufficient, sd_quality,
           mean_quality, error_rate, p50_latency_ms, p99_latency_ms, p99_ttft_ms
    FROM check_tenant_fairness WHERE run_id IN (SELECT run_id FROM nights)
),
bucket_values AS (
    UNPIVOT bucket_rows
    ON mean_quality, error_rate, goodput, p50_latency_ms, p99_latency_ms, p99_ttft_ms
    INTO NAME metric VALUE value
),
-- one row per (bucket, metric) of every night, with tonight's standard error
metric_values AS (
    SELECT run_id, bucket, metric, n, value,
           insufficient OR (metric LIKE 'p99%' AND n < $min_samples_p99) AS insufficient,
           CASE WHEN metric = 'mean_quality' THEN sd_quality / sqrt(n)
                WHEN metric IN ('error_rate', 'goodput') THEN sqrt(value * (1 - value) / n)
                ELSE 0.0 END AS se
    FROM bucket_values
    WHERE n > 0
),
-- the golden set, prompt by prompt
golden AS (
    SELECT s.run_id, s.request_id,
           coalesce(s.output_text, '') || coalesce(s.tool_calls, '') AS answer,
           s.status = 'ok' AS ok,
           coalesce(q.quality, 0.0) AS quality
    FROM spans AS s
    LEFT JOIN (SELECT run_id, span_id, avg(score) AS quality
               FROM scores
               WHERE run_id IN (SELECT run_id FROM nights) AND score IS NOT NULL
               GROUP BY ALL) AS q USING (run_id, span_id)
    WHERE s.run_id IN (SELECT run_id FROM nights) AND s.mode = 'pinned'
),
baseline_answers AS (
    SELECT request_id, answer, count(*) AS times, sum(quality) AS quality_sum,
           max(count(*)) OVER (PARTITION BY request_id) AS most
    FROM golden
    WHERE run_id <> $run_id AND ok
    GROUP BY request_id, answer
),
usual_answer AS (
    -- the baseline nights' most common answers to each prompt, every one of them on a
    -- tie (mode() kept one of the tied answers at random: judging the same night twice
    -- could differ by a prompt), and the baseline's mean quality on the prompt
    SELECT request_id,
           list(answer ORDER BY answer) FILTER (WHERE times = most) AS answers,
           sum(quality_sum) / sum(times) AS baseline_quality
    FROM baseline_answers
    GROUP BY request_id
),
agreement AS (
    SELECT g.run_id, 'golden' AS bucket, 'agreement' AS metric, count(*) AS n,
           avg(CASE WHEN g.ok AND list_contains(u.answers, g.answer)
                    THEN 1.0 ELSE 0.0 END) AS value
    FROM golden AS g
    JOIN usual_answer AS u USING (request_id)
    GROUP BY g.run_id
),
paired AS (
    -- tonight's score minus the baseline's, per prompt
    SELECT g.request_id, avg(g.quality) - any_value(u.baseline_quality) AS diff
    FROM golden AS g
    JOIN usual_answer AS u USING (request_id)
    WHERE g.run_id = $run_id
    GROUP BY g.request_id
),
golden_values AS (
    SELECT run_id, bucket, metric, n, value, n < $min_samples AS insufficient,
           sqrt(value * (1 - value) / n) AS se
    FROM agreement
    UNION ALL
    SELECT $run_id, 'golden', 'paired_quality', count(*), avg(diff), count(*) < 2,
           stddev_samp(diff) / sqrt(count(*))
    FROM paired
    HAVING count(*) > 0
),
all_values AS (
    SELECT * FROM metric_values
    UNION ALL BY NAME
    SELECT * FROM golden_values
),
tonight AS (
    SELECT * FROM all_values WHERE run_id = $run_id
),
baseline_values AS (
    SELECT v.*,
           v.metric IN ('p50_latency_ms', 'p99_latency_ms', 'p99_ttft_ms', 'goodput')
             AND coalesce(h.gap, 1.0) > $max_host_speed_gap AS other_host_speed,
           h.probe_ms
    FROM all_values AS v
    LEFT JOIN host_speed_gap AS h USING (run_id)
    WHERE v.run_id <> $run_id AND NOT v.insufficient
),
baseline AS (
    SELECT bucket, metric,
           count(*) FILTER (WHERE NOT other_host_speed)     AS baseline_nights,
           median(value) FILTER (WHERE NOT other_host_speed) AS baseline_median,
           min(value) FILTER (WHERE NOT other_host_speed)   AS low,
           max(value) FILTER (WHERE NOT other_host_speed)   AS high,
           -- the nights left out for their host's speed, and how fast those hosts ran
           count(*) FILTER (WHERE other_host_speed)         AS other_host_nights,
           median(probe_ms) FILTER (WHERE other_host_speed) AS other_host_probe_ms
    FROM baseline_values
    GROUP BY bucket, metric
),
judged AS (
    SELECT t.bucket, t.metric, t.n, t.value AS observed,
           CASE WHEN t.metric IN ('error_rate', 'p50_latency_ms', 'p99_latency_ms',
                                  'p99_ttft_ms')
                THEN 'higher' ELSE 'lower' END AS worse_when,
           t.metric = 'paired_quality' AS paired,
           t.insufficient OR coalesce(b.baseline_nights, 0) < 2
             AND t.metric <> 'paired_quality' AS insufficient,
           -- what a value needs to be judged, and which side fell short of it
           CASE WHEN t.metric LIKE 'p99%' THEN greatest($min_samples_p99, $min_samples)
                WHEN t.metric = 'paired_quality' THEN 2
                ELSE $min_samples END::BIGINT AS required_n,
           CASE WHEN t.insufficient THEN 'tonight'
                WHEN coalesce(b.baseline_nights, 0) < 2 AND b.other_host_nights > 0
                     THEN 'host_speed'
                WHEN coalesce(b.baseline_nights, 0) < 2
                     AND t.metric <> 'paired_quality' THEN 'baseline' END AS short_of,
           coalesce(b.baseline_nights, 0) AS baseline_nights,
           b.other_host_nights, b.other_host_probe_ms,
           (SELECT any_value(tonight_probe_ms) FROM host_speed_gap) AS tonight_probe_ms,
           b.baseline_median, b.low, b.high,
           greatest(
               coalesce(b.high - b.low, 0),
               $significance_z * coalesce(t.se, 0),
               CASE t.metric
                   WHEN 'mean_quality'   THEN $quality_margin
                   WHEN 'paired_quality' THEN $quality_margin
                   WHEN 'agreement'      THEN $agreement_margin
                   WHEN 'error_rate'     THEN $share_margin
                   WHEN 'goodput'        THEN $share_margin
                   ELSE $latency_margin_ratio * b.baseline_median
               END) AS margin
    FROM tonight AS t
    LEFT JOIN baseline AS b USING (bucket, metric)
)
SELECT $run_id AS run_id,
       bucket || ':' || metric AS bucket,  -- one row per bucket and metric: unique
       metric, n, insufficient, required_n,
       CASE short_of
           WHEN 'tonight' THEN printf('has %d samples tonight, fewer than the %d a %s needs',
                                      n, required_n, metric)
           WHEN 'baseline' THEN printf('has %d baseline night(s) with enough samples, fewer '
                                       'than 2', baseline_nights)
           WHEN 'host_speed' THEN printf(
               'has %d baseline night(s) whose host ran at tonight''s speed, fewer than 2: '
               'the host''s memory probe took %.1f ms tonight, %.1f ms on the other %d '
               '(more than %gx apart), so tonight''s latency would measure the host, '
               'not the cluster', baseline_nights, tonight_probe_ms, other_host_probe_ms,
               other_host_nights, $max_host_speed_gap)
       END AS insufficient_reason,
       worse_when, observed,
       -- paired_quality is already tonight minus the baseline: its baseline is 0
       CASE WHEN paired THEN length($baseline_runs::VARCHAR[]) ELSE baseline_nights END
           AS baseline_nights,
       CASE WHEN paired THEN 0.0 ELSE baseline_median END AS baseline_median,
       CASE WHEN paired THEN 0.0
            WHEN worse_when = 'higher' THEN high ELSE low END AS baseline_worst,
       margin,
       CASE WHEN worse_when = 'higher' THEN observed - (high + margin)
            WHEN paired THEN -margin - observed
            ELSE (low - margin) - observed
       END AS excess
FROM judged
-- no accepted baseline (none yet, or establishing): nothing to compare, no rows;
-- the verdict names the baseline's state instead
WHERE length($baseline_runs::VARCHAR[]) > 0;
