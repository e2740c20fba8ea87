"""JSON-extraction tasks: pull a tiny object out of one real sentence.

Production traffic is full of "extract these fields as JSON" calls made with
``response_format: json_schema``. The schemas here are deliberately small (two fields,
one array) so that even the 135M demo model answers some correctly; the test of the
serving stack is whether structured output survives load, not whether the model is
clever.

* ``name_year`` — a SQuAD sentence that mentions exactly one year → ``{"name", "year"}``;
  the year is also the ``reference``.
* ``numbers`` — a GSM8K question → ``{"numbers": [...]}``, every number it mentions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from traffic.builders.sources import GSM8K, SQUAD, read_json, read_jsonl, require
from traffic.builders.tasks import Task, register_tasks
from traffic.format import Expect

__all__ = ["NAME_YEAR_SCHEMA", "NUMBERS_SCHEMA", "extraction_tasks", "response_format"]

MAX_TOKENS = 64
NAME_YEAR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["name", "year"],
    "additionalProperties": False,
}
NUMBERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"numbers": {"type": "array", "items": {"type": "number"}}},
    "required": ["numbers"],
    "additionalProperties": False,
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
_GSM8K_NUMBERS_LIMIT = 150  # enough variety; the rest of GSM8K feeds the maths tasks


def response_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI structured-output request option for ``schema``."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


@register_tasks("json")
def extraction_tasks(data_dir: Path) -> list[Task]:
    return _name_year_tasks(data_dir) + _numbers_tasks(data_dir)


def _name_year_tasks(data_dir: Path) -> list[Task]:
    tasks: list[Task] = []
    seen: set[str] = set()
    for article in read_json(require(data_dir, SQUAD))["data"]:
        for p_index, paragraph in enumerate(article["paragraphs"]):
            for s_index, sentence in enumerate(_SENTENCE_END.split(paragraph["context"])):
                years = set(_YEAR.findall(sentence))
                if len(years) != 1 or not 40 <= len(sentence) <= 240 or sentence in seen:
                    continue
                seen.add(sentence)
                prompt = (
                    "Extract the main name and the year from the sentence. "
                    'Reply with JSON only: {"name": string, "year": integer}.\n'
                    f"Sentence: {sentence}"
                )
                tasks.append(
                    Task(
                        kind="json",
                        source_id=f"squad:{article['title']}:{p_index}:{s_index}",
                        messages=[{"role": "user", "content": prompt}],
                        expect=Expect(json_schema=NAME_YEAR_SCHEMA, reference=years.pop()),
                        max_tokens=MAX_TOKENS,
                        options={"response_format": response_format("name_year", NAME_YEAR_SCHEMA)},
                    )
                )
    return tasks


def _numbers_tasks(data_dir: Path) -> list[Task]:
    tasks: list[Task] = []
    for number, row in enumerate(read_jsonl(require(data_dir, GSM8K)), start=1):
        if number > _GSM8K_NUMBERS_LIMIT:
            break
        text = row["question"]
        if not _NUMBER.search(text):
            continue
        prompt = (
            "List every number that appears in the text. "
            'Reply with JSON only: {"numbers": [number, ...]}.\n'
            f"Text: {text}"
        )
        tasks.append(
            Task(
                kind="json",
                source_id=f"gsm8k:test:{number}:numbers",
                messages=[{"role": "user", "content": prompt}],
                expect=Expect(json_schema=NUMBERS_SCHEMA),
                max_tokens=MAX_TOKENS,
                options={"response_format": response_format("numbers", NUMBERS_SCHEMA)},
            )
        )
    return tasks
