"""Bad input is exit 2 with one line saying what is wrong — never a traceback, and never
exit 1, which means the gate failed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cluster_eval.cli import app
from cluster_eval.settings import PROJECT_ROOT

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd"


@pytest.fixture
def warehouse(tmp_path):
    from warehouse import connect

    path = tmp_path / "w.duckdb"
    connect(path).close()
    return path


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_report_on_an_unknown_run_id_is_exit_2(tmp_path, warehouse):
    result = CliRunner().invoke(app, ["report", "--warehouse", str(warehouse),
                                      "--run-id", "no-such-run", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "'no-such-run' is not in the warehouse" in _one_line_error(result)
    assert not (tmp_path / "o" / "report.html").exists()


@pytest.mark.parametrize("command", ["report", "evaluate"])
@pytest.mark.parametrize("content", [b"not a database\n", BINARY * 300])
def test_a_warehouse_that_is_not_duckdb_is_exit_2(tmp_path, command, content):
    bogus = tmp_path / "notes.duckdb"
    bogus.write_bytes(content)
    args = [command, "--warehouse", str(bogus), "--run-id", "r"]
    result = CliRunner().invoke(app, args + (["--out", str(tmp_path)] if command == "report"
                                             else []))
    assert result.exit_code == 2
    assert "is not a DuckDB database file" in _one_line_error(result)


def test_a_binary_thresholds_file_is_exit_2(tmp_path, warehouse):
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_bytes(BINARY)
    result = CliRunner().invoke(app, ["evaluate", "--warehouse", str(warehouse), "--run-id",
                                      "r", "--thresholds", str(thresholds)])
    assert result.exit_code == 2
    line = _one_line_error(result)
    assert "not a text file" in line or "not UTF-8" in line


def test_any_command_given_a_binary_file_for_yaml_is_exit_2(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(BINARY)
    result = subprocess.run(
        [sys.executable, "-m", "cluster_eval.cli", "traffic", "build", "--spec", str(spec),
         "--out", str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("CLUSTER_EVAL_RAY_HEAD_SESSION_NICE", "40", "less than or equal to 19"),
    ("CLUSTER_EVAL_RAY_NUM_CPUS", "eight", "valid integer"),
])
def test_a_bad_settings_variable_is_one_line_naming_it_and_exit_2(variable, value, says):
    result = subprocess.run(
        [sys.executable, "-m", "cluster_eval.cli", "stack", "status"],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
        env={**os.environ, variable: value},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and value not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: environment variable {variable}: ") and says in line

