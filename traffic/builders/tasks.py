"""A task: one prompt with its expectation, before it gets an arrival and a tenant.

Task builders (one module per data set) return lists of :class:`Task`; the workload
builder draws from them. Kinds are looked up by name so specs can say
``tasks: [json, tool, qa, math]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traffic.format import Expect

__all__ = ["TASK_KINDS", "Task", "TaskBuilder", "approx_tokens", "register_tasks"]

TaskBuilder = Callable[[Path], list["Task"]]
TASK_KINDS: dict[str, TaskBuilder] = {}


def register_tasks(kind: str) -> Callable[[TaskBuilder], TaskBuilder]:
    """Register a task builder under ``kind`` (the name specs and the CLI use)."""

    def decorate(builder: TaskBuilder) -> TaskBuilder:
        TASK_KINDS[kind] = builder
        return builder

    return decorate


def approx_tokens(chars: int) -> int:
    """Rough token count: ~4 characters per token for English with a BPE tokenizer.

    Good enough to match the Azure trace's ContextTokens to a prompt of similar size;
    no tokenizer is loaded in the orchestrator environment.
    """
    return max(1, round(chars / 4))


@dataclass(frozen=True)
class Task:
    """One request template: messages plus the request options that make it a task."""

    kind: str
    source_id: str
    messages: list[dict[str, Any]]
    expect: Expect
    max_tokens: int
    options: dict[str, Any] = field(default_factory=dict)  # tools, response_format, …

    @property
    def prompt_chars(self) -> int:
        chars = sum(len(str(m.get("content") or "")) for m in self.messages)
        tools = self.options.get("tools")
        return chars + (len(str(tools)) if tools else 0)

    @property
    def prompt_tokens(self) -> int:
        return approx_tokens(self.prompt_chars)

    def body(
        self, *, model: str, max_tokens: int | None = None, temperature: float = 0.0
    ) -> dict[str, Any]:
        """The OpenAI chat request; ``max_tokens`` caps the task's own budget."""
        budget = self.max_tokens if max_tokens is None else min(self.max_tokens, max_tokens)
        return {
            "model": model,
            "messages": [dict(m) for m in self.messages],
            **self.options,
            "max_tokens": budget,
            "temperature": temperature,
        }
