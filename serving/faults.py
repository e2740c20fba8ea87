"""What the active faults do to one request on one replica — pure functions.

Kept apart from the ASGI middleware so the rules are testable without a server.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from serving.user_config import Fault, UserConfig


@dataclass(frozen=True)
class ReplicaFaults:
    """The faults that apply to this replica, resolved once per reconfigure."""

    drift: list[Fault] = field(default_factory=list)
    error: list[Fault] = field(default_factory=list)
    latency: list[Fault] = field(default_factory=list)
    priority: list[Fault] = field(default_factory=list)

    @classmethod
    def resolve(cls, config: UserConfig, *, rank: int | None, replica_id: str) -> ReplicaFaults:
        mine = [f for f in config.faults if f.targets(rank=rank, replica_id=replica_id)]
        return cls(
            drift=[f for f in mine if f.kind == "drift"],
            error=[f for f in mine if f.kind == "error"],
            latency=[f for f in mine if f.kind == "latency"],
            priority=[f for f in mine if f.kind == "priority"],
        )

    @property
    def kinds(self) -> list[str]:
        return [k for k in ("drift", "error", "latency", "priority") if getattr(self, k)]

    def version_label(self, config_version: str) -> str:
        """``x-config-version``: the version, plus every active fault kind."""
        return "+".join([config_version, *(f"fault:{k}" for k in self.kinds)])

    def latency_s(self) -> float:
        return sum(f.latency_s for f in self.latency)

    def should_fail(self, rng: random.Random) -> bool:
        return any(rng.random() < f.error_rate for f in self.error)

    def rewrite(self, body: dict[str, Any], tenant: str | None = None) -> dict[str, Any]:
        """The request as a drifted (or tenant-ranking) replica would see it."""
        ranked = [f for f in self.priority if tenant is not None and f.tenant == tenant]
        if not self.drift and not ranked:
            return body
        body = dict(body)
        for fault in ranked:
            body["priority"] = fault.priority
        for fault in self.drift:
            if fault.temperature is not None:
                body["temperature"] = fault.temperature
            if fault.max_tokens is not None:
                asked = body.get("max_tokens") or body.get("max_completion_tokens")
                body["max_tokens"] = min(fault.max_tokens, asked or fault.max_tokens)
                body.pop("max_completion_tokens", None)
            if fault.system_prompt is not None:
                messages = [m for m in body.get("messages", []) if m.get("role") != "system"]
                body["messages"] = [{"role": "system", "content": fault.system_prompt}, *messages]
        return body


def apply_sampling_defaults(body: dict[str, Any], config: UserConfig) -> dict[str, Any]:
    """Fill the sampling fields the request left unset from ``user_config``."""
    defaults = config.sampling_defaults.model_dump(exclude_none=True)
    missing = {k: v for k, v in defaults.items() if body.get(k) is None}
    if not missing:
        return body
    if "max_tokens" in missing and body.get("max_completion_tokens") is not None:
        missing.pop("max_tokens")
    return {**body, **missing}
