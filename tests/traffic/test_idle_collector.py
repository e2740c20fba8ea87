"""The replay collects garbage in the schedule's gaps, never while a request is due."""

from __future__ import annotations

import gc
import weakref

from traffic.replay import _IdleCollector


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_automatic_collection_is_off_while_sending_and_restored_after() -> None:
    assert gc.isenabled()
    with _IdleCollector(enabled=True):
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_disabled_collector_leaves_the_gc_alone() -> None:
    with _IdleCollector(enabled=False) as collector:
        assert gc.isenabled()
        assert not collector.pick(idle_s=1.0)


def test_a_pass_runs_only_when_due_and_it_fits_in_the_wait() -> None:
    with _IdleCollector(enabled=True, young=100, overdue=10_000_000) as collector:
        collector.per_object_s = 1e-6
        collector.collect()  # start from an empty young generation
        assert not collector.pick(idle_s=1.0), "nothing pending yet"
        keep = [[] for _ in range(500)]  # 500 tracked objects pending
        assert not collector.pick(idle_s=0.0001), "500 objects at 1 us do not fit in 0.1 ms"
        assert collector.pick(idle_s=0.01)
        del keep


def test_an_overdue_pass_runs_even_without_idle_time() -> None:
    with _IdleCollector(enabled=True, young=100, overdue=300) as collector:
        collector.collect()
        keep = [[] for _ in range(400)]
        assert collector.pick(idle_s=0.0)
        del keep


def test_a_pass_reclaims_cycles_and_freezes_the_survivors() -> None:
    with _IdleCollector(enabled=True) as collector:
        survivors = [[] for _ in range(50)]
        garbage = Cycle()
        gone = weakref.ref(garbage)
        del garbage
        assert gone() is not None, "a cycle waits for a pass"
        frozen_before = gc.get_freeze_count()
        collector.collect()
        assert gc.get_freeze_count() >= frozen_before + len(survivors)
        assert gc.get_count()[0] == 0
        assert gone() is None
        assert collector.per_object_s > 0
