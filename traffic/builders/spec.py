"""``WorkloadSpec``: everything that decides a built workload, validated at the boundary.

A spec is what the YAML files in ``traffic/specs/`` hold and what CLI flags fill in.
Same spec (including ``seed``) → the same records, byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from traffic.builders.arrivals import ARRIVAL_PROCESSES, ArrivalProcess
from traffic.builders.pool import known_kinds
from traffic.errors import WorkloadError

__all__ = ["DEFAULT_MODEL", "TenantSpec", "WorkloadSpec", "load_spec", "spec_from_mapping"]

DEFAULT_MODEL = "smollm2-135m-instruct"  # the demo stack's served_model_name


class TenantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, description="Share of requests (relative).")
    tasks: list[str] | None = Field(default=None, description="Task kinds; default: the spec's.")


class WorkloadSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="workload", min_length=1, description="Prefix of request ids.")
    seed: int = 0
    arrivals: SerializeAsAny[ArrivalProcess] = Field(description="process: <name> + its params")
    tasks: list[str] = Field(default_factory=lambda: ["json", "tool", "qa", "math"], min_length=1)
    task_weights: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        default=None, description="Relative weight per task kind; missing kinds weigh 1."
    )
    tenants: list[TenantSpec] = Field(
        default_factory=lambda: [TenantSpec(id="default")], min_length=1
    )
    speedup: float = Field(default=1.0, gt=0, description="Source seconds per replay second.")
    duration_s: float | None = Field(default=None, gt=0, description="Source-time limit.")
    max_requests: int | None = Field(default=None, gt=0)
    model: str = DEFAULT_MODEL
    max_tokens: int = Field(default=128, ge=1, le=4096, description="Caps each task's budget.")
    temperature: float = Field(default=0.0, ge=0, le=2)
    data_dir: Path | None = Field(default=None, description="Data sets; default: traffic/data.")

    @field_validator("arrivals", mode="before")
    @classmethod
    def _process_by_name(cls, value: Any) -> Any:
        """Validate the arrival block against the parameters of the process it names."""
        if isinstance(value, ArrivalProcess):
            return value
        if not isinstance(value, dict) or "process" not in value:
            raise ValueError("arrivals needs 'process: <name>'")
        process = ARRIVAL_PROCESSES.get(value["process"])
        if process is None:
            known = ", ".join(sorted(ARRIVAL_PROCESSES))
            raise ValueError(f"unknown arrival process {value['process']!r}; known: {known}")
        return process.model_validate(value)

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadSpec:
        kinds = set(known_kinds())
        named = set(self.tasks) | {k for t in self.tenants for k in (t.tasks or [])}
        named |= set(self.task_weights or {})
        if unknown := sorted(named - kinds):
            raise ValueError(f"unknown task kinds {unknown}; known: {sorted(kinds)}")
        weights = self.task_weights or {}
        for tenant in self.tenants:
            if not any(weights.get(kind, 1.0) > 0 for kind in tenant.tasks or self.tasks):
                raise ValueError(f"tenant {tenant.id!r} has no task kind with a weight above 0")
        ids = [t.id for t in self.tenants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"tenant ids repeat: {ids}")
        if not self.arrivals.finite and self.duration_s is None and self.max_requests is None:
            raise ValueError(
                f"{self.arrivals.process!r} never ends: set duration_s or max_requests"
            )
        return self


def load_spec(path: str | Path, **overrides: Any) -> WorkloadSpec:
    """Read a YAML spec, apply non-None ``overrides``, validate; errors name the file.

    ``arrivals={...}`` merges into the spec's arrival block when it names the same
    process (or none), and replaces it when it names another.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WorkloadError(f"cannot read workload spec {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise WorkloadError(f"workload spec {path} must be a mapping")
    arrivals = overrides.pop("arrivals", None)
    raw.update({key: value for key, value in overrides.items() if value is not None})
    if arrivals:
        block = raw.get("arrivals")
        current: dict[str, Any] = block if isinstance(block, dict) else {}
        same = arrivals.get("process") in (None, current.get("process"))
        raw["arrivals"] = {**current, **arrivals} if same else dict(arrivals)
    return spec_from_mapping(raw, source=str(path))


def spec_from_mapping(raw: dict[str, Any], *, source: str = "from flags") -> WorkloadSpec:
    """Validate a spec mapping; a :class:`WorkloadError` lists every problem."""
    try:
        return WorkloadSpec.model_validate(raw)
    except ValidationError as exc:
        raise WorkloadError(f"invalid workload spec {source}:\n{exc}") from exc
