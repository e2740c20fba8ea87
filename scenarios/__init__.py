"""Fault-injection scenarios that prove each cluster check catches its failure mode.

A scenario is a serve-config overlay plus a workload the nightly flow runs; the
runner records, per scenario run, which of the five checks passed, failed or had too
few samples (``scenario_results``), and renders the scenario × check matrix.
"""
