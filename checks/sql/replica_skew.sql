-- replica_skew: do replicas of the same deployment answer equally well?
-- Pinned traffic sends the same requests to every replica, so a replica whose mean
-- quality sits away from the cohort is a sick replica (bad node, stale weights,
-- a fault), not a harder workload. One row per replica.
-- The gate judges delta_mean_upper: delta_mean when the drop is significant, i.e.
-- delta_mean + z x se_delta_mean < 0, else 0. The standard error comes from the
-- pairing itself: per golden prompt, the replica's score minus the median replica's
-- score on that prompt. Healthy replicas at temperature 0 answer alike, so the
-- differences are ~0 and a drift stands out; a fault that fails requests at random on
-- every replica makes them scatter, and a replica is then not blamed for that noise.
-- A significant drop is judged whole against the allowed distance (a drift of -0.14
-- with se 0.05 is -0.14, not -0.04: the pairing says it is real, the size is the finding).
WITH labelled AS (
    -- pinned spans, one bucket per replica (_replica_skew_buckets.sql)
    SELECT sq.*, b.bucket
    FROM span_quality AS sq
    JOIN replica_skew_buckets AS b USING (span_id)
),
per_replica AS (
    SELECT * FROM bucket_stats('labelled', $min_samples)
),
per_prompt AS (
    SELECT replica_id, request_id, avg(quality) AS quality
    FROM labelled
    GROUP BY ALL
),
prompt_median AS (
    SELECT request_id, median(quality) AS median_quality FROM per_prompt GROUP BY ALL
),
paired AS (
    SELECT p.replica_id AS bucket,
           coalesce(stddev_samp(p.quality - m.median_quality) / sqrt(count(*)), 0)
             AS se_delta_mean
    FROM per_prompt AS p
    JOIN prompt_median AS m USING (request_id)
    GROUP BY p.replica_id
),
cohort AS (
    -- the median resists the one sick replica the check is looking for; replicas
    -- with too few spans are left out of the reference but still reported
    SELECT median(mean_quality) FILTER (WHERE NOT insufficient) AS ref_mean_quality,
           median(p05_quality)  FILTER (WHERE NOT insufficient) AS ref_p05_quality,
           max(mean_quality) FILTER (WHERE NOT insufficient)
             - min(mean_quality) FILTER (WHERE NOT insufficient) AS spread
    FROM per_replica
)
SELECT $run_id                                  AS run_id,
       r.*,
       'cohort_median'                          AS reference,
       c.ref_mean_quality,
       c.ref_p05_quality,
       r.mean_quality - c.ref_mean_quality      AS delta_mean,
       r.p05_quality - c.ref_p05_quality        AS delta_p05,
       c.spread,
       p.se_delta_mean,
       CASE WHEN r.mean_quality - c.ref_mean_quality
                   + $significance_z * coalesce(p.se_delta_mean, 0) < 0
            THEN r.mean_quality - c.ref_mean_quality
            ELSE 0.0 END                        AS delta_mean_upper
FROM per_replica AS r
CROSS JOIN cohort AS c
LEFT JOIN paired AS p USING (bucket);
