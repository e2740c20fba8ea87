"""Importers of public trace formats: Azure, BurstGPT and ShareGPT-style conversations.

``import_trace(path, ImportOptions(format=…), quarantine_path=…)`` reads a trace,
keeps a time window, thins it by whole sessions to a target rate, caps prompt lengths
in the middle and returns :class:`~traffic.format.TrafficRecord` items for
:func:`traffic.writer.write_traffic` (docs/traffic-format.md, "Importing traces").
"""

from traffic.importers.importer import IMPORT_FORMATS, ImportResult, TraceFormat, import_trace
from traffic.importers.options import ImportOptions, TraceRequest

__all__ = [
    "IMPORT_FORMATS",
    "ImportOptions",
    "ImportResult",
    "TraceFormat",
    "TraceRequest",
    "import_trace",
]
