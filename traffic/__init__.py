"""Captured traffic: its format, loading, workload builders, replay and capture."""
