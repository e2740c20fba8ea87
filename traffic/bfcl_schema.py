"""BFCL parameter schemas as JSON Schema: the one translation, for tools and their scoring.

BFCL writes parameter schemas with Python-flavoured types (``dict``, ``float``,
``tuple``, ``any``) and a non-standard ``optional`` flag. OpenAI tools (the workload
builder) and the argument check of ``tool_call_correctness`` (the rubric) both need JSON
Schema, so both call :func:`to_json_schema`. It lives at the top of ``traffic`` with no
imports beyond the standard library, so ``checks`` can import it in either environment.

The translation is keyword-aware: it rewrites ``type`` and drops ``optional`` only
where a schema stands (the schema itself, ``properties``' values, ``items``,
``additionalProperties``, ``anyOf`` / ``oneOf`` / ``allOf``), never inside data such as
``default`` or ``enum``, and a property that happens to be named ``type`` or
``optional`` keeps its name.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BFCL_TYPES", "to_json_schema"]

# None: drop the type (BFCL "any" allows every JSON value)
BFCL_TYPES: dict[str, str | None] = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "list": "array",
    "int": "integer",
    "bool": "boolean",
    "str": "string",
    "any": None,
}
_DROP = {"optional"}  # BFCL-only flag; "required" already says it
_SUBSCHEMAS = ("items", "additionalProperties", "anyOf", "oneOf", "allOf")


def to_json_schema(schema: Any) -> Any:
    """A BFCL parameter schema as JSON Schema (recursing into properties and items)."""
    if isinstance(schema, list):
        return [to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "type" and isinstance(value, str):
            mapped = BFCL_TYPES.get(value, value)
            if mapped is not None:
                out["type"] = mapped
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMAS:
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    return out
