-- 011: the measurement check says when the night was not the cluster's own. On a host
-- the cluster shares (the embedded stack), CPU taken by other work starves its engines:
-- the 'host_cpu' row carries the share of the host's CPU that went to processes that
-- were neither the cluster nor cluster-eval while the replay ran (serving/host_cpu.py).
ALTER TABLE check_measurement ADD COLUMN foreign_cpu_share DOUBLE;
