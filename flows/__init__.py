"""The Prefect flow ``cluster-eval``, its hooks and the plain steps it wires."""
