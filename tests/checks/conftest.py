"""Real cases from /work/shared/data (BFCL, SQuAD v2, GSM8K) and span-row builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path("/work/shared/data")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def bfcl() -> dict[str, tuple[dict, dict]]:
    """id → (question with its functions, possible answer)."""
    out = {}
    for name in ("BFCL_v4_simple_python.json", "BFCL_v4_multiple.json"):
        answers = {a["id"]: a for a in _jsonl(DATA / "bfcl" / "possible_answer" / name)}
        for q in _jsonl(DATA / "bfcl" / name):
            out[q["id"]] = (q, answers[q["id"]])
    return out


@pytest.fixture(scope="session")
def squad() -> list[dict]:
    """Flat list of {context, question, answers, is_impossible}."""
    raw = json.loads((DATA / "squad" / "squad_v2_dev_subset_5articles.json").read_text())
    return [
        {"context": p["context"], **qa}
        for article in raw["data"] for p in article["paragraphs"] for qa in p["qas"]
    ]


@pytest.fixture(scope="session")
def gsm8k() -> list[dict]:
    return _jsonl(DATA / "gsm8k" / "test.jsonl")[:50]


def span_row(
    span_id: str = "s1",
    *,
    request: dict[str, Any] | None = None,
    output_text: str | None = "ok",
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = "stop",
    status: str = "ok",
    expect: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "span_id": span_id,
        "status": status,
        "finish_reason": finish_reason,
        "output_text": output_text,
        "tool_calls": None if tool_calls is None else json.dumps(tool_calls),
        "request_body": json.dumps(request or {"messages": [{"role": "user", "content": "hi"}]}),
        "expect": None if expect is None else json.dumps(expect),
    }


@pytest.fixture
def make_span():
    return span_row
