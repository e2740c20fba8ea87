"""Thresholds: the one YAML file (checks/thresholds.yaml) the user edits.

Check parameters (bucket edges, window length) are bound into the check SQL by
name; gate limits (``max_*``) drive the expectations. Unknown keys are errors. A file
that starts ``extends: <path>`` is an overlay holding only the keys that differ
(scenarios/thresholds.yaml extends checks/thresholds.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from checks.errors import ThresholdsError
from checks.rubrics.llm_judge import JudgeConfig

DEFAULT_PATH = Path(__file__).with_name("thresholds.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplicaSkew(_Section):
    max_abs_delta_mean: float = Field(default=0.02, ge=0, le=1,
                                      description="Allowed distance from the cohort median.")


class AutoscalingLag(_Section):
    warm_at: float = Field(default=2, gt=0, description="Saturation where idle ends.")
    saturating_at: float = Field(default=8, gt=0)
    scaling_at: float = Field(default=16, gt=0)
    max_drop_mean: float = Field(default=0.05, ge=0, le=1, description="Allowed drop below idle.")

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingLag:
        if not self.warm_at < self.saturating_at < self.scaling_at:
            raise ValueError("need warm_at < saturating_at < scaling_at")
        return self


class KvCacheEviction(_Section):
    kv_high: float = Field(default=0.85, ge=0, le=1)
    kv_medium: float = Field(default=0.55, ge=0, le=1)
    max_drop_mean: float = Field(default=0.05, ge=0, le=1, description="Allowed drop below high.")
    min_shared_tokens: int = Field(
        default=256, ge=1, description="Shortest shared context the prefix_reuse dimension follows."
    )
    max_evicted_share: float = Field(
        default=0.5, ge=0, le=1, description="Allowed share of context reuses finding it evicted."
    )

    @model_validator(mode="after")
    def _ordered(self) -> KvCacheEviction:
        if not self.kv_medium < self.kv_high:
            raise ValueError("need kv_medium < kv_high")
        return self


class TrafficPatternDrift(_Section):
    window_s: float = Field(default=60, gt=0)
    burst_factor: float = Field(default=2.5, gt=1)
    sustained_factor: float = Field(default=0.7, gt=0)
    per_replica_capacity: float = Field(default=5, gt=0)
    max_drop_mean: float = Field(default=0.05, ge=0, le=1, description="Allowed drop below steady.")


class TenantFairness(_Section):
    max_tail_latency_ratio: float = Field(
        default=1.5, gt=0,
        # the name it had while the tail was always the p99
        validation_alias=AliasChoices("max_tail_latency_ratio", "max_p99_latency_ratio"),
        description="Allowed tenant tail latency over the other tenants' median tail.")
    tail_spans: int = Field(
        default=5, ge=1,
        description="Fewest spans beyond the latency quantile (p75/p90/p95/p99) judged.")
    max_tail_drop: float = Field(default=0.05, ge=0, le=1)


class Slo(_Section):
    """Absolute service levels of the night: they do not move with the night."""

    modes: list[str] = Field(
        default_factory=lambda: ["replay", "pinned"],
        description="Span modes the SLOs judge (the tenant burst is a deliberate overload).")
    max_error_share: float = Field(default=0.05, ge=0, le=1,
                                   description="Errors + timeouts over all judged requests.")
    max_tenant_error_share: float = Field(default=0.10, ge=0, le=1,
                                          description="The same, for any one tenant.")
    max_p99_ttft_ms: float | None = Field(
        default=None, gt=0, description="The night's p99 TTFT ceiling; null: not judged.")
    max_p99_latency_ms: float | None = Field(
        default=None, gt=0, description="The night's p99 latency ceiling; null: not judged.")
    request_ttft_ms: float = Field(default=30_000, gt=0,
                                   description="Per-request TTFT SLO (counts for goodput).")
    request_latency_ms: float = Field(default=60_000, gt=0,
                                      description="Per-request latency SLO (counts for goodput).")
    min_goodput: float = Field(default=0.90, ge=0, le=1,
                               description="Share of requests ok within both request SLOs.")
    min_golden_quality: float = Field(default=0.15, ge=0, le=1,
                                      description="Mean quality floor of the pinned golden set.")


class History(_Section):
    """Tonight against the accepted baseline (checks/sql/history.sql)."""

    nights: int = Field(default=3, ge=1, description="Passing nights the baseline holds.")
    min_samples_p99: int = Field(default=1000, ge=1,
                                 description="Fewest spans a p99 is compared on.")
    quality_margin: float = Field(default=0.05, ge=0, le=1)
    share_margin: float = Field(default=0.05, ge=0, le=1,
                                description="Error share and goodput.")
    agreement_margin: float = Field(default=0.15, ge=0, le=1,
                                    description="Golden exact-agreement rate.")
    latency_margin_ratio: float = Field(
        default=0.5, ge=0, description="Median and p99 margin, a share of the baseline median.")
    max_host_speed_gap: float = Field(
        default=1.3, ge=1.0,
        description="Latency and goodput are compared only with nights whose host's memory "
                    "probe was within this ratio of tonight's, where the cluster runs on "
                    "the flow's host (serving/host_speed.py).")


class Measurement(_Section):
    """When the measurement itself cannot be trusted, the run is INVALID."""

    max_missing_share: float = Field(default=0.0, ge=0, le=1,
                                     description="Planned requests without a span.")
    max_lag_p99_ms: float = Field(default=5_000, gt=0,
                                  description="p99 of the replay's send lag.")
    telemetry_bin_s: float = Field(default=2.0, gt=0)
    max_telemetry_gap_share: float = Field(default=0.25, ge=0, le=1)
    min_identified_share: float = Field(default=0.5, ge=0, le=1,
                                        description="Pinned requests naming their replica.")
    max_foreign_cpu_share: float = Field(
        default=0.25, ge=0, le=1,
        description="Share of the host's CPU other work may take while the replay runs, "
                    "when the cluster shares the host (serving/host_cpu.py).")


class Thresholds(_Section):
    min_samples: int = Field(default=20, ge=1, description="Fewer spans: bucket insufficient.")
    fail_on_insufficient: bool = False
    significance_z: float = Field(
        default=2.0, ge=0.0,
        description="Bucket drops are judged at delta + z * standard error (0: raw delta).",
    )
    max_error_rate_increase: float = Field(
        default=0.05, ge=0.0, le=1.0,
        description="No bucket's share of errors/timeouts more than this above its reference.",
    )
    replica_skew: ReplicaSkew = Field(default_factory=ReplicaSkew)
    autoscaling_lag: AutoscalingLag = Field(default_factory=AutoscalingLag)
    kv_cache_eviction: KvCacheEviction = Field(default_factory=KvCacheEviction)
    traffic_pattern_drift: TrafficPatternDrift = Field(default_factory=TrafficPatternDrift)
    tenant_fairness: TenantFairness = Field(default_factory=TenantFairness)
    slo: Slo = Field(default_factory=Slo)
    history: History = Field(default_factory=History)
    measurement: Measurement = Field(default_factory=Measurement)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)

    def section(self, check: str) -> BaseModel:
        """One check's thresholds: its section of the file, else its defaults (a check
        registered with ``settings``, checks/registry.py), else none."""
        found = getattr(self, check, None)
        if isinstance(found, BaseModel):
            return found
        from checks.registry import spec

        settings = spec(check).settings
        return settings() if settings is not None else _Section()


def _model() -> type[Thresholds]:
    """The model a file is validated with: :class:`Thresholds`, plus a section per
    registered check that brings its own (``CheckSpec.settings``)."""
    from pydantic import create_model

    from checks.registry import sections

    extra: dict[str, Any] = {name: (model, Field(default_factory=model))
                             for name, model in sections().items()
                             if name not in Thresholds.model_fields}
    return create_model("Thresholds", __base__=Thresholds, **extra) if extra else Thresholds


EXTENDS = "extends"


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Read and validate a thresholds YAML (default: checks/thresholds.yaml).

    A file with a top-level ``extends: <path>`` (relative to the file) is an overlay:
    its keys are deep-merged over the file it extends, so it holds only what differs.
    An error names the file and the dotted field at fault.
    """
    source = Path(path) if path is not None else DEFAULT_PATH
    layers = _layers(source, seen=())
    merged: dict[str, Any] = {}
    for _, raw in reversed(layers):  # the base first, each overlay over it
        merged = _deep_merge(merged, raw)
    try:
        return _model().model_validate(merged)
    except ValidationError as exc:
        problems = [(_blame(layers, err["loc"]), _dotted(err["loc"]), err["msg"])
                    for err in exc.errors()]
        file, field, _ = problems[0]
        message = "; ".join(f"{f}, field '{k}': {m}" if k else f"{f}: {m}"
                            for f, k, m in problems)
        raise ThresholdsError(message, file=str(file), field=field or None) from exc


def _layers(source: Path, seen: tuple[Path, ...]) -> list[tuple[Path, dict[str, Any]]]:
    """``[(file, its keys)]``, the file first, then the one it extends, and so on."""
    if source.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, source.resolve()))
        raise ThresholdsError(f"{source}: field '{EXTENDS}': a cycle ({chain})",
                              file=str(source), field=EXTENDS)
    try:
        raw = yaml.safe_load(source.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ThresholdsError(f"{source}: {exc}", file=str(source)) from exc
    if not isinstance(raw, dict):
        raise ThresholdsError(f"{source}: a thresholds file is a mapping of keys, "
                              f"not {type(raw).__name__}", file=str(source))
    base = raw.pop(EXTENDS, None)
    layers = [(source, raw)]
    if base is None:
        return layers
    if not isinstance(base, str) or not base:
        raise ThresholdsError(f"{source}, field '{EXTENDS}': a path to a thresholds file, "
                              f"got {base!r}", file=str(source), field=EXTENDS)
    return layers + _layers(source.parent / base, (*seen, source.resolve()))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _blame(layers: list[tuple[Path, dict[str, Any]]], loc: tuple[int | str, ...]) -> Path:
    """The file that set the value at ``loc``: the outermost overlay holding it wins."""
    for file, raw in layers:
        node: Any = raw
        for part in loc:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break
        else:
            return file
    return layers[0][0]
