"""One span merge (traffic.spans.merge_spans) for the replay's worker logs and the night's
baseline + replay files."""

from __future__ import annotations

from pathlib import Path

from flows import pipeline
from traffic.spans import SPAN_SCHEMA, Span, SpanLog, merge_spans, read_spans, write_spans


def _span(span_id: str, intended_at: float, mode: str = "replay") -> Span:
    return Span(span_id=span_id, request_id=span_id, mode=mode, tenant_id="acme",
                endpoint="/v1/chat/completions", intended_at=intended_at,
                sent_at=intended_at, schedule_lag_ms=0.0, latency_ms=1.0, status="ok",
                request_body="{}")


def test_logs_and_parquet_merge_into_one_file_by_intended_time_then_span_id(tmp_path: Path):
    with SpanLog(tmp_path / ".spans.part0.log") as log:
        log.write([_span("r2", 2.0), _span("r0", 0.5)])
    baseline = write_spans([_span("b1", 1.0, "baseline"), _span("b0", 1.0, "baseline")],
                           tmp_path / "baseline.parquet")
    out = tmp_path / "spans.parquet"

    table = merge_spans([tmp_path / ".spans.part0.log", baseline, tmp_path / "absent.log",
                         tmp_path / "absent.parquet"], out)

    assert table.column("span_id").to_pylist() == ["r0", "b0", "b1", "r2"]
    assert read_spans(out).equals(table) and table.schema.equals(SPAN_SCHEMA)


def test_nothing_to_merge_is_an_empty_span_file(tmp_path: Path):
    table = merge_spans([tmp_path / "absent.parquet"], tmp_path / "spans.parquet")
    assert table.num_rows == 0 and read_spans(tmp_path / "spans.parquet").num_rows == 0


def test_the_flow_merges_with_the_same_function(tmp_path: Path):
    baseline = write_spans([_span("b0", 3.0, "baseline")], tmp_path / "baseline.parquet")
    replayed = write_spans([_span("r0", 1.0)], tmp_path / "replay" / "spans.parquet")
    out = tmp_path / "spans.parquet"
    assert pipeline.merge_spans([baseline, replayed], out) == 2
    assert read_spans(out).column("span_id").to_pylist() == ["r0", "b0"]
