"""Maths word problems from GSM8K with their reference number.

GSM8K answers end with ``#### <number>``; the reference is that number with thousands
separators removed (``#### 1,600`` → ``1600``) so a numeric comparison can use it.
"""

from __future__ import annotations

from pathlib import Path

from traffic.builders.sources import GSM8K, read_jsonl, require
from traffic.builders.tasks import Task, register_tasks
from traffic.errors import WorkloadError
from traffic.format import Expect

__all__ = ["gsm8k_reference", "gsm8k_tasks"]

MAX_TOKENS = 128
INSTRUCTION = "Solve the problem. End your answer with the final number."


def gsm8k_reference(answer: str) -> str:
    """The final number of a GSM8K answer."""
    if "####" not in answer:
        raise WorkloadError(f"GSM8K answer without '#### ': {answer[-60:]!r}")
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


@register_tasks("math")
def gsm8k_tasks(data_dir: Path) -> list[Task]:
    tasks: list[Task] = []
    for number, row in enumerate(read_jsonl(require(data_dir, GSM8K)), start=1):
        tasks.append(
            Task(
                kind="math",
                source_id=f"gsm8k:test:{number}",
                messages=[{"role": "user", "content": f"{row['question']}\n{INSTRUCTION}"}],
                expect=Expect(reference=gsm8k_reference(row["answer"])),
                max_tokens=MAX_TOKENS,
            )
        )
    return tasks
