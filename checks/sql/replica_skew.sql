-- replica_skew: do replicas of the same deployment answer equally well?
-- Pinned traffic sends the same requests to every replica, so a replica whose mean
-- quality sits away from the cohort is a sick replica (bad node, stale weights,
-- a fault), not a harder workload. One row per replica.
INSERT INTO check_replica_skew BY NAME
WITH labelled AS (
    SELECT *, replica_id AS bucket
    FROM span_quality
    WHERE mode = 'pinned' AND replica_id IS NOT NULL
),
per_replica AS (
    SELECT * FROM bucket_stats('labelled', $min_samples)
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
       c.spread
FROM per_replica AS r
CROSS JOIN cohort AS c;
