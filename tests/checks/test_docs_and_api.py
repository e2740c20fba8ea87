"""Public API and docs/checks.md: every exported name, rubric, check and command documented."""

from __future__ import annotations

from pathlib import Path

import typer

import checks
from checks.cli import register
from checks.compute import CHECKS
from checks.rubrics import RUBRICS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "checks.md").read_text()


def test_every_exported_name_resolves():
    for name in checks.__all__:
        assert getattr(checks, name) is not None, name


def test_everything_public_is_documented():
    for name in [*checks.__all__, *RUBRICS, "llm_judge", *CHECKS]:
        assert f"`{name}" in DOC, name


def test_every_command_is_documented():
    app = typer.Typer()
    register(app)
    for command in app.registered_commands:
        assert f"cluster-eval {command.name}" in DOC, command.name


def test_check_sql_files_exist_for_every_check():
    sql = Path(checks.__file__).with_name("sql")
    assert {p.stem for p in sql.glob("[!_]*.sql")} == set(CHECKS)
