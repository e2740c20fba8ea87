"""A scenario file: which check it should trip, how the stack and traffic differ."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from checks.compute import CHECKS, ROLE
from scenarios.errors import ScenarioError

CATALOG = Path(__file__).parent / "catalog"


class ServeOverlay(BaseModel):
    """Changes to the base ServeConfigV2 (its first application and deployment)."""

    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = Field(default_factory=dict, description="Merged into app args.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    deployment: dict[str, Any] = Field(
        default_factory=dict, description="Merged into the deployment (autoscaling_config …)."
    )
    user_config: dict[str, Any] = Field(default_factory=dict, description="Merged user_config.")


class FlowParameters(BaseModel):
    """Parameters of the ``cluster-eval`` flow for this scenario."""

    model_config = ConfigDict(extra="forbid")

    speedup: float = Field(default=1.0, gt=0)
    golden_rounds: int = Field(default=2, ge=0)
    tenant_burst: dict[str, Any] = Field(default_factory=lambda: {"enabled": False})
    request_timeout_s: float = Field(default=60.0, gt=0)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9-]+$")
    description: str
    catches: Literal[CHECKS] | None = Field(  # type: ignore[valid-type]
        description="The check this fault must fail; null for the healthy baseline."
    )
    signal: Literal["quality", "latency", "errors"] = Field(
        default="quality", description="Which side of the check carries the fault's signal."
    )
    also_fails: list[Literal["slo"]] = Field(
        default_factory=list,
        description="Night-level checks the fault breaches as well, by design: a fault whose "
        "signal is timeouts or errors on a large share of the night also breaks the SLO. "
        "Only night-level checks may be listed; a second bucket check failing is a "
        "confounded check, never an expectation.",
    )
    not_exercised: list[Literal[CHECKS]] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="Checks this scenario sends no traffic for (e.g. replica_skew without "
        "golden rounds): expected 'insufficient', never a silent pass.",
    )
    base_config: str = "serving/configs/embedded-cpu.yaml"
    serve: ServeOverlay = Field(default_factory=ServeOverlay)
    traffic: str = Field(description="Workload spec or traffic file, relative to the repo.")
    thresholds: str | None = None
    flow: FlowParameters = Field(default_factory=FlowParameters)

    @model_validator(mode="after")
    def _target_is_exercised(self) -> Scenario:
        if self.catches is not None and self.catches in self.not_exercised:
            raise ValueError(f"not_exercised lists {self.catches!r}, the check it must fail")
        if self.catches is None and self.also_fails:
            raise ValueError("a healthy scenario (catches: null) cannot expect failures")
        bucket_level = [c for c in self.also_fails if ROLE[c] != "night"]
        if bucket_level:
            raise ValueError(f"also_fails lists bucket checks {bucket_level}")
        return self

    def serve_config(self, root: Path) -> dict[str, Any]:
        """The base ServeConfigV2 with this scenario's overlay applied."""
        config: dict[str, Any] = yaml.safe_load((root / self.base_config).read_text())
        app = config["applications"][0]
        deployment = app["deployments"][0]
        app.setdefault("args", {}).update(copy.deepcopy(self.serve.args))
        app["args"].setdefault("engine_kwargs", {}).update(copy.deepcopy(self.serve.engine_kwargs))
        for key, value in self.serve.deployment.items():
            if isinstance(value, dict) and isinstance(deployment.get(key), dict):
                deployment[key] = {**deployment[key], **value}
            else:
                deployment[key] = value
        deployment["user_config"] = {**deployment.get("user_config", {}), **self.serve.user_config}
        return config


def load_scenario(path: Path) -> Scenario:
    try:
        return Scenario.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(f"{path}: field '{field}': {first['msg']}") from exc


def catalog(names: list[str] | None = None, directory: Path = CATALOG) -> list[Scenario]:
    """Scenarios by name (all of them, healthy first, when ``names`` is empty)."""
    found = {s.name: s for s in (load_scenario(p) for p in sorted(directory.glob("*.yaml")))}
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            raise ScenarioError(f"unknown scenario(s) {unknown}; known: {sorted(found)}")
        return [found[n] for n in names]
    return sorted(found.values(), key=lambda s: (s.catches is not None, s.name))
