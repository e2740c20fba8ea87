"""scripts/stop-all.sh signals a recorded pid only while it is still the recorded process.

The script runs from a copy in a temporary project directory (it finds its state
directory next to itself), with ``--keep-stack`` and no virtualenv, so it can only
ever touch the processes these tests start.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster_eval.settings import PROJECT_ROOT

SCRIPTS = PROJECT_ROOT / "scripts"


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPTS / "stop-all.sh", tmp_path / "scripts" / "stop-all.sh")
    (tmp_path / ".cluster-eval" / "pids").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def spawn() -> Iterator:
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *args])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])


def _stop_all(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(project / "scripts" / "stop-all.sh"), "--keep-stack"],
        env={"PATH": "/usr/bin:/bin", "CLUSTER_EVAL_VENV": str(project / "no-venv")},
        capture_output=True, text=True, timeout=60,
    )


def _pid_file(project: Path, name: str, text: str) -> Path:
    path = project / ".cluster-eval" / "pids" / f"{name}.pid"
    path.write_text(text)
    return path


def test_an_old_pid_file_naming_an_unrelated_process_kills_nothing(project, spawn):
    stranger = spawn()  # the worker died long ago and its pid went to this process
    pid_file = _pid_file(project, "prefect-worker", f"{stranger.pid}\n")
    result = _stop_all(project)
    assert result.returncode == 0, result.stderr
    assert stranger.poll() is None
    assert not pid_file.exists() and "no longer prefect-worker" in result.stdout


def test_a_reused_pid_with_the_expected_command_but_another_start_is_not_killed(
        project, spawn):
    lookalike = spawn("prefect", "server", "start")
    _pid_file(project, "prefect-server",
              f"{lookalike.pid} {_start_ticks(lookalike.pid) - 1}\n")
    result = _stop_all(project)
    assert result.returncode == 0, result.stderr
    assert lookalike.poll() is None


def test_the_recorded_process_is_stopped(project, spawn):
    worker = spawn("prefect", "worker", "start")
    pid_file = _pid_file(project, "prefect-worker", f"{worker.pid} {_start_ticks(worker.pid)}\n")
    result = _stop_all(project)
    assert result.returncode == 0, result.stderr
    assert worker.wait(timeout=10) is not None and not pid_file.exists()
    assert f"stopping prefect-worker ({worker.pid})" in result.stdout


def test_nightly_demo_records_the_start_time_stop_all_checks():
    demo = (SCRIPTS / "nightly-demo.sh").read_text()
    assert 'record_pid $! prefect-server' in demo and 'record_pid $! prefect-worker' in demo
    assert 'echo $! >' not in demo
