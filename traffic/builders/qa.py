"""Grounded QA tasks from SQuAD 2.0: answer from the passage, or say you don't know.

About half of SQuAD 2.0's questions cannot be answered from their passage; for those the
right answer is a refusal (``expect.answerable = false``), which is what a grounded
assistant in production must learn to give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traffic.builders.sources import SQUAD, read_json, require
from traffic.builders.tasks import Task, register_tasks
from traffic.format import Expect

__all__ = ["SYSTEM_PROMPT", "qa_prompt", "squad_task", "squad_tasks"]

MAX_TOKENS = 64
SYSTEM_PROMPT = (
    "Answer the question using only the context. Reply with a short phrase. "
    "If the context does not contain the answer, reply exactly: I don't know."
)


def qa_prompt(context: str, question: str) -> str:
    return f"Context:\n{context}\n\nQuestion: {question}"


def squad_task(kind: str, qa: dict[str, Any], messages: list[dict[str, Any]], context: str,
               max_tokens: int) -> Task:
    """A task graded against SQuAD question ``qa``: its first gold answer, or a refusal
    when SQuAD marks it unanswerable from ``context``."""
    answerable = not qa.get("is_impossible", False) and bool(qa["answers"])
    return Task(
        kind=kind,
        source_id=f"squad:{qa['id']}",
        messages=messages,
        expect=Expect(
            context=context,
            answerable=answerable,
            reference=qa["answers"][0]["text"] if answerable else None,
        ),
        max_tokens=max_tokens,
    )


@register_tasks("qa")
def squad_tasks(data_dir: Path) -> list[Task]:
    """One task per SQuAD question; ``reference`` is the first gold answer."""
    tasks: list[Task] = []
    for article in read_json(require(data_dir, SQUAD))["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                messages = [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": qa_prompt(context, qa["question"])},
                ]
                tasks.append(squad_task("qa", qa, messages, context, MAX_TOKENS))
    return tasks
