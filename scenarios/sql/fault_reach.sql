-- How many of a run's spans a fault kind answered.
-- A replica that resolved a fault labels each response '<config_version>+fault:<kind>'
-- (one '+fault:' part per active kind, serving/faults.py), so a kind that appears in no
-- span's label reached no replica: the run did not exercise it.
SELECT count(*) AS spans_with_fault
FROM spans
WHERE run_id = $run_id
  AND list_contains(string_split(config_version, '+'), 'fault:' || $kind)
