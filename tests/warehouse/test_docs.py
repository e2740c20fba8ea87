"""docs/warehouse.md: every ready SQL example runs against the current schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import warehouse
from warehouse import connect

DOC = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"
EXAMPLES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_doc_has_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("sql", EXAMPLES)
def test_sql_example_runs(tmp_path, sql):
    with connect(tmp_path / "w.duckdb") as con:
        con.execute(sql).fetchall()


def test_public_api_is_documented():
    text = DOC.read_text()
    for name in warehouse.__all__:
        assert f"`{name}" in text, name
