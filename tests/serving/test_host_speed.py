"""The host's memory speed around a replay: what history compares latency by.

Real probes on this host; no assertion on how fast it is, only on what is recorded.
"""

from __future__ import annotations

import time

import pytest

from cluster_eval.settings import Settings
from flows.pipeline import host_speed_watch
from serving.host_speed import HostSpeed, HostSpeedProbe, measure, summarise


def test_a_probe_times_one_copy_of_its_buffer():
    probe = HostSpeedProbe(megabytes=4)
    times = [probe.probe() for _ in range(3)]
    assert all(t > 0 for t in times)


def test_probing_lasts_about_as_long_as_asked_and_probes_at_least_once():
    started = time.monotonic()
    times = HostSpeedProbe(megabytes=1).measure(seconds=0.5, interval_s=0.1)
    assert 0.3 < time.monotonic() - started < 3.0
    assert 3 <= len(times) <= 6
    assert len(measure(seconds=0.0)) == 1


def test_the_nights_figure_is_the_median_of_both_ends():
    speed = summarise([5.0, 6.0, 30.0], [7.0, 8.0])
    assert speed == HostSpeed(probe_ms=7.0, before_ms=6.0, after_ms=7.5, samples=5)


def test_no_head_recorded_here_means_no_probe(tmp_path):
    """A remote cluster: the flow's host is not the one that computes."""
    stop = host_speed_watch(Settings(home=tmp_path))
    assert stop() is None


def test_the_watch_probes_before_and_after_a_local_head(tmp_path, monkeypatch):
    from serving import host_speed, stack

    monkeypatch.setattr(stack, "local_head_pids", lambda settings: {1})
    calls = []
    real = host_speed.measure

    def measured(seconds=0.3, interval_s=0.1):
        calls.append(time.monotonic())
        return real(seconds, interval_s)

    monkeypatch.setattr(host_speed, "measure", measured)
    stop = host_speed_watch(Settings(home=tmp_path))
    assert len(calls) == 1  # before the replay
    speed = stop()
    assert len(calls) == 2 and isinstance(speed, HostSpeed) and speed.samples >= 2


@pytest.mark.parametrize("error", [MemoryError(), OSError("no /proc")])
def test_a_probe_that_cannot_run_leaves_the_night_without_the_figure(tmp_path, monkeypatch,
                                                                      error):
    from serving import host_speed, stack

    monkeypatch.setattr(stack, "local_head_pids", lambda settings: {1})

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(host_speed, "measure", fails)
    assert host_speed_watch(Settings(home=tmp_path))() is None
