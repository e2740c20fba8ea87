-- One verdict per check for one run, read from the gate's expectation rows.
--   fail:  some judged expectation failed; the one furthest past its threshold speaks
--   pass:  judged expectations exist and all held; the closest call speaks
-- A check with no judged row (every bucket below min_samples) is absent here: the
-- runner reports it as 'insufficient'.
WITH judged AS (
    SELECT "check", bucket, expectation AS metric, observed, threshold, success,
           -- distance inside (positive) or past (negative) the threshold
           CASE WHEN bound = 'max'
                  -- rows written before the gate recorded its bounds: the rule's own
                  -- bound, from the checks' specs ($upper_bounds, scenarios/runner.py)
                  OR bound IS NULL AND list_contains($upper_bounds::VARCHAR[],
                                                     "check" || '/' || expectation)
                THEN threshold - observed
                WHEN "check" = 'replica_skew' THEN abs(threshold) - abs(observed)
                ELSE observed - threshold END AS margin
    FROM expectation_results
    WHERE run_id = $run_id
      AND expectation <> 'sufficient_samples'
      AND success IS NOT NULL
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY "check" ORDER BY success, margin) AS rank
    FROM judged
)
SELECT "check",
       CASE WHEN success THEN 'pass' ELSE 'fail' END AS status,
       bucket, metric, observed, threshold
FROM ranked
WHERE rank = 1
ORDER BY "check"
