"""Real cases from shared/data (BFCL, SQuAD v2, GSM8K) and span-row builders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

# CI clones the repo with shared/ beside it; this workplace also mounts it at /work.
DATA = next(
    (p for p in (Path(__file__).resolve().parents[3] / "shared" / "data",
                 Path("/work/shared/data")) if p.is_dir()),
    Path(__file__).resolve().parents[3] / "shared" / "data",
)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def bfcl() -> dict[str, tuple[dict, dict]]:
    """id → (question with its functions, possible answer)."""
    out = {}
    for name in ("BFCL_v4_simple_python.json", "BFCL_v4_multiple.json"):
        answers = {a["id"]: a for a in _jsonl(DATA / "bfcl" / "possible_answer" / name)}
        for q in _jsonl(DATA / "bfcl" / name):
            out[q["id"]] = (q, answers[q["id"]])
    return out


@pytest.fixture(scope="session")
def squad() -> list[dict]:
    """Flat list of {context, question, answers, is_impossible}."""
    raw = json.loads((DATA / "squad" / "squad_v2_dev_subset_5articles.json").read_text())
    return [
        {"context": p["context"], **qa}
        for article in raw["data"] for p in article["paragraphs"] for qa in p["qas"]
    ]


@pytest.fixture(scope="session")
def gsm8k() -> list[dict]:
    return _jsonl(DATA / "gsm8k" / "test.jsonl")[:50]


def span_row(
    span_id: str = "s1",
    *,
    request: dict[str, Any] | None = None,
    output_text: str | None = "ok",
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = "stop",
    status: str = "ok",
    expect: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "span_id": span_id,
        "status": status,
        "finish_reason": finish_reason,
        "output_text": output_text,
        "tool_calls": None if tool_calls is None else json.dumps(tool_calls),
        "request_body": json.dumps(request or {"messages": [{"role": "user", "content": "hi"}]}),
        "expect": None if expect is None else json.dumps(expect),
    }


@pytest.fixture
def make_span():
    return span_row


# --- hand-built runs for the check tests -------------------------------------------


def document_question(document: str, question: str = "Who?") -> dict[str, Any]:
    """A request body whose shared context (the system turn) is ``document``."""
    return {"messages": [{"role": "system", "content": document},
                         {"role": "user", "content": question}]}


T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class RunBuilder:
    """Spans with a known quality (written as the completion score, or as the given
    rubric scores) plus telemetry."""

    def __init__(self, tmp_path: Path, run_id: str = "run-1"):
        self.tmp_path = tmp_path
        self.run_id = run_id
        self.spans: list[dict[str, Any]] = []
        self.telemetry: list[dict[str, Any]] = []
        self.scores: list[tuple[str, str, float]] = []
        self.config: dict[str, Any] | None = None  # the run's ServeConfigV2, if any
        self.plan: dict[str, Any] | None = None    # what the flow planned to send
        self.baseline_key: str | None = None
        self.started_at = T0

    def span(self, quality: float, *, at: float = 0.0, mode: str = "replay",
             tenant: str = "acme", replica: str | None = "rep-a", latency_ms: float = 100.0,
             prompt_tokens: int | None = 100, cached_tokens: int | None = 0,
             status: str = "ok", intended: float | None = None,
             rubrics: dict[str, float] | None = None,
             body: dict[str, Any] | None = None, ttft_ms: float | None = None,
             request_id: str | None = None, output_text: str | None = None) -> str:
        span_id = f"s{len(self.spans)}"
        start = self.started_at
        self.spans.append({
            "span_id": span_id, "request_id": request_id or span_id, "mode": mode,
            "tenant_id": tenant, "output_text": output_text,
            "intended_at": start + timedelta(seconds=at if intended is None else intended),
            "sent_at": start + timedelta(seconds=at), "latency_ms": latency_ms,
            "ttft_ms": latency_ms / 4 if ttft_ms is None else ttft_ms,
            "status": status, "finish_reason": "stop",
            "replica_id": replica, "prompt_tokens": prompt_tokens,
            "cached_tokens": cached_tokens, "request_body": json.dumps(body or {}),
        })
        for rubric, score in (rubrics or {"completion": quality}).items():
            self.scores.append((span_id, rubric, score))
        return span_id

    def sample(self, at: float, *, queue_depth: float, replicas: int = 1,
               starting: int = 0) -> None:
        self.telemetry.append({"sampled_at": self.started_at + timedelta(seconds=at),
                               "replica_count": replicas, "replicas_starting": starting,
                               "queue_depth": queue_depth})

    def load(self) -> Path:
        """Load into a fresh warehouse, write scores; return the DuckDB path."""
        from warehouse import RunInfo, connect, load_run, write_scores

        db = self.tmp_path / "w.duckdb"
        spans, telemetry = self.tmp_path / "spans.parquet", self.tmp_path / "tel.parquet"
        pl.DataFrame(self.spans).write_parquet(spans)
        pl.DataFrame(self.telemetry or [{"sampled_at": T0, "replica_count": 1,
                                         "queue_depth": 0.0}]).write_parquet(telemetry)
        load_run(db, RunInfo(run_id=self.run_id, started_at=self.started_at,
                             config=self.config, plan=self.plan,
                             baseline_key=self.baseline_key),
                 spans, telemetry)
        with connect(db) as con:
            write_scores(con, self.run_id, pl.DataFrame(
                self.scores, schema=["span_id", "rubric", "score"], orient="row"))
        return db


@pytest.fixture
def run_builder(tmp_path: Path) -> RunBuilder:
    return RunBuilder(tmp_path)
