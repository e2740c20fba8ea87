"""The pinning router's rule: pinned requests land on their replica, others go P2C."""

import random

from serving.routing import choose

IDS = ["a1", "b2", "c3", "d4"]


def test_a_pinned_request_goes_only_to_its_replica():
    assert choose(IDS, IDS, "c3", random.Random(0)) == [["c3"]]


def test_an_unknown_pin_falls_back_to_normal_routing():
    groups = choose(IDS, IDS, "gone", random.Random(0))
    assert len(groups) == 1 and len(groups[0]) == 2
    assert set(groups[0]) <= set(IDS)


def test_without_a_pin_two_distinct_random_candidates_are_offered():
    rng = random.Random(1)
    seen = set()
    for _ in range(200):
        [pair] = choose(IDS, IDS, None, rng)
        assert len(set(pair)) == 2
        seen.update(pair)
    assert seen == set(IDS)  # every replica gets its turn


def test_two_or_fewer_replicas_are_all_candidates():
    assert choose(["a", "b"], ["a", "b"], None, random.Random(0)) == [["a", "b"]]
    assert choose([], [], "a", random.Random(0)) == []


def test_candidates_and_ids_are_paired_by_position():
    replicas = [object(), object()]
    assert choose(replicas, ["x", "y"], "y", random.Random(0)) == [[replicas[1]]]
