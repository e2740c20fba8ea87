"""Docs as product: every ``traffic build`` flag documented; public names importable."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import typer

from cluster_eval.cli import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "traffic-format.md"
MODULES = [
    "traffic.bfcl_schema",
    "traffic.errors",
    "traffic.format",
    "traffic.loader",
    "traffic.writer",
    "traffic.capture",
    "traffic.cli",
    "traffic.builders",
    "traffic.builders.arrivals",
    "traffic.builders.pool",
    "traffic.builders.spec",
    "traffic.builders.tasks",
]


def test_every_build_flag_is_documented():
    root = typer.main.get_command(app)
    build = root.commands["traffic"].commands["build"]  # type: ignore[attr-defined]
    text = DOC.read_text()
    flags = [opt for param in build.params for opt in param.opts if opt.startswith("--")]
    assert len(flags) >= 15
    missing = [flag for flag in flags if f"`{flag}" not in text]
    assert missing == []


@pytest.mark.parametrize("name", MODULES)
def test_public_names_exist(name):
    module = importlib.import_module(name)
    assert module.__all__, name
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.{exported}"


def test_exception_tree():
    from traffic.errors import TrafficError, TrafficFormatError, WorkloadError

    assert issubclass(TrafficFormatError, TrafficError)
    assert issubclass(WorkloadError, TrafficError)
    error = TrafficFormatError("bad", file="a.jsonl", line=3, field="arrival")
    assert str(error) == "a.jsonl, line 3, field 'arrival': bad"
    assert (error.file, error.line, error.field) == ("a.jsonl", 3, "arrival")
