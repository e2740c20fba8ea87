-- measurement: can this night's numbers be trusted at all?
-- A breach here makes the run INVALID, not FAIL: the cluster was not shown to be
-- broken, the measurement was. Rows:
--   spans:<mode>  planned requests of each mode (runs.plan, written by the flow)
--                 against spans recorded: a lost span is a request nobody judged
--   schedule_lag  p99 of sent_at - intended_at over the timed modes: a replay that
--                 fell behind its schedule sent a gentler load than production's
--                 (a bounded lag also bounds the achieved rate to the planned one)
--   telemetry     share of the replay's $telemetry_bin_s-second bins with no
--                 telemetry sample: spans sent in a gap are bucketed on stale facts
--   replica_ids   share of the pinned golden requests that succeeded whose replica
--                 said who it was; with golden rounds asked for and no replica id
--                 known at all, the golden set was never pinned (0, judged)
--   host_cpu      share of the host's CPU that other work took while the replay ran
--                 (runs.plan -> 'host', serving/host_cpu.py): on a host the cluster
--                 shares, a neighbour starves its engines and its failures are not
--                 the cluster's. Only when the cluster runs on the flow's host.
-- A run loaded without a plan (a hand-loaded run) gets the rows it can: no spans:*.
WITH plan AS (
    SELECT plan FROM runs WHERE run_id = $run_id
),
planned AS (
    SELECT key AS mode, value::BIGINT AS planned
    FROM plan, json_each(plan -> 'planned')
),
recorded AS (
    SELECT mode, count(*) AS recorded FROM spans WHERE run_id = $run_id GROUP BY mode
),
span_rows AS (
    SELECT 'spans:' || p.mode                                          AS bucket,
           p.planned                                                   AS n,
           false                                                       AS insufficient,
           CASE WHEN p.planned > 0
                THEN greatest(p.planned - coalesce(r.recorded, 0), 0) / p.planned
                ELSE 0.0 END                                           AS missing_share,
           coalesce(r.recorded, 0) || ' of ' || p.planned || ' planned requests recorded'
                                                                       AS detail
    FROM planned AS p
    LEFT JOIN recorded AS r USING (mode)
),
timed AS (
    SELECT * FROM span_quality WHERE mode IN ('replay', 'pinned', 'tenant_burst')
),
lag_row AS (
    SELECT 'schedule_lag'                                          AS bucket,
           count(*)                                                AS n,
           count(*) = 0                                            AS insufficient,
           quantile_cont(epoch(sent_at) * 1000 - epoch(intended_at) * 1000, 0.99)
                                                                   AS lag_p99_ms
    FROM timed
),
window_bins AS (
    SELECT range AS bin
    FROM (SELECT floor(min(epoch(sent_at)) / $telemetry_bin_s) AS first_bin,
                 floor(max(epoch(sent_at)) / $telemetry_bin_s) AS last_bin
          FROM timed),
         range(first_bin::BIGINT, last_bin::BIGINT + 1)
),
sampled_bins AS (
    SELECT DISTINCT floor(epoch(sampled_at) / $telemetry_bin_s)::BIGINT AS bin
    FROM telemetry
    WHERE run_id = $run_id
),
telemetry_row AS (
    SELECT 'telemetry'                                             AS bucket,
           count(*)                                                AS n,
           count(*) = 0                                            AS insufficient,
           avg(CASE WHEN s.bin IS NULL THEN 1.0 ELSE 0.0 END)      AS gap_share,
           count(*) FILTER (WHERE s.bin IS NULL) || ' of ' || count(*)
             || ' bins of ' || $telemetry_bin_s || ' s without a sample' AS detail
    FROM window_bins AS w
    LEFT JOIN sampled_bins AS s USING (bin)
),
pinned_ok AS (
    SELECT count(*) AS n, count(replica_id) AS identified
    FROM spans
    WHERE run_id = $run_id AND mode = 'pinned' AND status = 'ok'
),
replica_row AS (
    SELECT 'replica_ids' AS bucket,
           CASE WHEN pinned_never_sent THEN 0 ELSE p.n END AS n,
           NOT pinned_never_sent AND p.n = 0              AS insufficient,
           CASE WHEN pinned_never_sent THEN 0.0
                WHEN p.n > 0 THEN p.identified / p.n END   AS identified_share,
           CASE WHEN pinned_never_sent
                THEN 'golden rounds were asked for but the endpoint named no replica'
                ELSE p.identified || ' of ' || p.n || ' pinned requests named their replica'
           END                                            AS detail
    FROM pinned_ok AS p,
         (SELECT coalesce((plan ->> 'golden_rounds')::INT > 0
                          AND (plan ->> 'replicas')::INT = 0, false) AS pinned_never_sent
          FROM plan RIGHT JOIN (SELECT 1) ON true)
),
host_row AS (
    SELECT 'host_cpu'                                             AS bucket,
           1                                                      AS n,
           false                                                  AS insufficient,
           (plan -> 'host' ->> 'foreign_share')::DOUBLE           AS foreign_cpu_share,
           printf('other processes took %d%% of the host''s %s CPUs while the replay ran '
                  || '(%d s; the cluster and cluster-eval %d%%)',
                  round(100 * (plan -> 'host' ->> 'foreign_share')::DOUBLE)::INT,
                  plan -> 'host' ->> 'cpus',
                  round((plan -> 'host' ->> 'window_s')::DOUBLE)::INT,
                  round(100 * (plan -> 'host' ->> 'ours_share')::DOUBLE)::INT) AS detail
    FROM plan
    WHERE (plan -> 'host') IS NOT NULL
)
SELECT $run_id AS run_id, 'spans' AS item, * FROM span_rows
UNION ALL BY NAME SELECT $run_id AS run_id, bucket AS item, * FROM lag_row
UNION ALL BY NAME SELECT $run_id AS run_id, bucket AS item, * FROM telemetry_row
UNION ALL BY NAME SELECT $run_id AS run_id, bucket AS item, * FROM replica_row
UNION ALL BY NAME SELECT $run_id AS run_id, bucket AS item, * FROM host_row;
