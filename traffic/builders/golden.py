"""The golden set: a few pinned requests whose right answers are known.

Replayed with ``temperature: 0`` on every run (pinned to each replica), they show
whether one replica answers differently from its peers. They are chosen by a fixed
rule from the shipped data — the shortest prompts of each group, so the 135M demo
model has its best chance — so ``cluster-eval traffic build --golden`` rebuilds the
same file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from traffic.builders.pool import shared_pool
from traffic.builders.sources import SHIPPED_DATA_DIR
from traffic.builders.spec import DEFAULT_MODEL
from traffic.builders.tasks import Task
from traffic.format import TrafficRecord

__all__ = ["GOLDEN_PATH", "GOLDEN_TENANT", "build_golden"]

GOLDEN_PATH = Path(__file__).resolve().parent.parent / "golden" / "golden.jsonl"
GOLDEN_TENANT = "golden"
GAP_S = 0.5  # spacing of the pinned requests when replayed as a stream
# (group label, kind, filter on the task, how many)
_GROUPS: list[tuple[str, str, Callable[[Task], bool], int]] = [
    ("json-name-year", "json", lambda t: t.source_id.startswith("squad:"), 2),
    ("json-numbers", "json", lambda t: t.source_id.startswith("gsm8k:"), 2),
    ("tool-simple", "tool", lambda t: "simple_python" in t.source_id, 2),
    ("tool-multiple", "tool", lambda t: "multiple" in t.source_id, 2),
    ("qa-answerable", "qa", lambda t: t.expect.answerable is True, 2),
    ("qa-unanswerable", "qa", lambda t: t.expect.answerable is False, 2),
    ("math", "math", lambda t: True, 4),
]


def build_golden(
    data_dir: Path | None = None, *, model: str = DEFAULT_MODEL
) -> list[TrafficRecord]:
    """16 golden records: 4 JSON extraction, 4 tool calls, 4 grounded QA, 4 maths."""
    pool = shared_pool(data_dir or SHIPPED_DATA_DIR)
    records: list[TrafficRecord] = []
    for label, kind, keep, count in _GROUPS:
        for task in _shortest([t for t in pool.tasks(kind) if keep(t)], count):
            records.append(
                TrafficRecord(
                    request_id=f"golden-{len(records) + 1:02d}-{label}",
                    arrival=round(len(records) * GAP_S, 6),
                    tenant_id=GOLDEN_TENANT,
                    body=task.body(model=model, temperature=0.0),
                    expect=task.expect,
                    tags={"golden": "true", "task": task.kind, "source": task.source_id},
                )
            )
    return records


def _shortest(tasks: list[Task], count: int) -> list[Task]:
    return sorted(tasks, key=lambda t: (t.prompt_chars, t.source_id))[:count]
