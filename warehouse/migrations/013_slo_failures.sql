-- 013: what the night's failures were, beside their share. An error share alone does
-- not say whether the cluster refused (5xx), broke (protocol, connection) or was too
-- slow (timeouts), nor whether the failures came while a replica was still starting:
-- a healthy make demo once failed 17 % of its requests, all timeouts, all while the
-- autoscaler's replacement replica was loading its model (docs/checks.md, "Absolute SLOs").
ALTER TABLE check_slo ADD COLUMN timeouts BIGINT;               -- requests that hit the client timeout
ALTER TABLE check_slo ADD COLUMN errors BIGINT;                 -- every other failure (HTTP, connection, protocol)
ALTER TABLE check_slo ADD COLUMN failed_while_starting BIGINT;  -- failures in flight while a replica was starting
