"""The metric names a PromQL expression selects, for checking rules and dashboards
against what the exporter emits.

Not a PromQL parser, but a careful scanner: string literals, label matchers
(``{...}``), range and subquery brackets (``[...]``), and the label lists of
``by`` / ``without`` / ``on`` / ``ignoring`` / ``group_left`` / ``group_right`` are
removed first; of the identifiers left, a function or aggregation is followed by
``(`` (and must be a real one, so a misspelt function is not taken for a metric),
keywords and Grafana variables are dropped, and what remains are metric names.
"""

from __future__ import annotations

import re

FUNCTIONS = frozenset("""
abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max clamp_min
count count_over_time count_values day_of_month day_of_week day_of_year days_in_month delta
deriv exp floor group histogram_quantile holt_winters hour idelta increase irate label_join
label_replace last_over_time ln log10 log2 mad_over_time max max_over_time min min_over_time
minute month predict_linear present_over_time quantile quantile_over_time rate resets round
scalar sgn sort sort_desc sqrt stddev stddev_over_time stdvar stdvar_over_time sum
sum_over_time time timestamp topk vector year
""".split())
KEYWORDS = frozenset("and or unless by without on ignoring group_left group_right bool offset "
                     "inf nan".split())

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


class UnknownFunction(ValueError):
    pass


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("1", text)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call:
            if name.lower() not in FUNCTIONS and name.lower() not in KEYWORDS:
                raise UnknownFunction(f"{name}( in {expr!r} is not a PromQL function")
            continue
        if name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names
