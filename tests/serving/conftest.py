"""Fixtures of the serving tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster_eval.settings import Settings
from tests.serving.other_cluster import OtherTeamCluster, other_team_cluster


@pytest.fixture(scope="session")
def other_cluster() -> Iterator[OtherTeamCluster]:
    """Another team's Ray head and Serve app on this host (tests/serving/other_cluster.py).

    One per session: the foreign-application test deploys our app beside theirs, and
    the last test checks it outlived our ``stack down``; it is stopped after both."""
    with other_team_cluster(Settings()) as cluster:
        yield cluster
