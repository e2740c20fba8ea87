"""Tool-call tasks from BFCL: its functions become OpenAI tools, its answers expectations.

BFCL writes parameter schemas with Python-flavoured types; OpenAI tools take JSON
Schema, so the schema is translated (``traffic.bfcl_schema``, shared with the
``tool_call_correctness`` rubric). Function names like ``math.hypot``
are not valid OpenAI tool names (``^[a-zA-Z0-9_-]{1,64}$``), so dots become
underscores — in the tool and in the expected call alike, as BFCL's own OpenAI
handler does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from traffic.bfcl_schema import to_json_schema
from traffic.builders.sources import BFCL_SETS, read_jsonl, require
from traffic.builders.tasks import Task, register_tasks
from traffic.format import Expect, ExpectedToolCall

__all__ = ["bfcl_tasks", "openai_tool", "to_json_schema", "tool_name"]

MAX_TOKENS = 96
_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def tool_name(name: str) -> str:
    """A BFCL function name made valid for OpenAI tools."""
    return _NAME.sub("_", name)[:64]


def openai_tool(function: dict[str, Any]) -> dict[str, Any]:
    """One BFCL function as an OpenAI ``tools`` entry."""
    parameters = to_json_schema(function.get("parameters") or {"type": "object"})
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})
    return {
        "type": "function",
        "function": {
            "name": tool_name(function["name"]),
            "description": function.get("description", ""),
            "parameters": parameters,
        },
    }


@register_tasks("tool")
def bfcl_tasks(data_dir: Path) -> list[Task]:
    """One task per BFCL question that has a possible answer."""
    tasks: list[Task] = []
    for relative in BFCL_SETS:
        questions = require(data_dir, relative)
        answers_path = require(
            data_dir, str(Path(relative).parent / "possible_answer" / Path(relative).name)
        )
        answers = {row["id"]: row["ground_truth"] for row in read_jsonl(answers_path)}
        for row in read_jsonl(questions):
            truth = answers.get(row["id"])
            if truth is None or len(row["question"]) != 1:
                continue  # single-turn only: replay sends one request per record
            tasks.append(
                Task(
                    kind="tool",
                    source_id=f"bfcl:{row['id']}",
                    messages=list(row["question"][0]),
                    expect=Expect(tool_calls=[_expected_call(call) for call in truth]),
                    max_tokens=MAX_TOKENS,
                    options={
                        "tools": [openai_tool(f) for f in row["function"]],
                        "tool_choice": "auto",
                    },
                )
            )
    return tasks


def _expected_call(call: dict[str, dict[str, list[Any]]]) -> ExpectedToolCall:
    ((name, arguments),) = call.items()
    return ExpectedToolCall(name=tool_name(name), arguments=arguments)
