"""The host's CPU during a replay: other work is measured, our own work is not.

Real processes on this host: a busy loop started outside "ours" is foreign CPU, the
same loop counted as ours is not. Shares are of the whole host (seconds × CPUs), so a
busy loop on one core of two is about 0.5.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cluster_eval.settings import Settings
from flows.pipeline import host_cpu_watch
from serving.host_cpu import CpuSnapshot, host_cpu, own_tree, snapshot

BUSY = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


@pytest.fixture
def busy_loop():
    """A process spinning on one core. It is this test's child, so each test says
    whether it counts as ours: a real neighbour descends from nothing of ours."""
    process = subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True)
    time.sleep(0.3)  # let it start spinning
    yield process
    process.kill()
    process.wait()


def window(ours, seconds: float = 1.5):
    before = snapshot(ours)
    time.sleep(seconds)
    return host_cpu(before, snapshot(ours))


def test_a_busy_neighbour_is_foreign_cpu(busy_loop):
    measured = window(own_tree() - {busy_loop.pid})
    cpus = measured.cpus
    assert measured.foreign_share > 0.6 / cpus  # one core of `cpus`, minus noise
    assert measured.busy_share >= measured.foreign_share


def test_the_same_loop_counted_as_ours_is_not_foreign(busy_loop):
    measured = window(own_tree() | {busy_loop.pid})
    assert measured.ours_share > 0.6 / measured.cpus
    assert measured.foreign_share < 0.25 / measured.cpus


def test_a_child_that_ends_inside_the_window_stays_ours():
    """A replay worker that finishes is reaped by its parent: its time moves to the
    parent's children's time, so it is not counted as a neighbour's."""
    before = snapshot(own_tree())
    child = subprocess.run([sys.executable, "-c", BUSY.replace("30", "1")], check=True)
    assert child.returncode == 0
    measured = host_cpu(before, snapshot(own_tree()))
    ours_cpu_s = measured.ours_share * measured.window_s * measured.cpus
    assert ours_cpu_s > 0.7  # the child's second of spinning
    assert measured.foreign_share < 0.25 / measured.cpus


def test_own_tree_holds_this_process_and_its_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        import os

        tree = own_tree()
        assert os.getpid() in tree and child.pid in tree
    finally:
        child.kill()
        child.wait()


def test_an_empty_window_has_no_shares():
    at = CpuSnapshot(at=1.0, host_busy_s=10.0, cpus=2, ours_s={})
    assert host_cpu(at, at) is None


def test_no_head_recorded_here_means_no_host_measurement(tmp_path):
    """A remote cluster: the host's load can only delay sends (schedule_lag judges it)."""
    stop = host_cpu_watch(Settings(home=tmp_path))
    assert stop() is None
