"""The captured-traffic format, version 1 (documented in docs/traffic-format.md).

One record per request as production sent it. ``arrival`` is either seconds from the
start of the capture (a float) or an absolute timestamp; the loader normalises both to
offsets. ``expect`` is optional and only feeds the rubrics: replay never sends it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1


class ExpectedToolCall(BaseModel):
    """One function call the answer should make (BFCL convention).

    ``arguments`` maps each argument name to its allowed values; an empty list or a
    list holding ``""`` marks the argument optional.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, list[Any]] = Field(default_factory=dict)


class Expect(BaseModel):
    """What a correct answer looks like; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    json_schema: dict[str, Any] | None = Field(
        default=None, description="Schema the answer must validate against."
    )
    tool_calls: list[ExpectedToolCall] | None = Field(
        default=None, description="Calls the answer should make; [] means no call expected."
    )
    reference: str | None = Field(default=None, description="Reference answer (GSM8K, SQuAD).")
    context: str | None = Field(default=None, description="Grounding passage for groundedness.")
    answerable: bool | None = Field(
        default=None, description="False for questions the context cannot answer: a refusal is right."
    )


class TrafficRecord(BaseModel):
    """One captured request."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1)
    arrival: float | datetime = Field(description="Offset in seconds, or an absolute time.")
    tenant_id: str = Field(min_length=1)
    endpoint: Literal["/v1/chat/completions"] = "/v1/chat/completions"
    body: dict[str, Any] = Field(description="The OpenAI chat request exactly as sent.")
    expect: Expect | None = None
    tags: dict[str, str] = Field(default_factory=dict)
