-- replica_skew's assignment: pinned traffic, one bucket per replica. A failed request
-- to a pinned replica is charged to the pin (span_quality's replica_id). Spans of
-- other modes are in no bucket of this check.
CREATE OR REPLACE TEMP TABLE replica_skew_buckets AS
SELECT span_id, replica_id AS bucket
FROM span_quality
WHERE mode = 'pinned' AND replica_id IS NOT NULL;
