"""What an import is asked to do (:class:`ImportOptions`) and what a reader yields.

Every trace format is read into :class:`TraceRequest` items, one per request, so the
window, the thinning, the caps and the record building are written once for all formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from traffic.builders.spec import DEFAULT_MODEL

__all__ = ["ImportOptions", "TraceRequest", "WindowEdge"]

WindowEdge = float | datetime  # seconds from the trace's first request, or a timestamp


@dataclass(frozen=True)
class TraceRequest:
    """One request of a trace, before it becomes a :class:`~traffic.format.TrafficRecord`.

    ``time`` is seconds on the trace's own clock: a POSIX time for traces with
    timestamps, the trace's offset otherwise, ``None`` for traces without timing
    (ShareGPT), which the importer lays out at the asked rate.
    """

    session_id: str
    turn: int  # 1-based position in its session; CSV traces: every request is turn 1
    line: int  # where it was in the source file, for tags and error messages
    tenant_id: str
    time: float | None = None
    context_tokens: int | None = None  # prompt size the trace recorded (no text)
    generated_tokens: int | None = None  # output size the trace recorded
    messages: tuple[dict[str, Any], ...] | None = None  # the text, when the trace has it
    blocks: tuple[int, ...] | None = None  # hashes of the prompt's blocks (Mooncake)


class ImportOptions(BaseModel):
    """The options of ``cluster-eval traffic import`` (docs/traffic-format.md)."""

    model_config = ConfigDict(extra="forbid")

    format: str
    since: WindowEdge | None = Field(
        default=None, description="Window start: offset from the first request, or a timestamp."
    )
    until: WindowEdge | None = Field(default=None, description="Window end (exclusive).")
    rate: float | None = Field(
        default=None, gt=0, description="Target requests/s; sessions are kept or dropped whole."
    )
    seed: int = 0
    max_prompt_tokens: int | None = Field(
        default=None, ge=16, description="Cut prompts longer than this in the middle (≈ tokens)."
    )
    max_tokens: int | None = Field(default=None, ge=1, description="Cap on each max_tokens.")
    tenant: str | None = Field(default=None, min_length=1, description="One tenant for all.")
    tenant_column: str | None = Field(
        default=None, min_length=1, description="Take each request's tenant from this column."
    )
    think_time_s: float = Field(
        default=10.0, ge=0, description="Gap between turns of a conversation (untimed traces)."
    )
    model: str = DEFAULT_MODEL
    temperature: float = Field(default=0.0, ge=0, le=2)
    tasks: list[str] = Field(
        default_factory=lambda: ["json", "tool", "qa", "math", "doc_qa"],
        min_length=1,
        description="Task kinds whose prompts stand in for traces without text.",
    )
    data_dir: Path | None = None
    block_size: int = Field(
        default=512, ge=1,
        description="Tokens per hash block of a block-hash trace (Mooncake: 512).",
    )
    block_tokens: int | None = Field(
        default=None, ge=1,
        description="Tokens each block becomes in the prompts; default --block-size. Smaller "
        "shrinks every prompt alike and keeps the share of reused tokens.",
    )
    tokenizer: Path | None = Field(
        default=None,
        description="The served model's tokenizer.json (block-hash traces); default: the "
        "prepared model's.",
    )
    name: str | None = Field(default=None, description="Request id prefix; default: the format.")
    max_bad_share: float = Field(default=0.05, ge=0, le=1)

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: WindowEdge | None) -> WindowEdge | None:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _one_tenant_source(self) -> ImportOptions:
        if self.tenant is not None and self.tenant_column is not None:
            raise ValueError("give --tenant or --tenant-column, not both")
        both = self.since is not None and self.until is not None
        if both and isinstance(self.since, datetime) != isinstance(self.until, datetime):
            raise ValueError("--since and --until must both be offsets or both timestamps")
        if both and self.until <= self.since:  # type: ignore[operator]
            raise ValueError("--until must be after --since")
        return self

    @property
    def prefix(self) -> str:
        return self.name or self.format
