"""Tool-call tasks from BFCL: its functions become OpenAI tools, its answers expectations.

BFCL writes parameter schemas with Python-flavoured types; OpenAI tools take JSON
Schema, so the schema is translated (``traffic.bfcl_schema``, shared with the
``tool_call_correctness`` rubric). Function names like ``math.hypot``
are not valid OpenAI tool names (``^[a-zA-Z0-9_-]{1,64}$``), so dots become
underscores — in the tool and in the expected call alike, as BFCL's own OpenAI
handler does.

**Which sets.** Every BFCL question file in ``<data_dir>/bfcl/`` (``BFCL_*.json``), so a
folder of newer or other sets (the ``live_*`` ones, a team's own) is built as it is:
the shipped two first, in their order, then the others by name. A set with a
``possible_answer/`` twin gives tasks that expect the calls it allows; an
*irrelevance* set (``*irrelevance*``: none of its functions fits the question) gives
tasks that expect **no** call; any other set without answers (``live_relevance``,
``format_sensitivity``, …) is left out and said so (:func:`bfcl_sets`, a warning),
never replaced by another. Multi-turn questions are left out (one request per
record), and so is a question whose prompt with its tools is longer than
:data:`MAX_PROMPT_TOKENS` (≈ characters / 4: live irrelevance questions reach 24,000
characters of tool schemas). No question file at all is an error naming the folder.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from traffic.bfcl_schema import to_json_schema
from traffic.builders.sources import BFCL_SETS, read_jsonl
from traffic.builders.tasks import Task, register_tasks
from traffic.errors import WorkloadError
from traffic.format import Expect, ExpectedToolCall

__all__ = ["MAX_PROMPT_TOKENS", "BfclSet", "bfcl_sets", "bfcl_tasks", "openai_tool",
           "to_json_schema", "tool_name"]

log = logging.getLogger(__name__)

MAX_TOKENS = 96
MAX_PROMPT_TOKENS = 1024  # the shipped sets' longest prompt with tools: ~500
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


@dataclass(frozen=True)
class BfclSet:
    """One question file of a BFCL folder and what the builder makes of it."""

    questions: Path
    answers: Path | None  # the possible_answer twin, when there is one
    use: Literal["answers", "irrelevance", "skipped"]


def bfcl_sets(data_dir: Path) -> list[BfclSet]:
    """The question files of ``<data_dir>/bfcl/``: shipped names first, then by name."""
    folder = Path(data_dir) / "bfcl"
    files = sorted(folder.glob("BFCL_*.json")) if folder.is_dir() else []
    if not files:
        raise WorkloadError(
            f"no BFCL question files (bfcl/BFCL_*.json) in {data_dir}: is data_dir right?")
    shipped = [Path(name).name for name in BFCL_SETS]
    files.sort(key=lambda p: (shipped.index(p.name) if p.name in shipped else len(shipped),
                              p.name))
    sets = []
    for questions in files:
        twin = folder / "possible_answer" / questions.name
        if twin.is_file():
            sets.append(BfclSet(questions, twin, "answers"))
        elif "irrelevance" in questions.stem:
            sets.append(BfclSet(questions, None, "irrelevance"))
        else:
            sets.append(BfclSet(questions, None, "skipped"))
    return sets


@register_tasks("tool")
def bfcl_tasks(data_dir: Path) -> list[Task]:
    """One task per usable single-turn question of every BFCL set in ``data_dir``."""
    tasks: list[Task] = []
    too_long = 0
    for bfcl_set in bfcl_sets(data_dir):
        if bfcl_set.use == "skipped":
            log.warning("BFCL set %s has no possible_answer and is not an irrelevance set: "
                        "left out", bfcl_set.questions.name)
            continue
        answers = ({row["id"]: row["ground_truth"] for row in read_jsonl(bfcl_set.answers)}
                   if bfcl_set.answers else {})
        for row in read_jsonl(bfcl_set.questions):
            if len(row["question"]) != 1:
                continue  # single-turn only: replay sends one request per record
            if bfcl_set.use == "answers":
                truth = answers.get(row["id"])
                if truth is None:
                    continue
                expect = Expect(tool_calls=[_expected_call(call) for call in truth])
            else:
                expect = Expect(tool_calls=[])  # no function fits: no call is right
            task = Task(
                kind="tool",
                source_id=f"bfcl:{row['id']}",
                messages=list(row["question"][0]),
                expect=expect,
                max_tokens=MAX_TOKENS,
                options={
                    "tools": [openai_tool(f) for f in row["function"]],
                    "tool_choice": "auto",
                },
            )
            if task.prompt_tokens > MAX_PROMPT_TOKENS:
                too_long += 1
                continue
            tasks.append(task)
    if too_long:
        log.warning("%d BFCL questions left out: prompt with tools over %d tokens (≈ chars/4)",
                    too_long, MAX_PROMPT_TOKENS)
    return tasks


def _expected_call(call: dict[str, dict[str, list[Any]]]) -> ExpectedToolCall:
    ((name, arguments),) = call.items()
    return ExpectedToolCall(name=tool_name(name), arguments=arguments)
