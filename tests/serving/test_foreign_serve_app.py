"""Another team's Serve application on the cluster we deploy to keeps serving.

The cluster is the other team's (``other_cluster``: a Ray head this project did not
start, with their ``team-b`` app at ``/team-b``). Our embedded app is brought up on it
with ``stack up``, re-applied, reconfigured in place, deleted with ``stack down``,
brought up again and deleted by the flow's ``teardown=True`` step — the real CLI
against the real dashboard. Through all of it ``team-b`` answers every probe with 200
from the same replica, its deployed config is what the team deployed, and every
process of their cluster still runs. (The fake-dashboard twin of this test is
tests/serving/test_stack_ownership.py; the last test of test_stack_integration.py
checks their cluster outlives the ``stack down`` of our own head.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from cluster_eval.settings import PROJECT_ROOT, Settings
from flows import pipeline
from tests.serving.other_cluster import APP, OtherTeamCluster

pytestmark = pytest.mark.stack

CLI = Path(sys.executable).parent / "cluster-eval"
EMBEDDED = PROJECT_ROOT / "serving" / "configs" / "embedded-cpu.yaml"


def one_replica_config(path: Path, config_version: str) -> Path:
    """The embedded config at one replica, not pinned to a core (the embedded stack's
    replicas may hold both cores' claims while this runs)."""
    config = yaml.safe_load(EMBEDDED.read_text())
    app = config["applications"][0]
    app["args"]["pin_cores"] = False
    deployment = app["deployments"][0]
    del deployment["autoscaling_config"]
    deployment["num_replicas"] = 1
    deployment["user_config"]["config_version"] = config_version
    path.write_text(yaml.safe_dump(config))
    return path


class Prober:
    """Asks ``team-b`` for an answer every 0.2 s in a thread; keeps every outcome."""

    def __init__(self, cluster: OtherTeamCluster) -> None:
        self.cluster, self.outcomes = cluster, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = self.cluster.answer(client)
                    self.outcomes.append((response.status_code, response.text))
                except httpx.HTTPError as exc:
                    self.outcomes.append((None, type(exc).__name__))
                self.stop.wait(0.2)

    def __enter__(self) -> Prober:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def cluster_eval(env: dict[str, str], *args: str) -> str:
    """Run the CLI; return its stderr (where the stack commands report)."""
    done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"cluster-eval {' '.join(args)}: {done.stderr[-3000:]}"
    return done.stderr


def test_another_teams_app_keeps_serving_through_up_reconfigure_down_and_teardown(
        other_cluster, tmp_path):
    (replica_id, state, replica_pid), = other_cluster.replicas()
    assert state == "RUNNING"
    first = other_cluster.answer()
    assert first.status_code == 200 and first.text == f"team-b ranker v1 from {replica_id}"
    deployed = other_cluster.deployed_config()
    theirs = other_cluster.processes(idle_workers=False)
    v1 = one_replica_config(tmp_path / "ours-v1.yaml", "foreign-v1")
    v2 = one_replica_config(tmp_path / "ours-v2.yaml", "foreign-v2")
    home = tmp_path / "home"  # where our CLI records the apps it deployed there
    env = {**os.environ, "CLUSTER_EVAL_HOME": str(home),
           "CLUSTER_EVAL_DASHBOARD_URL": other_cluster.dashboard_url,
           "CLUSTER_EVAL_SERVE_URL": other_cluster.serve_url}

    with Prober(other_cluster) as prober:
        assert "deployed;" in cluster_eval(env, "stack", "up", "--config", str(v1),
                                           "--address", other_cluster.dashboard_url)
        ours = httpx.get(other_cluster.serve_url + "/v1/models", timeout=30)
        assert ours.status_code == 200  # ours is served beside theirs, at "/"
        assert "unchanged;" in cluster_eval(env, "stack", "up", "--config", str(v1))
        assert "reconfigured;" in cluster_eval(env, "stack", "reconfigure", "--config", str(v2))
        down = cluster_eval(env, "stack", "down")
        assert "applications deleted: llm;" in down and "Ray left as it is" in down

        assert "deployed;" in cluster_eval(env, "stack", "up", "--config", str(v1))
        # the flow's teardown=True step (flows/cluster_eval.py → pipeline.teardown)
        pipeline.teardown(Settings(home=home, dashboard_url=other_cluster.dashboard_url,
                                   serve_url=other_cluster.serve_url))
        assert set(other_cluster.serve_status().applications) == {APP}

    assert len(prober.outcomes) > 50
    failed = [o for o in prober.outcomes if o != (200, first.text)]
    assert failed == [], f"team-b did not answer as before {len(failed)} times: {failed[:5]}"
    assert other_cluster.replicas() == [(replica_id, "RUNNING", replica_pid)]  # not redeployed
    assert other_cluster.deployed_config() == deployed
    gone = theirs - other_cluster.processes()
    assert gone == set(), f"processes of the other team's cluster stopped: {gone}"
