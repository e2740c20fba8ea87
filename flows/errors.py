"""Exceptions of the flows package: why a nightly run ends Failed.

    RunFailed                 a run that must end in a Failed state; str() is the message
    ├── InfrastructureFailure the stack or its endpoint never became usable ("infrastructure: …")
    └── ConfigurationError    a parameter or input file is unusable ("configuration: …")

A breached gate is a verdict, not an exception: from the typed ``GateResult`` the flow
returns ``Failed`` (named ``Invalid`` for an INVALID verdict) with the gate's paragraph
as its message, so ``prefect deployment run … --watch`` exits non-zero and the
notification names the checks. The two exceptions are mapped at the boundary
(``raise … from exc``) so their first word tells the on-call person where to look.
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "InfrastructureFailure", "RunFailed"]


class RunFailed(Exception):
    """Base class: the run cannot pass; the message is what the Failed state carries."""


class InfrastructureFailure(RunFailed):
    """The stack never became healthy, the dashboard or the endpoint did not answer."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail if detail.startswith("infrastructure:") else
                         f"infrastructure: {detail}")


class ConfigurationError(RunFailed):
    """A serve config, traffic source or thresholds file cannot be used."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail if detail.startswith("configuration:") else
                         f"configuration: {detail}")

