"""Task builders on the real data sets: the shipped subsets and the full shared copies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from traffic.builders import SHIPPED_DATA_DIR, TaskPool
from traffic.builders.gsm8k import gsm8k_reference
from traffic.builders.tools import to_json_schema
from traffic.format import TrafficRecord

# CI clones the repo with shared/ beside it; this workplace also mounts it at /work.
SHARED_DATA_DIR = next(
    (p for p in (Path(__file__).resolve().parents[3] / "shared" / "data",
                 Path("/work/shared/data")) if p.is_dir()),
    Path(__file__).resolve().parents[3] / "shared" / "data",
)
DATA_DIRS = [
    pytest.param(SHIPPED_DATA_DIR, id="shipped"),
    pytest.param(
        SHARED_DATA_DIR,
        id="shared",
        marks=pytest.mark.skipif(not SHARED_DATA_DIR.is_dir(), reason="no shared/data"),
    ),
]
_POOLS: dict[Path, TaskPool] = {}


def pool(data_dir: Path) -> TaskPool:
    """One pool per data dir for the whole module: building tasks reads the files once."""
    return _POOLS.setdefault(data_dir, TaskPool(data_dir))


def as_record(task) -> TrafficRecord:
    return TrafficRecord(
        request_id=task.source_id,
        arrival=0.0,
        tenant_id="t",
        body=task.body(model="m"),
        expect=task.expect,
    )


@pytest.mark.parametrize("data_dir", DATA_DIRS)
def test_bfcl_tools_are_valid_openai_tools_with_expected_calls(data_dir):
    tasks = pool(data_dir).tasks("tool")
    assert len(tasks) >= 200
    source = SHARED_DATA_DIR if data_dir == SHARED_DATA_DIR else SHIPPED_DATA_DIR
    n_questions = sum(
        1
        for f in ("BFCL_v4_simple_python.json", "BFCL_v4_multiple.json")
        for _ in (source / "bfcl" / f).read_text().splitlines()
    )
    assert len(tasks) == n_questions  # every single-turn question has a possible answer
    for task in tasks:
        record = as_record(task)
        tools = record.body["tools"]
        names = set()
        for tool in tools:
            assert tool["type"] == "function"
            function = tool["function"]
            assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", function["name"])
            names.add(function["name"])
            schema = function["parameters"]
            Draft202012Validator.check_schema(schema)
            assert schema["type"] == "object"
            text = json.dumps(schema)
            for bfcl_type in ("dict", "float", "tuple", "any"):
                assert f'"type": "{bfcl_type}"' not in text
            assert '"optional"' not in text
        assert record.expect.tool_calls
        for call in record.expect.tool_calls:
            assert call.name in names
            properties = next(t for t in tools if t["function"]["name"] == call.name)["function"][
                "parameters"
            ]["properties"]
            assert set(call.arguments) <= set(properties)
            assert all(isinstance(allowed, list) for allowed in call.arguments.values())


def test_bfcl_schema_translation_is_recursive():
    bfcl = {
        "type": "dict",
        "properties": {
            "point": {"type": "tuple", "items": {"type": "float"}, "description": "x, y"},
            "options": {
                "type": "dict",
                "properties": {
                    "anything": {"type": "any"},
                    "n": {"type": "integer", "optional": True},
                },
            },
        },
        "required": ["point"],
    }
    schema = to_json_schema(bfcl)
    assert schema == {
        "type": "object",
        "properties": {
            "point": {"type": "array", "items": {"type": "number"}, "description": "x, y"},
            "options": {"type": "object", "properties": {"anything": {}, "n": {"type": "integer"}}},
        },
        "required": ["point"],
    }
    Draft202012Validator.check_schema(schema)
    jsonschema.validate({"point": [1.5, 2], "options": {"anything": [None], "n": 3}}, schema)


@pytest.mark.parametrize("data_dir", DATA_DIRS)
def test_squad_answerable_and_unanswerable(data_dir):
    tasks = pool(data_dir).tasks("qa")
    raw = json.loads((data_dir / "squad" / "squad_v2_dev_subset_5articles.json").read_text())
    qas = {qa["id"]: qa for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
    assert len(tasks) == len(qas) == 1407
    unanswerable = [t for t in tasks if t.expect.answerable is False]
    assert len(unanswerable) == 702
    for task in tasks:
        record = as_record(task)
        qa = qas[task.source_id.removeprefix("squad:")]
        prompt = record.body["messages"][-1]["content"]
        assert record.expect.context and record.expect.context in prompt
        assert qa["question"] in prompt
        if record.expect.answerable:
            assert record.expect.reference == qa["answers"][0]["text"]
            assert record.expect.reference in record.expect.context
        else:
            assert record.expect.reference is None
        assert "I don't know" in record.body["messages"][0]["content"]  # how to refuse


@pytest.mark.parametrize("data_dir", DATA_DIRS)
def test_gsm8k_references_are_the_final_numbers(data_dir):
    tasks = pool(data_dir).tasks("math")
    rows = [
        json.loads(line) for line in (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()
    ]
    assert len(tasks) == len(rows)
    for task, row in zip(tasks, rows, strict=True):
        reference = as_record(task).expect.reference
        assert re.fullmatch(r"-?\d+(\.\d+)?", reference), reference
        assert row["answer"].rstrip().endswith(f"#### {row['answer'].split('#### ')[-1].strip()}")
        assert float(reference) == float(row["answer"].split("#### ")[-1].replace(",", ""))
    assert tasks[0].expect.reference == "18"  # Janet's ducks
    assert gsm8k_reference("so...\n#### 1,600") == "1600"


@pytest.mark.parametrize("data_dir", DATA_DIRS)
def test_json_extraction_schemas_and_requests(data_dir):
    tasks = pool(data_dir).tasks("json")
    assert len(tasks) >= 100
    families = {t.expect.json_schema["required"][0] for t in tasks}
    assert families == {"name", "numbers"}
    for task in tasks:
        record = as_record(task)
        schema = record.expect.json_schema
        Draft202012Validator.check_schema(schema)
        response_format = record.body["response_format"]
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["schema"] == schema
        assert record.body["max_tokens"] <= 128
        if "year" in schema["properties"]:
            year = record.expect.reference
            assert year in record.body["messages"][0]["content"]
            jsonschema.validate({"name": "Normans", "year": int(year)}, schema)
        else:
            jsonschema.validate({"numbers": [16, 3, 4, 2.5]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "year": "1066"}, tasks[0].expect.json_schema)


@pytest.mark.parametrize("data_dir", DATA_DIRS)
def test_doc_qa_asks_many_questions_of_a_few_long_shared_documents(data_dir):
    from traffic.builders.doc_qa import DOC_CHARS

    tasks = pool(data_dir).tasks("doc_qa")
    by_document: dict[str, list] = {}
    for task in tasks:
        system, user = task.messages
        by_document.setdefault(system["content"], []).append(task)
        # the document is the system turn, the question alone is the user turn:
        # every question about a document shares the same long prompt prefix
        assert task.expect.context in system["content"]
        assert task.expect.context not in user["content"]
        assert len(task.expect.context) <= DOC_CHARS
        if task.expect.answerable:
            assert task.expect.reference in task.expect.context
    assert len(by_document) == 5  # one document per SQuAD article
    assert all(len(questions) >= 30 for questions in by_document.values())
    assert min(t.prompt_tokens for t in tasks) > 900  # many KV-cache blocks, not one
    assert {t.expect.answerable for t in tasks} == {True, False}


def test_small_max_tokens_for_the_demo_model():
    for kind in ("json", "tool", "qa", "math", "doc_qa"):
        for task in pool(SHIPPED_DATA_DIR).tasks(kind)[:20]:
            assert 32 <= task.body(model="m")["max_tokens"] <= 128
            assert task.body(model="m", max_tokens=40)["max_tokens"] <= 40


def test_shipped_data_is_small_and_credited():
    files = [p for p in SHIPPED_DATA_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2 * 1024 * 1024
    notice = (SHIPPED_DATA_DIR / "NOTICE.md").read_text()
    for licence in ("CC-BY-4.0", "Apache-2.0", "CC-BY-SA-4.0", "MIT"):
        assert licence in notice
    for folder in ("azure_llm_2023", "bfcl", "squad", "gsm8k"):
        assert folder in notice
