"""The gate's rules: one expectation suite per check table, built from the thresholds.

A rule is one metric column of ``check_<name>`` with its allowed range, evaluated
on the buckets with enough spans; it becomes a GX ``ExpectColumnValuesToBeBetween``
and, for each bucket outside the range, a sentence for the gate message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from checks.thresholds import Thresholds

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    check: str
    metric: str                      # column of check_<check>
    min_value: float | None
    max_value: float | None
    allowed: float                   # the user's threshold, for the message
    describe: Callable[[Row, float], str]
    # rows the rule judges: column == value for every pair (GX row_condition)
    where: tuple[tuple[str, Any], ...] = (("insufficient", False),)
    # buckets reported but never judged: 'unknown' holds spans the check cannot place
    # (failures without token counts, sends before the first telemetry sample); they
    # show in the check table and count in other checks' error rates
    skip_buckets: tuple[str, ...] = ("unknown",)

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
    return (f"replica '{row['bucket']}' mean quality {row['mean_quality']:.2f} is "
            f"{abs(row['delta_mean']):.2f} {side} the cohort median "
            f"{row['ref_mean_quality']:.2f} (allowed {allowed:.2f})")


def _tenant_reference(row: Row) -> str:
    return "the other tenants' median" if row["reference"] == "other_tenants" else "the aggregate"


def _tenant_latency(row: Row, allowed: float) -> str:
    return (f"tenant '{row['bucket']}' p99 latency {row['p99_latency_ms']:.0f} ms is "
            f"{row['p99_latency_ratio']:.2f}x {_tenant_reference(row)} p99 "
            f"{row['ref_p99_latency_ms']:.0f} ms (allowed {allowed:.2f}x)")


def _tenant_tail(row: Row, allowed: float) -> str:
    return (f"tenant '{row['bucket']}' p05 quality {row['p05_quality']:.2f} is "
            f"{-row['delta_p05']:.2f} below {_tenant_reference(row)} p05 "
            f"{row['ref_p05_quality']:.2f} (allowed {allowed:.2f})")


def _evicted_share(row: Row, allowed: float) -> str:
    return (f"{row['evicted_share']:.0%} of the requests reusing a shared context their "
            f"replica had computed found it evicted (allowed {allowed:.0%}, "
            f"n={row['n']} evicted)")


def rules(t: Thresholds) -> list[Rule]:
    skew = t.replica_skew.max_abs_delta_mean
    lag = t.autoscaling_lag.max_drop_mean
    kv = t.kv_cache_eviction
    drift = t.traffic_pattern_drift.max_drop_mean
    fair = t.tenant_fairness
    errors = t.max_error_rate_increase
    return [
        # A replica is sick when it answers worse than its cohort; with two replicas
        # the median sits between them, and only the worse one is the finding.
        Rule("replica_skew", "delta_mean", -skew, None, skew, _replica),
        # Bucket drops are judged at their optimistic end (delta + z * SE).
        # 'at_capacity': saturated at the deployment's replica ceiling, not a lag
        Rule("autoscaling_lag", "delta_mean_upper", -lag, None, lag, _drop("bucket"),
             skip_buckets=("unknown", "at_capacity")),
        # prompt-length deciles are diagnostic: long prompts may be harder by nature
        Rule("kv_cache_eviction", "delta_mean_upper", -kv.max_drop_mean, None,
             kv.max_drop_mean, _drop("bucket"),
             where=(("insufficient", False), ("dimension", "cache_hit"))),
        # 'below_ceiling': load the autoscaler had room for, autoscaling_lag's to judge
        Rule("traffic_pattern_drift", "delta_mean_upper", -drift, None, drift,
             _drop("pattern"), skip_buckets=("unknown", "below_ceiling")),
        # Errors and timeouts, judged at their pessimistic-for-the-alarm end
        # (delta - z * SE): the sharp signal of a burst the cluster did not absorb.
        Rule("autoscaling_lag", "delta_error_rate_lower", None, errors, errors,
             _errors("bucket"), skip_buckets=("unknown", "at_capacity")),
        Rule("kv_cache_eviction", "delta_error_rate_lower", None, errors, errors,
             _errors("bucket"), where=(("insufficient", False), ("dimension", "cache_hit"))),
        # vLLM recomputes evicted blocks, so answers hold: the eviction itself is judged
        Rule("kv_cache_eviction", "evicted_share", None, kv.max_evicted_share,
             kv.max_evicted_share, _evicted_share,
             where=(("insufficient", False), ("dimension", "prefix_reuse"))),
        Rule("traffic_pattern_drift", "delta_error_rate_lower", None, errors, errors,
             _errors("pattern"), skip_buckets=("unknown", "below_ceiling")),
        Rule("tenant_fairness", "p99_latency_ratio", None, fair.max_p99_latency_ratio,
             fair.max_p99_latency_ratio, _tenant_latency),
        Rule("tenant_fairness", "delta_p05", -fair.max_tail_drop, None, fair.max_tail_drop,
             _tenant_tail),
    ]
