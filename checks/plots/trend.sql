-- The last $nights judged nights of the run's baseline key (runs.baseline_key: the
-- nights that are comparable), up to and including the run, and every metric the
-- gate judged on the run: one row per night and judged expectation, with what was
-- observed, the threshold it was held to, on which side (`bound`: 'max' is an upper
-- bound, 'min' a lower one) and whether it passed.
-- Judged means a metric rule with a value (success not null): the sample-size rule
-- ('sufficient_samples') and rules on a null metric are left out. Metrics the run was
-- not judged on (a replica id of an earlier night) are left out too: the trend
-- explains tonight. v_gate_trend counts breaches per check; it keeps no observed
-- value or threshold, so this reads expectation_results.
WITH this_run AS (
    SELECT run_id, started_at, baseline_key FROM runs WHERE run_id = $run_id
),
nights AS (
    SELECT r.run_id, r.started_at, r.verdict
    FROM runs AS r, this_run AS t
    WHERE r.baseline_key = t.baseline_key
      AND r.verdict IS NOT NULL
      AND r.started_at <= t.started_at
    ORDER BY r.started_at DESC
    LIMIT $nights
),
judged AS (
    SELECT e.*
    FROM expectation_results AS e
    JOIN nights USING (run_id)
    WHERE e.expectation <> 'sufficient_samples' AND e.success IS NOT NULL
),
tonight AS (
    SELECT DISTINCT "check", bucket, expectation FROM judged WHERE run_id = $run_id
)
SELECT n.started_at, n.run_id, n.verdict,
       j."check", j.bucket, j.expectation, j.bound, j.observed, j.threshold, j.success
FROM judged AS j
JOIN nights AS n USING (run_id)
SEMI JOIN tonight AS t
    ON t."check" = j."check" AND t.bucket IS NOT DISTINCT FROM j.bucket
   AND t.expectation = j.expectation
ORDER BY j."check", j.bucket, j.expectation, n.started_at;
