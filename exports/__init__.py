"""Exports of a judged run to where a team already looks: OTLP spans, Prometheus metrics."""
