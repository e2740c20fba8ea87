"""Drawing tasks for arrivals: by kind, or by prompt length when the arrival knows it.

Task modules register themselves on import; importing this module imports them all, so
``TASK_KINDS`` is complete wherever a pool is used.
"""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from traffic.builders import doc_qa, extraction, gsm8k, qa, tools  # noqa: F401  (register task kinds)
from traffic.builders.tasks import TASK_KINDS, Task
from traffic.errors import WorkloadError

__all__ = ["TaskPool", "known_kinds", "shared_pool"]

NEAREST = 8  # a length-matched pick chooses among this many closest prompts, for variety


def known_kinds() -> list[str]:
    return sorted(TASK_KINDS)


@functools.lru_cache(maxsize=8)
def shared_pool(data_dir: Path) -> TaskPool:
    """One pool per data folder per process: parsing the data sets is the slow part.

    Tasks are treated as read-only by everything that draws from them.
    """
    return TaskPool(Path(data_dir).resolve())


class TaskPool:
    """Tasks of each kind built once from ``data_dir``, then drawn with a given rng."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._by_kind: dict[str, list[Task]] = {}
        self._by_length: dict[tuple[str, ...], tuple[list[int], list[Task]]] = {}

    def tasks(self, kind: str) -> list[Task]:
        if kind not in TASK_KINDS:
            raise WorkloadError(f"unknown task kind {kind!r}; known: {', '.join(known_kinds())}")
        if kind not in self._by_kind:
            built = TASK_KINDS[kind](self.data_dir)
            if not built:
                raise WorkloadError(f"no {kind!r} tasks could be built from {self.data_dir}")
            self._by_kind[kind] = built
        return self._by_kind[kind]

    def pick(
        self,
        kinds: Sequence[str],
        rng: random.Random,
        *,
        context_tokens: int | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> Task:
        """A task of one of ``kinds``; with ``context_tokens``, one of similar length."""
        if context_tokens is not None:
            return self._pick_by_length(tuple(sorted(kinds)), context_tokens, rng)
        chosen = kinds[0]
        if len(kinds) > 1:
            chosen = rng.choices(list(kinds), weights=[(weights or {}).get(k, 1.0) for k in kinds])[
                0
            ]
        return rng.choice(self.tasks(chosen))

    def _pick_by_length(self, kinds: tuple[str, ...], target: int, rng: random.Random) -> Task:
        if kinds not in self._by_length:
            merged = sorted(
                (task for kind in kinds for task in self.tasks(kind)),
                key=lambda t: (t.prompt_tokens, t.source_id),
            )
            self._by_length[kinds] = ([t.prompt_tokens for t in merged], merged)
        lengths, merged = self._by_length[kinds]
        at = bisect.bisect_left(lengths, target)
        low, high = at, at
        while high - low < min(NEAREST, len(merged)):  # grow towards the closer side
            take_low = low > 0 and (
                high >= len(merged) or target - lengths[low - 1] <= lengths[high] - target
            )
            if take_low:
                low -= 1
            else:
                high += 1
        return merged[rng.randrange(low, high)]
