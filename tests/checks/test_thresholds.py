"""The thresholds loader: a full file, an overlay (`extends:`), and errors that name the
file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.errors import ThresholdsError
from checks.thresholds import DEFAULT_PATH, Thresholds, load_thresholds


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_shipped_file_validates_and_a_partial_file_takes_the_model_defaults(tmp_path):
    assert isinstance(load_thresholds(), Thresholds)
    partial = load_thresholds(_write(tmp_path / "t.yaml", "min_samples: 5\n"))
    assert partial.min_samples == 5 and partial.slo == Thresholds().slo


def test_an_overlay_deep_merges_over_the_file_it_extends(tmp_path):
    base = _write(tmp_path / "base" / "limits.yaml",
                  "min_samples: 30\nslo:\n  modes: [replay]\n  min_goodput: 0.8\n"
                  "tenant_fairness:\n  max_tail_drop: 0.1\n")
    overlay = _write(tmp_path / "over" / "t.yaml",
                     "extends: ../base/limits.yaml\nslo:\n  min_goodput: 0.95\n"
                     "tenant_fairness:\n  max_tail_latency_ratio: 3\n")
    merged = load_thresholds(overlay)
    assert merged.min_samples == 30                      # from the base
    assert merged.slo.modes == ["replay"]                # a sibling key kept
    assert merged.slo.min_goodput == 0.95                # the overlay wins
    assert (merged.tenant_fairness.max_tail_drop,
            merged.tenant_fairness.max_tail_latency_ratio) == (0.1, 3)
    assert load_thresholds(base).slo.min_goodput == 0.8


def test_the_tenant_latency_limit_keeps_its_earlier_name(tmp_path):
    # max_p99_latency_ratio, from when the judged tail was always the p99
    old = load_thresholds(_write(tmp_path / "t.yaml",
                                 "tenant_fairness:\n  max_p99_latency_ratio: 3\n"))
    assert old.tenant_fairness.max_tail_latency_ratio == 3


def test_an_overlay_can_extend_the_shipped_file(tmp_path):
    overlay = _write(tmp_path / "t.yaml", f"extends: {DEFAULT_PATH}\nmin_samples: 7\n")
    assert load_thresholds(overlay) == load_thresholds().model_copy(update={"min_samples": 7})


def test_a_bad_key_in_an_overlay_names_the_overlay_and_the_field(tmp_path):
    overlay = _write(tmp_path / "t.yaml",
                     f"extends: {DEFAULT_PATH}\ntenant_fairness:\n  max_p99_ratio: 2\n")
    with pytest.raises(ThresholdsError) as caught:
        load_thresholds(overlay)
    assert (caught.value.file, caught.value.field) == (
        str(overlay), "tenant_fairness.max_p99_ratio")
    assert str(caught.value).startswith(
        f"{overlay}, field 'tenant_fairness.max_p99_ratio': Extra inputs are not permitted")


def test_a_bad_value_in_the_extended_file_names_that_file(tmp_path):
    base = _write(tmp_path / "base.yaml", "slo:\n  min_goodput: 2\n")
    overlay = _write(tmp_path / "t.yaml", "extends: base.yaml\nmin_samples: 5\n")
    with pytest.raises(ThresholdsError) as caught:
        load_thresholds(overlay)
    assert (caught.value.file, caught.value.field) == (str(base), "slo.min_goodput")


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("extends: nowhere.yaml\n", None, "nowhere.yaml"),
        ("extends: 3\n", "extends", "a path to a thresholds file"),
        ("extends: t.yaml\n", "extends", "a cycle"),
        ("- min_samples\n", None, "a mapping of keys"),
        ("min_samples: [\n", None, "line"),
    ],
)
def test_a_broken_overlay_is_one_clear_error(tmp_path, text, field, says):
    with pytest.raises(ThresholdsError) as caught:
        load_thresholds(_write(tmp_path / "t.yaml", text))
    assert caught.value.field == field
    assert says in str(caught.value)
