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
    """The thresholds file is missing, not YAML, or does not validate."""


class RunNotFound(ChecksError, LookupError):
    """The run id has no row in the warehouse's runs table."""
