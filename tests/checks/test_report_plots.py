"""The report's plots: the timeline of the night and the 30-night trend, drawn from
the warehouse of judged nights built with the project's own code
(tests/checks/plot_nights.py). They read as the specification of docs/nightly.md,
"The report's plots"."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from checks.report import write_report
from tests.checks.plot_nights import DURATION_S, eventful_night
from tests.checks.test_verdict import night
from tests.exports.conftest import load_and_judge
from warehouse import RunInfo, connect, load_run


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three passing nights, a failing one (half the requests fail), then the eventful
    night; the report of the eventful night. Returns (warehouse, report page)."""
    folder = tmp_path_factory.mktemp("plot-nights")
    for day in (1, 2, 3):
        load_and_judge(folder, night(folder, f"n{day}", day, seed=day))
    _, failing = load_and_judge(folder, night(folder, "n4", 4, error_every=2))
    assert failing.verdict == "FAIL"
    db, _ = load_and_judge(folder, eventful_night(folder, "tonight", 5, seed=5))
    return db, write_report(db, "tonight", folder / "report")


def _svg(page: Path, cls: str) -> str:
    found = re.search(rf'<svg [^>]*class="{cls}".*?</svg>', page.read_text(), re.S)
    assert found, f"no {cls} SVG in the report"
    return found.group(0)


def _attr(fragment: str, name: str) -> str:
    return re.search(rf'{name}="([^"]*)"', fragment).group(1)


def _series(svg: str, name: str) -> int:
    return int(re.search(rf'data-series="{name}" data-points="(\d+)"', svg).group(1))


def test_the_page_is_self_contained(nights):
    _, page = nights
    text = page.read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text, re.I)
    assert "<script" not in text.lower() and "@import" not in text
    assert (page.parent / "timeline.svg").read_text().startswith("<svg")
    assert (page.parent / "trend.svg").read_text().startswith("<svg")


def test_the_timeline_draws_every_series_from_the_run(nights):
    db, page = nights
    svg = _svg(page, "timeline")
    with connect(db, read_only=True) as con:
        (sent, failed, samples), = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'ok'), "
            "(SELECT count(*) FROM telemetry WHERE run_id = 'tonight') "
            "FROM spans WHERE run_id = 'tonight'").fetchall()
    assert samples == DURATION_S and failed > 0
    bins = _series(svg, "offered")
    assert 100 <= bins <= 160  # ~150 bins of 4-5 s over ~610 s
    for name in ("achieved", "replicas", "target", "queue_depth", "kv_cache_usage",
                 "rolling_quality"):
        assert _series(svg, name) >= bins - 2, name  # a value in (nearly) every bin
    # one bar per bin with errors, all inside the burst
    bars = re.search(r'data-series="errors" data-points="\d+">(.*?)</g>', svg).group(1)
    assert 0 < _series(svg, "errors") == bars.count("<rect")
    for title in ("request rate (req/s)", "replicas", "queue depth", "KV cache usage",
                  "errors per bin", "quality (60 s mean)",
                  "seconds since the night&#x27;s first request"):
        assert f">{title}</text>" in svg, title


def test_the_replica_change_is_drawn_as_a_step(nights):
    _, page = nights
    svg = _svg(page, "timeline")
    points = re.search(r'data-series="replicas" data-points="\d+"><polyline points="([^"]+)"',
                       svg).group(1)
    heights = sorted({float(p.split(",")[1]) for p in points.split()})
    assert len(heights) == 2  # one replica, then two


def _stretches(svg: str, band: str) -> list[tuple[str, int]]:
    strip = re.search(rf'<g class="strip" data-band="{band}".*?</g>', svg, re.S).group(0)
    return [(label, int(n)) for label, n in
            re.findall(r'data-label="([^"]+)" data-spans="(\d+)"', strip)]


def test_the_time_buckets_are_shaded_and_add_up_to_the_check_tables(nights):
    """Each shaded stretch says how many replayed requests it holds; per label they
    add up to the check's own bucket sizes, so the shading is the check's."""
    db, page = nights
    svg = _svg(page, "timeline")
    with connect(db, read_only=True) as con:
        lag = dict(con.execute("SELECT bucket, n FROM check_autoscaling_lag "
                               "WHERE run_id = 'tonight'").fetchall())
        drift = dict(con.execute("SELECT bucket, n FROM check_traffic_pattern_drift "
                                 "WHERE run_id = 'tonight'").fetchall())
    saturation: dict[str, int] = {}
    for label, n in _stretches(svg, "autoscaling_lag"):
        saturation[label] = saturation.get(label, 0) + n
    assert {k: v for k, v in saturation.items() if v} == {k: v for k, v in lag.items() if v}
    assert {"idle", "warm", "saturating", "scaling"} <= set(saturation)
    pattern: dict[str, int] = {}
    for label, n in _stretches(svg, "traffic_pattern_drift"):
        pattern[label] = pattern.get(label, 0) + n
    assert pattern["steady"] == drift["steady"]
    # burst / sustained spans below the replica ceiling are the check's 'below_ceiling'
    assert pattern["burst"] + pattern["sustained"] == \
        drift["burst"] + drift["sustained"] + drift["below_ceiling"]
    assert pattern["burst"] > 0 and pattern["sustained"] > 0
    # burst windows cover the burst, and are shaded behind every panel too
    burst_panels = re.findall(r'class="band band-burst behind"', svg)
    assert len(burst_panels) == 6 * sum(1 for label, _ in
                                        _stretches(svg, "traffic_pattern_drift")
                                        if label == "burst")


def test_the_trend_marks_every_judged_metric_its_threshold_and_failing_nights(nights):
    db, page = nights
    svg = _svg(page, "trend")
    panels = re.findall(r'<g class="trend-panel".*?</g>(?=<g class="trend-panel"|</svg>)',
                        svg, re.S)
    with connect(db, read_only=True) as con:
        judged = con.execute(
            "SELECT count(DISTINCT (\"check\", coalesce(bucket, ''), expectation)) "
            "FROM expectation_results WHERE run_id = 'tonight' AND success IS NOT NULL "
            "AND expectation <> 'sufficient_samples'").fetchall()[0][0]
        (error_share,) = con.execute(
            "SELECT list(e.success ORDER BY r.started_at) FROM expectation_results AS e "
            "JOIN runs AS r USING (run_id) WHERE e.\"check\" = 'slo' AND e.bucket = 'run' "
            "AND e.expectation = 'error_share'").fetchall()[0]
    assert len(panels) == judged > 10
    slo = next(p for p in panels if _attr(p, "data-metric") == "slo · run · error_share")
    assert _attr(slo, "data-nights") == "5"
    assert slo.count('class="night') == 5
    # n4 failed it (half the requests failed); the nights that passed are not red
    failing_runs = re.findall(r'class="night fail" data-run="([^"]+)"', slo)
    assert failing_runs == [run for run, ok in zip(["n1", "n2", "n3", "n4", "tonight"],
                                                  error_share, strict=True) if not ok]
    assert "n4" in failing_runs and "n1" not in failing_runs
    assert _attr(slo, "data-failing") == str(len(failing_runs))
    # the threshold line is drawn through every night, and this run is ringed
    assert re.search(r'data-series="threshold" data-points="5"', slo)
    assert slo.count('class="tonight"') == 1
    assert "error_share (at most threshold)" in slo


def _thin_warehouse(tmp_path: Path, *, spans: bool) -> Path:
    """One night, never judged, no telemetry at all (the sampler died), no baseline key."""
    from tests.checks.conftest import RunBuilder

    b = RunBuilder(tmp_path, "thin")
    if spans:
        for i in range(5):
            b.span(0.7, at=i * 2.0, status="ok" if i else "timeout")
    db = tmp_path / "w.duckdb"
    span_file, tel_file = tmp_path / "spans.parquet", tmp_path / "tel.parquet"
    pl.DataFrame(b.spans or {"span_id": [], "run_id": []},
                 schema=None if b.spans else {"span_id": pl.String, "run_id": pl.String}
                 ).write_parquet(span_file)
    pl.DataFrame({"sampled_at": [], "replica_count": [], "queue_depth": []},
                 schema={"sampled_at": pl.Datetime("us", "UTC"), "replica_count": pl.Int64,
                         "queue_depth": pl.Float64}).write_parquet(tel_file)
    load_run(db, RunInfo(run_id="thin", started_at=b.started_at), span_file, tel_file)
    return db


def test_a_night_without_telemetry_draws_what_it_has_and_says_what_it_lacks(tmp_path):
    page = write_report(_thin_warehouse(tmp_path, spans=True), "thin", tmp_path / "out")
    svg = _svg(page, "timeline")
    assert _series(svg, "offered") > 0 and _series(svg, "replicas") == 0
    assert "no telemetry samples" in svg and "no telemetry: no stretches to shade" in svg
    assert "No trend: the run has no baseline key" in page.read_text()
    assert not (page.parent / "trend.svg").exists()


def test_an_empty_night_gets_notes_instead_of_plots(tmp_path):
    page = write_report(_thin_warehouse(tmp_path, spans=False), "thin", tmp_path / "out")
    text = page.read_text()
    assert 'class="no-data">No timeline: the run has no spans and no telemetry' in text
    assert 'class="no-data">No trend' in text
    assert "<svg" not in text.replace('<svg width="0" height="0">', "")


def test_the_report_command_shades_with_the_thresholds_it_is_given(nights, tmp_path):
    """A run checked with 30 s windows (a time-compressed scenario) is shaded with them."""
    from typer.testing import CliRunner

    from cluster_eval.cli import app

    db, page = nights
    default_windows = len(_stretches(_svg(page, "timeline"), "traffic_pattern_drift"))
    short = tmp_path / "short.yaml"
    short.write_text("traffic_pattern_drift:\n  window_s: 30\n")
    result = CliRunner().invoke(app, ["report", "--warehouse", str(db), "--run-id", "tonight",
                                      "--out", str(tmp_path / "out"),
                                      "--thresholds", str(short)])
    assert result.exit_code == 0, result.output
    shaded = _stretches(_svg(tmp_path / "out" / "report.html", "timeline"),
                        "traffic_pattern_drift")
    assert len(shaded) == 2 * default_windows - 1  # the 60 s windows halved (600 s from 20 s)
    bad = tmp_path / "bad.yaml"
    bad.write_text("traffic_pattern_drift:\n  window_seconds: 30\n")
    refused = CliRunner().invoke(app, ["report", "--warehouse", str(db), "--run-id", "tonight",
                                       "--out", str(tmp_path / "o2"), "--thresholds", str(bad)])
    assert refused.exit_code == 2
    assert "field 'traffic_pattern_drift.window_seconds'" in refused.output
    assert not (tmp_path / "o2").exists()
