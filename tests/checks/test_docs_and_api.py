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


def test_the_checks_table_is_the_registry_s():
    from checks.registry import docs_table

    assert docs_table() in DOC, "docs/checks.md: paste `python -m checks.registry`"


def test_the_walkthrough_s_check_is_the_one_the_test_registers():
    from tests.checks.test_adding_a_check import SLOW_ANSWERS_SQL

    for line in SLOW_ANSWERS_SQL.strip().splitlines():
        assert line.split() and " ".join(line.split()) in " ".join(DOC.split()), line
