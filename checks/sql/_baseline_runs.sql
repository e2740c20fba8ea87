-- The accepted baseline of a run ($run_id; or, with no run, of the next night to come,
-- at $now): the last $nights nights before it with the same
-- baseline key that passed, counted from the key's latest baseline event:
--   reset          nights after the reset only (a new normal is being established)
--   accept RUN     RUN and the nights after it; RUN counts even if it did not pass
--                  (a team accepting a new model's first night as the new normal)
-- Nights that failed or were invalid never join it: a bad night must not become
-- the normal a later bad night is compared with.
WITH this_run AS (
    SELECT coalesce((SELECT started_at FROM runs WHERE run_id = $run_id),
                    $now::TIMESTAMPTZ) AS started_at
),
last_event AS (
    SELECT e.action, e.run_id, e.happened_at, r.started_at AS accepted_started_at
    FROM baseline_events AS e
    LEFT JOIN runs AS r USING (run_id)
    WHERE e.baseline_key = $baseline_key
    ORDER BY e.happened_at DESC
    LIMIT 1
)
SELECT r.run_id
FROM runs AS r
CROSS JOIN this_run AS t
LEFT JOIN last_event AS e ON true
WHERE r.baseline_key = $baseline_key
  AND r.run_id IS DISTINCT FROM $run_id
  AND r.started_at < t.started_at
  AND (e.action IS NULL
       OR (e.action = 'reset' AND r.started_at > e.happened_at)
       OR (e.action = 'accept' AND r.started_at >= e.accepted_started_at))
  AND (r.verdict = 'PASS' OR (e.action = 'accept' AND r.run_id = e.run_id))
ORDER BY r.started_at DESC
LIMIT $nights
