-- The night's median latency and TTFT, beside its p99s. History compares the median
-- latency night to night: a p99 over ~170 spans is the second-slowest request, and on
-- six healthy 2-core nights the run's p99 latency moved 20.8-51.8 s while its median
-- stayed a stable middle (docs/checks.md, "History"). The median TTFT is recorded,
-- not compared: on a CPU host it is a queue position.
ALTER TABLE check_slo ADD COLUMN p50_ttft_ms DOUBLE;
ALTER TABLE check_slo ADD COLUMN p50_latency_ms DOUBLE;
