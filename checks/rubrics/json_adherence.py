"""json_adherence: does the answer parse as JSON and validate against the schema?

Applies when the request asked for ``response_format: {"type": "json_schema", ...}``
or the record's ``expect.json_schema`` is set (the latter wins when both are). The
answer may be wrapped in a Markdown fence (```json ... ```); anything else around
the JSON makes it fail. 1 when it parses and validates, else 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema

from checks.rubrics.base import SpanView, register

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def schema_for(span: SpanView) -> Mapping[str, Any] | None:
    expected = span.expect.get("json_schema")
    if isinstance(expected, dict):
        return expected
    fmt = span.request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return schema if isinstance(schema, dict) else {}
    return None


def parse_json_answer(text: str | None) -> Any:
    """The JSON value in ``text`` (a fence tolerated); raises ValueError if none."""
    if text is None:
        raise ValueError("no output")
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def validator_for(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    """A cached validator: the same few schemas repeat across thousands of spans."""
    return _validator(json.dumps(schema, sort_keys=True))


@register("json_adherence", conditional=True)
def json_adherence(span: SpanView) -> float | None:
    schema = schema_for(span)
    if schema is None:
        return None
    if span.failed:
        return 0.0
    try:
        value = parse_json_answer(span.output_text)
    except ValueError:
        return 0.0
    return 1.0 if validator_for(schema).is_valid(value) else 0.0
