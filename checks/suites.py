"""The gate's rules: each check's judged metrics, built from the thresholds.

A rule is one metric column of ``check_<name>`` with its allowed range, evaluated
on the buckets with enough spans; it becomes a GX ``ExpectColumnValuesToBeBetween``
and, for each bucket outside the range, a sentence for the gate message. Each
check's spec (checks/registry.py) names the function below that builds its rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from checks.thresholds import Thresholds

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    check: str
    metric: str                      # column of check_<check>
    min_value: float | None
    max_value: float | None
    allowed: float                   # the user's threshold, for the message
    # the sentence for a row outside the range: a function of (row, allowed), or a
    # template formatted with the row's columns and {allowed}
    describe: Callable[[Row, float], str] | str
    # rows the rule judges: column == value for every pair (GX row_condition)
    where: tuple[tuple[str, Any], ...] = (("insufficient", False),)
    # buckets reported but never judged: 'unknown' holds spans the check cannot place
    # (failures without token counts, sends before the first telemetry sample); they
    # show in the check table and count in other checks' error rates
    skip_buckets: tuple[str, ...] = ("unknown",)
    # the expectation's name where one metric column has two rules (run and tenant)
    label: str | None = None
    # a breach that can have *caused* the night's other breaches (a neighbour starving
    # the engines): the verdict is INVALID even when the night as a whole breached
    confounds: bool = False
    # where the user sets the limit: the thresholds key (documented, docs/checks.md)
    key: str = ""

    @property
    def name(self) -> str:
        return self.label or self.metric

    def message(self, row: Row) -> str:
        """What the gate says of a row outside the range."""
        if isinstance(self.describe, str):
            return self.describe.format(**row, allowed=self.allowed)
        return self.describe(row, self.allowed)

    @property
    def kind(self) -> str:
        """'max' when the rule is an upper bound, else 'min'."""
        return "max" if self.max_value is not None else "min"

    def bound(self, observed: float | None) -> float | None:
        """The bound a value is judged against: the upper one if it is crossed or the
        only one, else the lower one."""
        if self.max_value is not None and (
            self.min_value is None or (observed is not None and observed > self.max_value)
        ):
            return self.max_value
        return self.min_value


def _reference(row: Row, noun: str) -> str:
    """How a bucket check's message names what the bucket was compared with."""
    if row["reference"] == "aggregate":
        return "run aggregate"
    return f"'{row['reference']}' {noun} reference"


def _drop(noun: str) -> Callable[[Row, float], str]:
    def describe(row: Row, allowed: float) -> str:
        ref = _reference(row, noun)
        noise = row.get("se_delta_mean")
        margin = f" ± {noise:.2f}" if noise else ""
        return (f"{noun} '{row['bucket']}' mean quality {row['mean_quality']:.2f} is "
                f"{-row['delta_mean']:.2f}{margin} below the {ref} "
                f"{row['ref_mean_quality']:.2f} (allowed {allowed:.2f}, n={row['n']})")
    return describe


def _errors(noun: str) -> Callable[[Row, float], str]:
    def describe(row: Row, allowed: float) -> str:
        ref = _reference(row, noun)
        return (f"{noun} '{row['bucket']}' error/timeout rate {row['error_rate']:.0%} is "
                f"{row['delta_error_rate']:.0%} above the {ref} {row['ref_error_rate']:.0%} "
                f"(allowed {allowed:.0%}, n={row['n']})")
    return describe


def _replica(row: Row, allowed: float) -> str:
    side = "below" if row["delta_mean"] < 0 else "above"
    noise = row.get("se_delta_mean")
    margin = f" ± {noise:.2f}" if noise else ""
    return (f"replica '{row['bucket']}' mean quality {row['mean_quality']:.2f} is "
            f"{abs(row['delta_mean']):.2f}{margin} {side} the cohort median "
            f"{row['ref_mean_quality']:.2f} on the same golden prompts (allowed {allowed:.2f})")


def _tenant_reference(row: Row) -> str:
    return "the other tenants' median" if row["reference"] == "other_tenants" else "the aggregate"


def _tenant_latency(row: Row, allowed: float) -> str:
    level = f"p{row['tail_latency_q'] * 100:.0f}"
    p_slower = row.get("p_slower")
    ranked = ("" if p_slower is None or p_slower != p_slower  # NaN from a frame
              else f"; slower than another tenant's request {p_slower:.0%} of the time")
    return (f"tenant '{row['bucket']}' {level} latency {row['tail_latency_ms']:.0f} ms is "
            f"{row['tail_latency_ratio']:.2f}x {_tenant_reference(row)} {level} "
            f"{row['ref_tail_latency_ms']:.0f} ms (allowed {allowed:.2f}x, n={row['n']}"
            f"{ranked})")


def _tenant_tail(row: Row, allowed: float) -> str:
    return (f"tenant '{row['bucket']}' p05 quality {row['p05_quality']:.2f} is "
            f"{-row['delta_p05']:.2f} below {_tenant_reference(row)} p05 "
            f"{row['ref_p05_quality']:.2f} (allowed {allowed:.2f})")


def _evicted_share(row: Row, allowed: float) -> str:
    return (f"{row['evicted_share']:.0%} of the requests reusing a shared context their "
            f"replica had computed found it evicted (allowed {allowed:.0%}, "
            f"n={row['n']} evicted)")


def _slo(what: str, fmt: str, side: str) -> Callable[[Row, float], str]:
    def describe(row: Row, allowed: float) -> str:
        scope = "of the night" if row["scope"] == "run" else (
            "of the golden set" if row["scope"] == "golden"
            else f"for tenant '{row['bucket'].removeprefix('tenant:')}'")
        how = _failures(row) if _SLO_METRIC[what] == "error_share" else ""
        return (f"{what} {scope} {fmt.format(row[_SLO_METRIC[what]])} is {side} the SLO "
                f"{fmt.format(allowed)} (n={row['n']}{how})")
    return describe


def _failures(row: Row) -> str:
    """How the requests failed: ': 29 timeouts, 1 error; 24 of them while a replica was
    starting'; nothing for a row checked before migration 013."""
    timeouts, errors, starting = (row.get(key) for key in
                                  ("timeouts", "errors", "failed_while_starting"))
    if pd.isna(timeouts) or pd.isna(errors):
        return ""
    kinds = [f"{n:.0f} {noun}{'s' if n != 1 else ''}"
             for n, noun in ((timeouts, "timeout"), (errors, "error")) if n]
    if not kinds:
        return ""
    return ": " + ", ".join(kinds) + (
        f"; {starting:.0f} of them while a replica was starting"
        if not pd.isna(starting) and starting else "")


_SLO_METRIC = {"error/timeout share": "error_share", "p99 TTFT": "p99_ttft_ms",
               "p99 latency": "p99_latency_ms", "goodput": "goodput",
               "mean quality": "mean_quality"}


def _history(row: Row, allowed: float) -> str:
    metric = row["metric"]
    as_share = metric in ("error_rate", "goodput", "agreement")
    as_ms = metric.endswith("_ms")

    def show(value: float | None) -> str:
        if value is None:
            return "?"
        return f"{value:.0%}" if as_share else f"{value:.0f} ms" if as_ms else f"{value:.2f}"

    if metric == "paired_quality":
        return (f"golden prompts score {-row['observed']:.2f} lower than on the baseline "
                f"nights, prompt by prompt (allowed {row['margin']:.2f}, "
                f"n={row['n']} prompts)")
    what = {"agreement": "golden exact-agreement rate", "error_rate": "error/timeout share",
            "mean_quality": "mean quality", "goodput": "goodput",
            "p99_latency_ms": "p99 latency", "p99_ttft_ms": "p99 TTFT"}.get(metric, metric)
    bucket = row["bucket"].rsplit(":", 1)[0]
    return (f"'{bucket}' {what} {show(row['observed'])} is worse than every one of "
            f"the {row['baseline_nights']} baseline nights (worst {show(row['baseline_worst'])}"
            f", median {show(row['baseline_median'])}) by more than the margin "
            f"{show(row['margin'])} (n={row['n']})")


def _measured(what: str) -> Callable[[Row, float], str]:
    def describe(row: Row, allowed: float) -> str:
        return f"{what}: {row['detail'] or row['bucket']} (allowed {allowed:g})"
    return describe


def _host(row: Row, allowed: float) -> str:
    return f"the host was busy with other work: {row['detail']} (allowed {allowed:.0%})"


def _lag(row: Row, allowed: float) -> str:
    return (f"the replay fell behind its schedule: p99 send lag {row['lag_p99_ms']:.0f} ms "
            f"(allowed {allowed:.0f} ms, n={row['n']})")


_RUN = (("insufficient", False), ("scope", "run"))
_TENANT = (("insufficient", False), ("scope", "tenant"))
_GOLDEN = (("insufficient", False), ("scope", "golden"))


def slo_rules(t: Thresholds) -> list[Rule]:
    """The night in absolute terms: a fault on every replica still breaches these."""
    slo = t.slo
    return [
        Rule("slo", "error_share", None, slo.max_error_share, slo.max_error_share,
             _slo("error/timeout share", "{:.0%}", "above"), where=_RUN,
             key="slo.max_error_share"),
        Rule("slo", "error_share", None, slo.max_tenant_error_share,
             slo.max_tenant_error_share, _slo("error/timeout share", "{:.0%}", "above"),
             where=_TENANT, label="tenant_error_share", key="slo.max_tenant_error_share"),
        Rule("slo", "goodput", slo.min_goodput, None, slo.min_goodput,
             _slo("goodput", "{:.0%}", "below"), where=_RUN, key="slo.min_goodput"),
        *[Rule("slo", metric, None, ceiling, ceiling,
               _slo(what, "{:.0f} ms", "above"), where=_RUN, key=f"slo.max_{metric}")
          for metric, what, ceiling in (("p99_ttft_ms", "p99 TTFT", slo.max_p99_ttft_ms),
                                        ("p99_latency_ms", "p99 latency",
                                         slo.max_p99_latency_ms))
          if ceiling is not None],  # a p99 ceiling is optional (docs/checks.md)
        Rule("slo", "mean_quality", slo.min_golden_quality, None, slo.min_golden_quality,
             _slo("mean quality", "{:.2f}", "below"), where=_GOLDEN,
             label="golden_quality", key="slo.min_golden_quality"),
    ]


def history_rules(t: Thresholds) -> list[Rule]:
    """Against the accepted baseline: excess > 0 is worse than every baseline night by
    more than their spread, tonight's noise and the margin (history.sql)."""
    return [Rule("history", "excess", None, 0.0, 0.0, _history, key="history.*_margin")]


def measurement_rules(t: Thresholds) -> list[Rule]:
    """The measurement: a breach here makes the run INVALID."""
    m = t.measurement
    return [
        Rule("measurement", "missing_share", None, m.max_missing_share, m.max_missing_share,
             _measured("requests without a span"),
             where=(("insufficient", False), ("item", "spans")), label="missing_spans",
             key="measurement.max_missing_share"),
        Rule("measurement", "lag_p99_ms", None, m.max_lag_p99_ms, m.max_lag_p99_ms, _lag,
             where=(("insufficient", False), ("item", "schedule_lag")),
             key="measurement.max_lag_p99_ms"),
        Rule("measurement", "gap_share", None, m.max_telemetry_gap_share,
             m.max_telemetry_gap_share, _measured("telemetry gaps"),
             where=(("insufficient", False), ("item", "telemetry")),
             key="measurement.max_telemetry_gap_share"),
        Rule("measurement", "identified_share", m.min_identified_share, None,
             m.min_identified_share, _measured("replica ids"),
             where=(("insufficient", False), ("item", "replica_ids")),
             key="measurement.min_identified_share"),
        # Other work on a host the cluster shares takes its engines' CPU: the night's
        # timeouts are then the neighbour's, not the cluster's.
        Rule("measurement", "foreign_cpu_share", None, m.max_foreign_cpu_share,
             m.max_foreign_cpu_share, _host,
             where=(("insufficient", False), ("item", "host_cpu")), confounds=True,
             key="measurement.max_foreign_cpu_share"),
    ]


def replica_skew_rules(t: Thresholds) -> list[Rule]:
    """A replica is sick when it answers worse than its cohort; with two replicas the
    median sits between them, and only the worse one is the finding. A drop counts
    only when significant (delta + z * the paired SE < 0)."""
    skew = t.replica_skew.max_abs_delta_mean
    return [Rule("replica_skew", "delta_mean_upper", -skew, None, skew, _replica,
                 key="replica_skew.max_abs_delta_mean")]


def autoscaling_lag_rules(t: Thresholds) -> list[Rule]:
    """Bucket drops are judged at their optimistic end (delta + z * SE); errors and
    timeouts at their pessimistic-for-the-alarm end (delta - z * SE), the sharp signal
    of a burst the cluster did not absorb. 'at_capacity': saturated at the deployment's
    replica ceiling, not a lag."""
    lag, errors = t.autoscaling_lag.max_drop_mean, t.max_error_rate_increase
    skip = ("unknown", "at_capacity")
    return [
        Rule("autoscaling_lag", "delta_mean_upper", -lag, None, lag, _drop("bucket"),
             skip_buckets=skip, key="autoscaling_lag.max_drop_mean"),
        Rule("autoscaling_lag", "delta_error_rate_lower", None, errors, errors,
             _errors("bucket"), skip_buckets=skip, key="max_error_rate_increase"),
    ]


def kv_cache_eviction_rules(t: Thresholds) -> list[Rule]:
    """Quality by cache-hit bucket is diagnostic, not judged: vLLM recomputes evicted
    blocks, so answers hold, and which requests hit the cache follows what they share
    with earlier ones, which no stratum removes (healthy nights failed on a 'medium'
    bucket: 0.08 vs 0.28 raw-by-class in the issue's demo, 0.12 vs 0.28 by class x size
    here). The eviction itself is judged, and the cache-hit buckets' errors."""
    kv, errors = t.kv_cache_eviction, t.max_error_rate_increase
    return [
        Rule("kv_cache_eviction", "delta_error_rate_lower", None, errors, errors,
             _errors("bucket"), where=(("insufficient", False), ("dimension", "cache_hit")),
             key="max_error_rate_increase"),
        Rule("kv_cache_eviction", "evicted_share", None, kv.max_evicted_share,
             kv.max_evicted_share, _evicted_share,
             where=(("insufficient", False), ("dimension", "prefix_reuse")),
             key="kv_cache_eviction.max_evicted_share"),
    ]


def traffic_pattern_drift_rules(t: Thresholds) -> list[Rule]:
    """As autoscaling_lag's, per traffic pattern; 'below_ceiling': load the autoscaler
    had room for, autoscaling_lag's to judge."""
    drift, errors = t.traffic_pattern_drift.max_drop_mean, t.max_error_rate_increase
    skip = ("unknown", "below_ceiling")
    return [
        Rule("traffic_pattern_drift", "delta_mean_upper", -drift, None, drift,
             _drop("pattern"), skip_buckets=skip, key="traffic_pattern_drift.max_drop_mean"),
        Rule("traffic_pattern_drift", "delta_error_rate_lower", None, errors, errors,
             _errors("pattern"), skip_buckets=skip, key="max_error_rate_increase"),
    ]


def tenant_fairness_rules(t: Thresholds) -> list[Rule]:
    fair, errors = t.tenant_fairness, t.max_error_rate_increase
    return [
        # A starved tenant's requests time out: at the client timeout its p99 equals the
        # others' and its p05 quality is 0 like theirs, so only its error share shows it
        # (heavy-tenant on a float32 host: small 63 % timeouts vs big 5 %, ratio 1.00).
        Rule("tenant_fairness", "delta_error_rate_lower", None, errors, errors,
             _errors("tenant"), key="max_error_rate_increase"),
        # the tail its sample can estimate (tenant_fairness.sql): a p99 of 28 spans is
        # the slowest request, and one slow answer is not a starved tenant; judged
        # only for a tenant whose latencies rank above the others' beyond chance
        Rule("tenant_fairness", "tail_latency_ratio", None, fair.max_tail_latency_ratio,
             fair.max_tail_latency_ratio, _tenant_latency,
             where=(("insufficient", False), ("measurably_slower", True)),
             key="tenant_fairness.max_tail_latency_ratio"),
        Rule("tenant_fairness", "delta_p05", -fair.max_tail_drop, None, fair.max_tail_drop,
             _tenant_tail, key="tenant_fairness.max_tail_drop"),
    ]


def rules(t: Thresholds) -> list[Rule]:
    """Every registered check's rules (checks/registry.py), in the order they run."""
    from checks.registry import specs

    return [rule for spec in specs() for rule in spec.rules(t)]
