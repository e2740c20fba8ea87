"""Where the builders find their public data sets, and reading them raw.

The product ships small subsets in ``traffic/data/`` (see its NOTICE.md); the same
folder layout holds the full sets, so ``data_dir`` can point at either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from traffic.errors import WorkloadError

__all__ = [
    "AZURE_TRACE",
    "BFCL_SETS",
    "GSM8K",
    "SHIPPED_DATA_DIR",
    "SQUAD",
    "read_json",
    "read_jsonl",
    "require",
]

SHIPPED_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
AZURE_TRACE = "azure_llm_2023/AzureLLMInferenceTrace_code.csv"
BFCL_SETS = ("bfcl/BFCL_v4_simple_python.json", "bfcl/BFCL_v4_multiple.json")
SQUAD = "squad/squad_v2_dev_subset_5articles.json"
GSM8K = "gsm8k/test.jsonl"


def require(data_dir: Path, relative: str) -> Path:
    """The data file, or a :class:`WorkloadError` saying which one is missing."""
    path = Path(data_dir) / relative
    if not path.is_file():
        raise WorkloadError(f"data file {path} not found (is data_dir right?)")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All rows at once: the files are small, and no half-read handle outlives the call."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)
