"""Adding a check: a spec and a SQL file, and the rest follows (docs/checks.md,
"Adding a check").

The toy check below is the walkthrough's: per span mode, the share of answered
requests slower than ``slow_ms``. Registered for one test at a time, it must be
computed into ``check_buckets`` with its own view, judged by the gate with its own
message, listed in the verdict's coverage, configured from the thresholds file and
shown in the report, without a line changed anywhere else.
"""

from __future__ import annotations

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from checks import registry
from checks.compute import run_checks
from checks.errors import ThresholdsError
from checks.gate import Verdict, validate_connection
from checks.registry import CheckSpec
from checks.report import gather
from checks.suites import Rule
from checks.thresholds import Thresholds, load_thresholds
from tests.checks.test_verdict import night
from warehouse import connect

SLOW_ANSWERS_SQL = """\
-- slow_answers: per span mode, the share of answered requests slower than $slow_ms.
SELECT $run_id                                   AS run_id,
       mode                                      AS bucket,
       count(*)                                  AS n,
       count(*) < $min_samples                   AS insufficient,
       avg((latency_ms > $slow_ms)::DOUBLE)      AS slow_share
FROM span_quality
WHERE status = 'ok'
GROUP BY mode;
"""


class SlowAnswers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slow_ms: float = Field(default=5_000, gt=0)
    max_slow_share: float = Field(default=0.10, ge=0, le=1)


def slow_answers_rules(t: Thresholds) -> list[Rule]:
    limit = t.section("slow_answers").max_slow_share  # type: ignore[attr-defined]
    return [Rule("slow_answers", "slow_share", None, limit, limit,
                 "mode '{bucket}': {slow_share:.0%} of the answers were slow "
                 "(allowed {allowed:.0%}, n={n})", key="slow_answers.max_slow_share")]


@pytest.fixture
def slow_answers(tmp_path):
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "slow_answers.sql").write_text(SLOW_ANSWERS_SQL)
    spec = CheckSpec("slow_answers", "bucket", {"slow_share": "DOUBLE"}, "'mode'",
                     slow_answers_rules, settings=SlowAnswers, sql_dir=folder)
    with registry.registered(spec):
        yield spec


def judged(tmp_path, builder, thresholds: dict):
    db = builder.load()
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump({"min_samples": 10, **thresholds}))
    limits = load_thresholds(path)
    with connect(db) as con:
        run_checks(con, builder.run_id, limits)
        return db, validate_connection(con, builder.run_id, limits)


def test_a_registered_check_is_computed_into_its_rows_and_its_own_view(tmp_path, slow_answers):
    db, _ = judged(tmp_path, night(tmp_path, "n1", 1), {})
    with connect(db) as con:
        rows = con.execute("SELECT \"check\", dimension, bucket, n, slow_share "
                           "FROM check_buckets WHERE \"check\" = 'slow_answers' "
                           "ORDER BY bucket").fetchall()
        view = [d[0] for d in con.execute("SELECT * FROM check_slow_answers").description]
    assert rows == [("slow_answers", "mode", "pinned", 48, 0.0),
                    ("slow_answers", "mode", "replay", 40, 0.0)]
    assert view == ["run_id", "bucket", "n", "insufficient", "slow_share"]


def test_its_breach_fails_the_night_with_its_own_message(tmp_path, slow_answers):
    _, result = judged(tmp_path, night(tmp_path, "n1", 1),
                       {"slow_answers": {"slow_ms": 50}})  # every span takes 100 ms
    assert result.verdict is Verdict.FAIL
    assert {(b.check, b.bucket) for b in result.breaches} == {
        ("slow_answers", "pinned"), ("slow_answers", "replay")}
    assert "slow_answers: mode 'replay': 100% of the answers were slow (allowed 10%, n=40)" \
        in result.message


def test_it_is_listed_among_the_judged_checks_and_passes_within_its_threshold(
        tmp_path, slow_answers):
    _, result = judged(tmp_path, night(tmp_path, "n1", 1),
                       {"slow_answers": {"slow_ms": 50, "max_slow_share": 1.0}})
    assert result.verdict is Verdict.PASS, result.message
    coverage = {c.check: c for c in result.coverage}
    assert coverage["slow_answers"].judged and coverage["slow_answers"].breaches == 0


def test_its_thresholds_section_is_validated_like_the_shipped_ones(tmp_path, slow_answers):
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump({"slow_answers": {"max_slow_share": 2}}))
    with pytest.raises(ThresholdsError, match=r"field 'slow_answers.max_slow_share'"):
        load_thresholds(path)
    assert load_thresholds(None).section("slow_answers") == SlowAnswers()


def test_the_report_shows_its_section_with_its_own_columns(tmp_path, slow_answers):
    db, _ = judged(tmp_path, night(tmp_path, "n1", 1), {})
    with connect(db) as con:
        data = gather(con, "n1", load_thresholds(None))
    assert [r["bucket"] for r in data["checks"]["slow_answers"]] == ["pinned", "replay"]
    from checks.report import shown_columns
    assert shown_columns("slow_answers") == ["bucket", "n", "insufficient", "slow_share"]


def test_without_the_spec_the_check_and_its_thresholds_are_unknown(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump({"slow_answers": {"max_slow_share": 0.5}}))
    with pytest.raises(ThresholdsError, match="slow_answers"):
        load_thresholds(path)
    assert "slow_answers" not in registry.names()
