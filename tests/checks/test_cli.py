"""cluster-eval evaluate / report end to end on a loaded run, and evaluate_run."""

from __future__ import annotations

from typer.testing import CliRunner

from checks import evaluate_run
from cluster_eval.cli import app

runner = CliRunner()


def loaded_run(builder, *, sick_replica: bool):
    for t in range(30):
        builder.sample(t, queue_depth=1, replicas=2)
    for i in range(6):
        builder.span(1.0, mode="pinned", replica="rep-a", at=i, cached_tokens=95)
        builder.span(1.0, mode="pinned", replica="rep-b", at=i, cached_tokens=95,
                     status="timeout" if sick_replica and i % 2 else "ok")
        builder.span(1.0, at=i + 0.5, cached_tokens=95)
    return builder.load()


def test_evaluate_passes_then_fails_with_exit_code_and_message(run_builder, tmp_path):
    thresholds = tmp_path / "t.yaml"
    thresholds.write_text("min_samples: 5\n")
    db = loaded_run(run_builder, sick_replica=True)
    args = ["evaluate", "--warehouse", str(db), "--run-id", "run-1",
            "--thresholds", str(thresholds)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "replica_skew: replica 'rep-b' mean quality 0.50 is 0.25 below the cohort median" \
        in result.output

    report = runner.invoke(app, ["report", "--warehouse", str(db), "--run-id", "run-1",
                                 "--out", str(tmp_path / "out")])
    assert report.exit_code == 0, report.output
    assert "replica_skew" in report.output and "rep-b" in report.output
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") >= 10 and "tenant_fairness" in page
    assert "<script" not in page and "src=" not in page  # opens offline


def test_evaluate_run_on_a_healthy_run(run_builder, tmp_path):
    thresholds = tmp_path / "t.yaml"
    thresholds.write_text("min_samples: 5\n")
    result = evaluate_run(loaded_run(run_builder, sick_replica=False), "run-1", thresholds)
    assert result.passed, result.message


def test_evaluate_reports_bad_input_clearly(run_builder, tmp_path):
    db = loaded_run(run_builder, sick_replica=False)
    missing = runner.invoke(app, ["evaluate", "--warehouse", str(db), "--run-id", "nope"])
    assert missing.exit_code == 2 and "run 'nope' is not in the warehouse" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_sample: 5\n")
    typo = runner.invoke(app, ["evaluate", "--warehouse", str(db), "--run-id", "run-1",
                               "--thresholds", str(bad)])
    assert typo.exit_code == 2 and "min_sample" in typo.output
    nowhere = tmp_path / "none.duckdb"
    for command in (["evaluate"], ["report", "--out", str(tmp_path / "o")]):
        result = runner.invoke(app, [*command, "--warehouse", str(nowhere), "--run-id", "x"])
        assert result.exit_code == 2 and f"no warehouse at {nowhere}" in result.output
    assert not nowhere.exists()


def test_no_score_judges_the_scores_already_loaded(run_builder, tmp_path):
    """The loaded scores say rep-b answers at 0.2; scoring again from the spans (all
    complete) would find nothing wrong. --no-score judges what was loaded."""
    thresholds = tmp_path / "t.yaml"
    thresholds.write_text("min_samples: 5\n")
    for t in range(30):
        run_builder.sample(t, queue_depth=1, replicas=2)
    for i in range(6):
        run_builder.span(1.0, mode="pinned", replica="rep-a", at=i, request_id=f"p{i}")
        run_builder.span(0.2, mode="pinned", replica="rep-b", at=i, request_id=f"p{i}")
        run_builder.span(1.0, at=i + 0.5)
    db = run_builder.load()
    args = ["evaluate", "--warehouse", str(db), "--run-id", "run-1",
            "--thresholds", str(thresholds)]
    judged = runner.invoke(app, [*args, "--no-score"])
    assert judged.exit_code == 1, judged.output
    assert "replica 'rep-b' mean quality 0.20" in judged.output
    rescored = runner.invoke(app, args)
    assert "replica 'rep-b'" not in rescored.output
