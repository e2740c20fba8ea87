"""tool_call_correctness: did the model call the right function with allowed arguments?

Applies when the request declares ``tools`` or the record has ``expect.tool_calls``.

With expectations (BFCL ``possible_answer`` convention: each argument maps to its
list of allowed values; an empty list or one holding ``""`` marks it optional):

* ``expect.tool_calls == []``: 1 when the model made no call, else 0.
* otherwise each expected call is matched to the best unused actual call and scored
  0 for a wrong function name, else ``0.5 + 0.5 * args`` where ``args`` is the share
  of argument checks that pass — one per expected argument (present with an allowed
  value, or absent and optional) and one per unexpected argument (always failing) —
  and ``args`` is 0 when the arguments do not validate against the tool's declared
  parameter schema. The span's score is the sum over expected calls divided by
  ``max(expected, actual)`` calls, so extra calls cost too.

Values compare as BFCL does, loosened where the serving stack cannot matter:
numbers numerically (``5 == 5.0``), strings case- and whitespace-insensitively,
lists element-wise, dicts key-wise; booleans only equal booleans.

Without expectations the rubric checks well-formedness only: 1 when every call
names a declared tool with schema-valid arguments (or no call was made), else 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from checks.rubrics.base import SpanView, register
from checks.rubrics.json_adherence import validator_for
from traffic.bfcl_schema import to_json_schema


def declared_tools(request: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool name → JSON Schema of its parameters, from OpenAI or bare BFCL tool lists."""
    tools: dict[str, dict[str, Any]] = {}
    for tool in request.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function", tool)
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            tools[fn["name"]] = to_json_schema(fn.get("parameters") or {"type": "object"})
    return tools


def _actual_calls(span: SpanView) -> list[tuple[str, Any]]:
    """``(name, arguments)`` pairs; arguments that are not a JSON object stay as-is."""
    calls = []
    for call in span.tool_calls:
        if not isinstance(call, dict):
            continue
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                pass  # stays a string: fails the schema and every argument check
        calls.append((str(fn.get("name", "")), args))
    return calls


def _norm_str(s: str) -> str:
    return " ".join(s.lower().split())


def values_equal(actual: Any, allowed: Any) -> bool:
    if isinstance(actual, bool) or isinstance(allowed, bool):
        return isinstance(actual, bool) and isinstance(allowed, bool) and actual == allowed
    if isinstance(actual, int | float) and isinstance(allowed, int | float):
        return math.isclose(actual, allowed, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(actual, str) and isinstance(allowed, str):
        return _norm_str(actual) == _norm_str(allowed)
    if isinstance(actual, list | tuple) and isinstance(allowed, list | tuple):
        return len(actual) == len(allowed) and all(map(values_equal, actual, allowed))
    if isinstance(actual, dict) and isinstance(allowed, dict):
        # BFCL nests allowed-value lists inside dict answers too
        return set(actual) <= set(allowed) and all(
            _allowed(actual.get(k, _MISSING), v) if isinstance(v, list) else
            (k in actual and values_equal(actual[k], v))
            for k, v in allowed.items()
        )
    return bool(actual == allowed)


_MISSING = object()


def _allowed(actual: Any, allowed: list[Any]) -> bool:
    """Is ``actual`` one of the allowed values (``_MISSING`` when the argument is absent)?"""
    optional = not allowed or "" in allowed
    if actual is _MISSING:
        return optional
    choices = [v for v in allowed if v != ""]
    return not choices or any(values_equal(actual, v) for v in choices)


def score_call(
    name: str, args: Any, expected: Mapping[str, Any], schema: Mapping[str, Any] | None
) -> float:
    if name != expected.get("name"):
        return 0.0
    if not isinstance(args, dict):
        return 0.5
    if schema is not None and not validator_for(schema).is_valid(args):
        return 0.5
    wanted: Mapping[str, list[Any]] = expected.get("arguments") or {}
    checks = [_allowed(args.get(arg, _MISSING), allowed) for arg, allowed in wanted.items()]
    checks += [False for arg in args if arg not in wanted]
    return 0.5 + 0.5 * (sum(checks) / len(checks) if checks else 1.0)


def _well_formed(calls: list[tuple[str, Any]], tools: Mapping[str, dict[str, Any]]) -> float:
    ok = all(
        name in tools and isinstance(args, dict) and validator_for(tools[name]).is_valid(args)
        for name, args in calls
    )
    return 1.0 if ok else 0.0


@register("tool_call_correctness", conditional=True)
def tool_call_correctness(span: SpanView) -> float | None:
    expected = span.expect.get("tool_calls")
    tools = declared_tools(span.request)
    if expected is None and not tools:
        return None
    if span.failed:
        return 0.0
    calls = _actual_calls(span)
    if expected is None:
        return _well_formed(calls, tools)
    if not expected:
        return 0.0 if calls else 1.0
    unused = list(calls)
    total = 0.0
    for exp in expected:
        scored = [(score_call(n, a, exp, tools.get(n)), i) for i, (n, a) in enumerate(unused)]
        if scored:
            best, index = max(scored)
            total += best
            unused.pop(index)
    return total / max(len(expected), len(calls))
