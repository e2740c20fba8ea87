"""Exceptions of the checks package.

    ChecksError
    ├── ThresholdsError   the thresholds YAML is missing, not YAML, or invalid
    └── RunNotFound       no such run id in the warehouse

A breached gate is not an exception: ``evaluate_run`` returns a ``GateResult``
with ``passed=False`` and the CLI turns it into exit code 1.
"""

from __future__ import annotations


class ChecksError(Exception):
    """Base class of checks errors."""


class ThresholdsError(ChecksError, ValueError):
    """The thresholds file is missing, not YAML, or does not validate.

    ``file`` is the file that holds the problem (an overlay or the file it extends) and
    ``field`` the dotted key, when one is to blame.
    """

    def __init__(self, message: str, *, file: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.field = field


class RunNotFound(ChecksError, LookupError):
    """The run id has no row in the warehouse's runs table."""
