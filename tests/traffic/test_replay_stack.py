"""Pinned mode on the real stack: every golden request reaches every replica it names."""

from __future__ import annotations

import polars as pl
import pytest

from cluster_eval.settings import PROJECT_ROOT
from serving import stack as stack_control
from traffic.loader import load_traffic
from traffic.replay import ReplayPlan, run_replay
from traffic.schedule import build_pinned
from traffic.transport import ClientSpec

pytestmark = pytest.mark.stack


def test_pinned_mode_hits_every_replica_of_the_real_stack(stack, tmp_path):
    replicas = stack_control.status(stack.settings).running_replica_ids
    assert len(replicas) == 2
    golden = load_traffic(PROJECT_ROOT / "traffic" / "golden" / "golden.jsonl").records
    plan = ReplayPlan(requests=build_pinned(golden, replicas), timeout_s=120)
    result = run_replay(plan, tmp_path, ClientSpec(stack.base_url))
    spans = pl.read_parquet(result.spans_path)
    assert spans.height == len(golden) * len(replicas)
    assert spans["status"].to_list() == ["ok"] * spans.height
    assert (spans["replica_id"] == spans["pinned_replica"]).all()
    per_replica = spans.group_by("replica_id").len().sort("replica_id")
    assert per_replica.to_dicts() == [
        {"replica_id": r, "len": len(golden)} for r in sorted(replicas)]
    # every span carries the cluster's view of the request
    assert spans["replica_queue_depth"].null_count() == 0
    assert spans["prompt_tokens"].null_count() == 0
