"""The live-reconfigurable part of a replica: ``user_config`` in the ServeConfigV2 file.

Serve applies a change here with ``reconfigure()`` on the running replicas, without
restarting them. That is what lets a nightly run change sampling defaults, bump the
config version, or inject a fault into one replica while the others keep their KV
cache and ids.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SamplingDefaults(BaseModel):
    """Applied to a request only where the request leaves the field unset."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)


class Fault(BaseModel):
    """A deliberate defect on one replica (or all), for proving the checks catch it.

    ``drift`` rewrites requests before the engine sees them: forced temperature, an
    injected system prompt, truncated ``max_tokens``. ``error`` answers a fraction of
    requests with 503. ``latency`` sleeps before serving. ``priority`` gives one
    tenant's requests (``x-tenant-id``) a vLLM scheduling priority (higher = later), the
    way a platform ranks tenants; it needs the engine started with
    ``scheduling_policy: priority``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["drift", "error", "latency", "priority"]
    replica_rank: int | None = Field(default=None, ge=0, description="Target by Serve rank.")
    replica_id: str | None = Field(default=None, description="Target by Serve replica id.")
    all_replicas: bool = Field(default=False, description="Target every replica.")
    # drift
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    system_prompt: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    # error
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # latency
    latency_s: float = Field(default=0.0, ge=0.0, le=120.0)
    # priority
    tenant: str | None = Field(default=None, description="Tenant id (x-tenant-id) it applies to.")
    priority: int = Field(default=0, description="vLLM priority; higher is scheduled later.")

    @model_validator(mode="after")
    def _one_target(self) -> Fault:
        targets = [self.replica_rank is not None, self.replica_id is not None, self.all_replicas]
        if sum(targets) != 1:
            raise ValueError("a fault needs exactly one of replica_rank, replica_id, all_replicas")
        if self.kind == "drift" and not any(
            v is not None for v in (self.temperature, self.system_prompt, self.max_tokens)
        ):
            raise ValueError("a drift fault needs temperature, system_prompt or max_tokens")
        if self.kind == "error" and self.error_rate == 0.0:
            raise ValueError("an error fault needs error_rate > 0")
        if self.kind == "latency" and self.latency_s == 0.0:
            raise ValueError("a latency fault needs latency_s > 0")
        if self.kind == "priority" and (not self.tenant or self.priority == 0):
            raise ValueError("a priority fault needs a tenant and a priority other than 0")
        return self

    def targets(self, *, rank: int | None, replica_id: str) -> bool:
        if self.all_replicas:
            return True
        if self.replica_id is not None:
            return self.replica_id == replica_id
        return rank is not None and self.replica_rank == rank


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config_version: str = Field(default="0", min_length=1)
    sampling_defaults: SamplingDefaults = Field(default_factory=SamplingDefaults)
    faults: list[Fault] = Field(default_factory=list, description="Off unless listed.")

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> UserConfig:
        return cls.model_validate(raw or {})
