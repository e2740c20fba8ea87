"""The repository cites only what it ships: no file points at a style guide outside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ("STYLE" + ".md", ".." + "/shared")  # split so this file does not cite them itself


def test_no_tracked_file_cites_a_document_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")
    citing = [
        name for name in tracked
        if name and (ROOT / name).is_file()
        and any(ref in (ROOT / name).read_text(errors="replace") for ref in OUTSIDE)
    ]
    assert citing == []
