"""What the command line sets in its own environment before any command runs."""

from __future__ import annotations

from cluster_eval.cli import no_usage_reports


def test_prefect_usage_reports_are_off_unless_the_user_set_them():
    environ = {"DO_NOT_TRACK": "0"}
    no_usage_reports(environ)
    assert environ == {"DO_NOT_TRACK": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
