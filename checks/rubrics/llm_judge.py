"""llm_judge: an optional rubric asking any OpenAI-compatible endpoint to grade an answer.

Off by default (``judge.enabled: false`` in checks/thresholds.yaml). The API key is
read from the environment variable *named* in the config, once, when the judge is
built; it is sent only as the ``Authorization`` header and never logged, stored,
or shown in ``repr``. The prompt is a ``str.format`` template over ``{question}``,
``{answer}``, ``{reference}`` and ``{context}``; the judge must reply with a number
in [0, 1] (the first number in the reply is taken, clipped to [0, 1]). A failed
judge call leaves the score null (the judge could not decide), a failed span
scores 0 as with every rubric.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from checks.rubrics.base import SpanView

NAME = "llm_judge"

DEFAULT_PROMPT = (
    "You grade answers. Question:\n{question}\n\nReference (may be empty):\n{reference}\n\n"
    "Context (may be empty):\n{context}\n\nAnswer:\n{answer}\n\n"
    "Reply with only a number between 0 (wrong) and 1 (fully correct)."
)

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class JudgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    base_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="OpenAI-compatible API root."
    )
    model: str = "judge"
    prompt: str = DEFAULT_PROMPT
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key."
    )
    timeout_s: float = Field(default=30.0, gt=0)


def _question(request: Mapping[str, Any]) -> str:
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    content = (users or messages or [{}])[-1].get("content", "")
    return content if isinstance(content, str) else str(content)


class LLMJudge:
    """Callable rubric; build it with :meth:`from_config` at the program's boundary."""

    def __init__(self, config: JudgeConfig, client: httpx.Client, api_key: str | None = None):
        self.config = config
        self._client = client
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @classmethod
    def from_config(
        cls, config: JudgeConfig, environ: Mapping[str, str], client: httpx.Client | None = None
    ) -> LLMJudge:
        key = environ.get(config.api_key_env) if config.api_key_env else None
        return cls(config, client or httpx.Client(timeout=config.timeout_s), key)

    def __repr__(self) -> str:
        return f"LLMJudge(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def __call__(self, span: SpanView) -> float | None:
        if span.failed:
            return 0.0
        prompt = self.config.prompt.format(
            question=_question(span.request),
            answer=span.output_text or "",
            reference=span.expect.get("reference") or "",
            context=span.expect.get("context") or "",
        )
        body = {"model": self.config.model, "temperature": 0,
                "messages": [{"role": "user", "content": prompt}]}
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        try:
            response = self._client.post(url, json=body, headers=self._headers)
            response.raise_for_status()
            reply = response.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError):
            return None
        found = _NUMBER.search(reply)
        return min(1.0, max(0.0, float(found.group()))) if found else None
