"""The one exception tree of the ``traffic`` package.

::

    TrafficError                 anything traffic raises on purpose
    ├── TrafficFormatError       a traffic file is unusable (file, line, field)
    └── WorkloadError            a workload cannot be built from its spec and data

A malformed *line* is not an exception: the loader quarantines it and keeps going. Only
a malformed *file* (too many bad lines, nothing usable) raises, so a nightly run fails
with a message that names where to look instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TrafficError", "TrafficFormatError", "WorkloadError"]


class TrafficError(Exception):
    """Base class: catch this at a boundary (CLI, flow) to report any traffic failure."""


class TrafficFormatError(TrafficError):
    """A traffic file cannot be used.

    ``line`` is the 1-based line of a JSONL file or the 1-based row of a Parquet file
    (``unit`` says which); ``line`` and ``field`` are ``None`` when the problem is the
    file as a whole.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        unit: str = "line",
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.unit = unit
        where = [part for part in (self.file, _at(unit, line), _field(field)) if part]
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class WorkloadError(TrafficError):
    """A workload spec names something that does not exist or the data cannot serve it."""


def _at(unit: str, line: int | None) -> str | None:
    return f"{unit} {line}" if line is not None else None


def _field(field: str | None) -> str | None:
    return f"field {field!r}" if field else None
