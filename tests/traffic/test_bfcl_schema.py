"""The one BFCL → JSON Schema translation, pinned on every function of the BFCL data.

The workload builder (OpenAI tools) and the ``tool_call_correctness`` rubric (argument
checks) both use ``traffic.bfcl_schema.to_json_schema``; these tests say what it must
give on the real files, not only on hand-made cases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from traffic.bfcl_schema import to_json_schema
from traffic.builders.sources import SHIPPED_DATA_DIR

# CI clones the repo with shared/ beside it; this workplace also mounts it at /work.
SHARED_BFCL = next(
    (p / "bfcl" for p in (Path(__file__).resolve().parents[3] / "shared" / "data",
                          Path("/work/shared/data")) if (p / "bfcl").is_dir()),
    Path(__file__).resolve().parents[3] / "shared" / "data" / "bfcl",
)
FILES = ("BFCL_v4_simple_python.json", "BFCL_v4_multiple.json")
BFCL_DIRS = [
    pytest.param(SHIPPED_DATA_DIR / "bfcl", id="shipped"),
    pytest.param(
        SHARED_BFCL,
        id="shared",
        marks=pytest.mark.skipif(not SHARED_BFCL.is_dir(), reason="no shared/data/bfcl"),
    ),
]


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _functions(bfcl_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{row['id']}:{function['name']}", function)
        for name in FILES
        for row in _rows(bfcl_dir / name)
        for function in row["function"]
    ]


def _first_allowed(allowed: list[Any]) -> Any:
    """One concrete value from a BFCL allowed-values list ("" marks the argument optional)."""
    values = [v for v in allowed if v != ""]
    return _concrete(values[0]) if values else _ABSENT


def _concrete(value: Any) -> Any:
    """A possible-answer value; BFCL nests allowed-values lists inside dict answers."""
    if isinstance(value, dict):
        picked = {k: _first_allowed(v) if isinstance(v, list) else _concrete(v)
                  for k, v in value.items()}
        return {k: v for k, v in picked.items() if v is not _ABSENT}
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


_ABSENT = object()


@pytest.mark.parametrize("bfcl_dir", BFCL_DIRS)
def test_every_bfcl_function_becomes_a_valid_json_schema(bfcl_dir):
    functions = _functions(bfcl_dir)
    assert len(functions) >= (900 if bfcl_dir == SHARED_BFCL else 300)
    for where, function in functions:
        schema = to_json_schema(function["parameters"])
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:  # the message names the function that broke
            pytest.fail(f"{where}: {exc}")
        assert schema["type"] == "object", where
        assert set(schema["properties"]) == set(function["parameters"]["properties"]), where
        text = json.dumps(schema)
        for bfcl_type in ("dict", "float", "tuple", "any"):
            assert f'"type": "{bfcl_type}"' not in text, where
        assert '"optional"' not in text, where


@pytest.mark.parametrize("bfcl_dir", BFCL_DIRS)
def test_every_possible_answer_validates_against_its_translated_schema(bfcl_dir):
    checked, invalid = 0, []
    for name in FILES:
        answers = {a["id"]: a["ground_truth"] for a in _rows(bfcl_dir / "possible_answer" / name)}
        for row in _rows(bfcl_dir / name):
            functions = {f["name"]: f for f in row["function"]}
            for call in answers.get(row["id"], []):
                ((function, allowed),) = call.items()
                arguments = _concrete(allowed)
                validator = Draft202012Validator(to_json_schema(functions[function]["parameters"]))
                if not validator.is_valid(arguments):
                    invalid.append(row["id"])
                checked += 1
    # the one answer BFCL itself contradicts: its schema says venue is a string, the
    # possible answer allows `true`
    assert invalid == (["simple_python_307"] if bfcl_dir == SHARED_BFCL else [])
    assert checked >= (600 if bfcl_dir == SHARED_BFCL else 200)


def test_the_translation_rewrites_schemas_not_the_data_inside_them():
    bfcl = {
        "type": "dict",
        "properties": {
            # properties named like the keywords keep their names and their own schemas
            "type": {"type": "str", "enum": ["dict", "float"]},
            "optional": {"type": "bool", "optional": True},
            "shape": {"type": "dict", "default": {"type": "dict", "optional": True},
                      "additionalProperties": {"type": "float"}},
            "pair": {"type": "tuple", "items": {"anyOf": [{"type": "int"}, {"type": "any"}]}},
        },
        "required": ["type"],
    }
    assert to_json_schema(bfcl) == {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["dict", "float"]},
            "optional": {"type": "boolean"},
            "shape": {"type": "object", "default": {"type": "dict", "optional": True},
                      "additionalProperties": {"type": "number"}},
            "pair": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {}]}},
        },
        "required": ["type"],
    }


def test_the_builder_and_the_rubric_share_the_translation():
    from checks.rubrics import tool_call_correctness
    from traffic.builders import tools

    assert tools.to_json_schema is to_json_schema
    assert tool_call_correctness.to_json_schema is to_json_schema
    function = _functions(SHIPPED_DATA_DIR / "bfcl")[0][1]
    declared = tool_call_correctness.declared_tools({"tools": [tools.openai_tool(function)]})
    assert list(declared.values()) == [to_json_schema(function["parameters"])]
