"""Faults from user_config: validated, targeted by rank or id, applied to requests."""

import random

import pytest
from pydantic import ValidationError

from serving.faults import ReplicaFaults, apply_sampling_defaults
from serving.user_config import UserConfig

DRIFT_RANK_1 = {
    "config_version": "v7",
    "faults": [{"kind": "drift", "replica_rank": 1, "max_tokens": 3, "system_prompt": "French."}],
}


def test_faults_are_off_by_default():
    config = UserConfig.parse(None)
    faults = ReplicaFaults.resolve(config, rank=0, replica_id="r0")
    assert faults.kinds == [] and faults.version_label(config.config_version) == "0"


def test_a_drift_fault_targets_only_its_rank_and_shows_in_the_version():
    config = UserConfig.parse(DRIFT_RANK_1)
    assert ReplicaFaults.resolve(config, rank=0, replica_id="r0").version_label("v7") == "v7"
    drifted = ReplicaFaults.resolve(config, rank=1, replica_id="r1")
    assert drifted.version_label("v7") == "v7+fault:drift"


def test_drift_rewrites_system_prompt_and_truncates_max_tokens():
    drifted = ReplicaFaults.resolve(UserConfig.parse(DRIFT_RANK_1), rank=1, replica_id="r1")
    body = {"messages": [{"role": "system", "content": "Be exact."},
                         {"role": "user", "content": "hi"}], "max_tokens": 64}
    rewritten = drifted.rewrite(body)
    assert rewritten["max_tokens"] == 3
    assert rewritten["messages"] == [{"role": "system", "content": "French."},
                                     {"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 64  # the caller's request is not mutated


def test_faults_can_target_a_replica_by_id():
    config = UserConfig.parse(
        {"faults": [{"kind": "latency", "replica_id": "abc", "latency_s": 2}]}
    )
    assert ReplicaFaults.resolve(config, rank=0, replica_id="abc").latency_s() == 2
    assert ReplicaFaults.resolve(config, rank=0, replica_id="xyz").latency_s() == 0


def test_an_error_fault_fails_about_its_rate():
    config = UserConfig.parse(
        {"faults": [{"kind": "error", "all_replicas": True, "error_rate": 0.3}]}
    )
    faults = ReplicaFaults.resolve(config, rank=None, replica_id="r")
    rng = random.Random(42)
    failures = sum(faults.should_fail(rng) for _ in range(2000))
    assert 500 < failures < 700


@pytest.mark.parametrize(
    "fault, message",
    [
        ({"kind": "drift", "replica_rank": 0}, "needs temperature"),
        ({"kind": "error", "replica_rank": 0}, "error_rate"),
        ({"kind": "latency", "replica_rank": 0, "replica_id": "x", "latency_s": 1}, "exactly one"),
        ({"kind": "melt", "replica_rank": 0}, "drift"),
        ({"kind": "priority", "all_replicas": True, "priority": 5}, "needs a tenant"),
        ({"kind": "priority", "all_replicas": True, "tenant": "t"}, "needs a tenant"),
    ],
)
def test_malformed_faults_are_rejected_with_the_reason(fault, message):
    with pytest.raises(ValidationError, match=message):
        UserConfig.parse({"faults": [fault]})


def test_sampling_defaults_fill_only_unset_fields():
    config = UserConfig.parse({"sampling_defaults": {"temperature": 0.0, "max_tokens": 50}})
    assert apply_sampling_defaults({"temperature": 0.7}, config) == {
        "temperature": 0.7, "max_tokens": 50}
    assert apply_sampling_defaults({"max_completion_tokens": 9}, config) == {
        "max_completion_tokens": 9, "temperature": 0.0}
