-- 004: scenario results say what was expected and where the verdict came from.
-- One row per (scenario run, check): the fault-injection matrix is a GROUP BY away.
ALTER TABLE scenario_results ADD COLUMN repetition INTEGER;
ALTER TABLE scenario_results ADD COLUMN expected VARCHAR;    -- 'fail' for the check the fault targets, 'insufficient' for one it gives no traffic, else 'pass'
ALTER TABLE scenario_results ADD COLUMN bucket VARCHAR;      -- the bucket behind the verdict
ALTER TABLE scenario_results ADD COLUMN metric VARCHAR;      -- the expectation behind the verdict
ALTER TABLE scenario_results ADD COLUMN threshold DOUBLE;
ALTER TABLE scenario_results ADD COLUMN recorded_at TIMESTAMPTZ;
