-- 008: a verdict a team can trust — PASS, FAIL or INVALID — judged three ways beyond
-- the five within-night checks (docs/checks.md, "The verdict"):
--   check_slo          absolute service levels of the night (errors, p99s, goodput,
--                      the golden set's quality floor)
--   check_history      tonight against the accepted baseline: the last N passing
--                      nights of the same baseline key
--   check_measurement  whether the night's measurement can be trusted at all
--                      (a breach here makes the run INVALID, not FAIL)

-- What the flow planned to send and knew of the cluster, to compare with what it
-- recorded; the verdict; the key that says which nights are comparable.
ALTER TABLE runs ADD COLUMN plan JSON;          -- planned requests per mode, golden rounds, replicas known
ALTER TABLE runs ADD COLUMN verdict VARCHAR;    -- 'PASS' | 'FAIL' | 'INVALID'; null: never reached the gate
ALTER TABLE runs ADD COLUMN baseline_key VARCHAR;  -- nights with the same key are compared

CREATE TABLE check_slo (
    run_id VARCHAR NOT NULL,
    bucket VARCHAR NOT NULL,     -- 'run', 'golden' or 'tenant:<id>'
    scope VARCHAR,               -- 'run', 'golden' or 'tenant'
    n BIGINT, insufficient BOOLEAN,
    error_share DOUBLE,          -- errors + timeouts / requests
    p99_ttft_ms DOUBLE, p99_latency_ms DOUBLE,
    goodput DOUBLE,              -- share of requests ok within both per-request latency SLOs
    mean_quality DOUBLE, sd_quality DOUBLE
);

CREATE TABLE check_history (
    run_id VARCHAR NOT NULL,
    bucket VARCHAR NOT NULL,     -- '<check>/<bucket>' of a check table, or 'golden'
    metric VARCHAR NOT NULL,     -- mean_quality, error_rate, p99_latency_ms, p99_ttft_ms, agreement, paired_drop
    n BIGINT, insufficient BOOLEAN,
    worse_when VARCHAR,          -- 'higher' or 'lower'
    observed DOUBLE,             -- tonight
    baseline_nights BIGINT,      -- baseline nights with a sufficient value
    baseline_median DOUBLE,
    baseline_worst DOUBLE,       -- the worst baseline night's value
    margin DOUBLE,               -- how far past the worst night is still noise
    excess DOUBLE                -- how far past worst + margin tonight is (> 0: breach)
);

CREATE TABLE check_measurement (
    run_id VARCHAR NOT NULL,
    bucket VARCHAR NOT NULL,     -- what was measured: spans:<mode>, schedule_lag, telemetry, replica_ids
    item VARCHAR,                -- the bucket without its mode: spans, schedule_lag, telemetry, replica_ids
    n BIGINT, insufficient BOOLEAN,
    missing_share DOUBLE,        -- spans: planned requests without a span
    lag_p99_ms DOUBLE,           -- schedule_lag: p99 of sent - intended
    gap_share DOUBLE,            -- telemetry: seconds of the replay with no sample
    identified_share DOUBLE,     -- replica_ids: pinned spans whose replica answered with its id
    detail VARCHAR
);

-- Accepting a new normal (a new model) or starting the baseline over, with why.
CREATE TABLE baseline_events (
    baseline_key VARCHAR NOT NULL,
    action       VARCHAR NOT NULL,   -- 'accept' (from run_id on) or 'reset' (from now on)
    run_id       VARCHAR,
    happened_at  TIMESTAMPTZ NOT NULL,
    reason       VARCHAR NOT NULL
);

-- Which side of its threshold an expectation is judged on: 'max' (an upper bound)
-- or 'min'. Readers no longer guess it from metric names.
ALTER TABLE expectation_results ADD COLUMN bound VARCHAR;

-- The gate trend counted insufficient-sample rows as breaches: only metric rules are.
CREATE OR REPLACE VIEW v_gate_trend AS
SELECT r.started_at, r.verdict, e.run_id, e."check",
       count(*) FILTER (WHERE e.success = false AND e.expectation <> 'sufficient_samples')
                                                                    AS breaches,
       count(*) FILTER (WHERE e.success = false AND e.expectation = 'sufficient_samples')
                                                                    AS insufficient,
       list(DISTINCT e.bucket) FILTER (WHERE e.success = false
                                         AND e.expectation <> 'sufficient_samples')
                                                                    AS breached_buckets
FROM expectation_results AS e
JOIN runs AS r USING (run_id)
GROUP BY ALL;
