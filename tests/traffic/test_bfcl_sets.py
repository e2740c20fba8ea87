"""The BFCL builder reads whatever BFCL sets ``data_dir`` holds, and says what it left out.

On real lines of BFCL v4's live sets (tests/traffic/data/README.md): answers become
expected calls, irrelevance questions expect no call, a set without answers is left out
by name, and an over-long question is left out by the length cap.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from traffic.builders.sources import SHIPPED_DATA_DIR
from traffic.builders.tools import MAX_PROMPT_TOKENS, bfcl_sets, bfcl_tasks
from traffic.errors import WorkloadError

LIVE = Path(__file__).resolve().parent / "data" / "bfcl_live"


def test_every_set_in_the_folder_is_read_for_what_it_is():
    uses = {s.questions.name: s.use for s in bfcl_sets(LIVE)}
    assert uses == {"BFCL_v4_live_irrelevance.json": "irrelevance",
                    "BFCL_v4_live_relevance.json": "skipped",
                    "BFCL_v4_live_simple.json": "answers"}


def test_answers_are_expected_calls_and_irrelevance_expects_no_call(caplog):
    with caplog.at_level(logging.WARNING):
        tasks = {t.source_id: t for t in bfcl_tasks(LIVE)}
    simple = tasks["bfcl:live_simple_0-0-0"].expect.tool_calls
    assert [(c.name, c.arguments) for c in simple] == [
        ("get_user_info", {"user_id": [7890], "special": ["black"]})]
    assert tasks["bfcl:live_irrelevance_10-1-0"].expect.tool_calls == []
    assert tasks["bfcl:live_irrelevance_11-1-1"].expect.tool_calls == []
    # the 6,865-character question is over the cap; the relevance set has no answers
    assert "bfcl:live_irrelevance_103-3-0" not in tasks
    assert len(tasks) == 5
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "BFCL_v4_live_relevance.json has no possible_answer" in warnings
    assert f"1 BFCL questions left out: prompt with tools over {MAX_PROMPT_TOKENS}" in warnings


def test_the_shipped_sets_come_first_in_their_order(tmp_path):
    shutil.copytree(SHIPPED_DATA_DIR / "bfcl", tmp_path / "bfcl")
    shutil.copy(LIVE / "bfcl" / "BFCL_v4_live_irrelevance.json", tmp_path / "bfcl")
    names = [s.questions.name for s in bfcl_sets(tmp_path)]
    assert names == ["BFCL_v4_simple_python.json", "BFCL_v4_multiple.json",
                     "BFCL_v4_live_irrelevance.json"]
    tasks = bfcl_tasks(tmp_path)
    assert [t.source_id for t in tasks[:230]] == \
        [t.source_id for t in bfcl_tasks(SHIPPED_DATA_DIR)]


def test_a_folder_without_bfcl_sets_is_an_error_naming_it(tmp_path):
    with pytest.raises(WorkloadError, match=f"no BFCL question files .* in {tmp_path}"):
        bfcl_tasks(tmp_path)
