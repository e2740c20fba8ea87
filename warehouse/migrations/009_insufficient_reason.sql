-- Why a row was not judged, in the row itself. A check whose rows need more than the
-- run-wide min_samples (history: a p99 needs min_samples_p99 spans, and every value
-- needs two baseline nights with enough spans) says what it needed and which side
-- fell short, so the gate's "insufficient" line tells the truth instead of comparing
-- n with min_samples. The gate reads both columns from any check table that has them.
ALTER TABLE check_history ADD COLUMN required_n BIGINT;          -- samples a value needs
ALTER TABLE check_history ADD COLUMN insufficient_reason VARCHAR; -- null when judged
