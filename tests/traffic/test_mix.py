"""``cluster-eval traffic mix SPEC``: several sources, each its tenant, one traffic file.

Sources are the real Azure trace (CC-BY-4.0), the real Mooncake lines, a traffic file
and the shipped smoke spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from cluster_eval.cli import app
from traffic.builders.sources import AZURE_TRACE, SHIPPED_DATA_DIR
from traffic.errors import WorkloadError
from traffic.format import TrafficRecord
from traffic.loader import load_traffic
from traffic.mix import load_mix_spec, mix
from traffic.writer import write_traffic

ROOT = Path(__file__).resolve().parents[2]
AZURE = SHIPPED_DATA_DIR / AZURE_TRACE
MOONCAKE = ROOT / "tests" / "traffic" / "data" / "mooncake_sample.jsonl"
SMOKE = ROOT / "traffic" / "specs" / "poisson-smoke.yaml"
DOC = ROOT / "docs" / "traffic-format.md"


def spec_file(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def run(tmp_path: Path, body: dict):
    path = spec_file(tmp_path, body)
    return mix(load_mix_spec(path), path.parent)


def azure(since: float, until: float, rate: float | None = None) -> dict:
    block = {"trace": str(AZURE), "format": "azure", "since": since, "until": until}
    return block | ({"rate": rate} if rate else {})


def test_each_source_is_its_tenant_and_starts_at_its_offset(tmp_path):
    records, sources = run(tmp_path, {"sources": [
        {"tenant": "big", "import": azure(600, 660)},
        {"tenant": "chat", "offset_s": 30,
         "import": {"trace": str(MOONCAKE), "format": "mooncake", "block_tokens": 16}},
    ]})
    by_source = {s.name: s for s in sources}
    assert {r.tenant_id for r in records} == {"big", "chat"}
    assert sum(r.tenant_id == "big" for r in records) == len(by_source["big"].records)
    chat = [r for r in records if r.tenant_id == "chat"]
    assert len(chat) == 17 and min(r.arrival for r in chat) == pytest.approx(30.0)
    assert [r.arrival for r in records] == sorted(r.arrival for r in records)
    assert len({r.request_id for r in records}) == len(records)
    assert all(r.request_id.startswith(r.tags["mix_source"] + "-") for r in records)


def test_align_clock_keeps_two_windows_of_one_trace_apart_in_real_time(tmp_path):
    """Two windows ten minutes apart in the trace stay ten minutes apart in the mix."""
    records, _ = run(tmp_path, {"align": "clock", "sources": [
        {"name": "early", "import": azure(600, 630)},
        {"name": "late", "import": azure(1200, 1230)},
    ]})
    early = [r.arrival for r in records if r.tags["mix_source"] == "early"]
    late = [r.arrival for r in records if r.tags["mix_source"] == "late"]
    assert min(early) < 30 and 600 <= min(late) < 630
    alone, _ = run(tmp_path, {"sources": [{"name": "late", "import": azure(1200, 1230)}]})
    assert [round(a - 600, 6) for a in late] == [r.arrival for r in alone]


def test_a_traffic_file_and_a_spec_are_sources_too(tmp_path):
    batch = write_traffic(
        [TrafficRecord(request_id=f"b{i}", arrival=float(i), tenant_id="batch",
                       body={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
         for i in range(5)], tmp_path / "batch.jsonl")
    records, sources = run(tmp_path, {"sources": [
        {"traffic": batch.name, "offset_s": 10},  # relative to the spec file
        {"name": "probe", "spec": str(SMOKE)},
    ]})
    assert [s.name for s in sources] == ["source-1", "probe"]
    assert [r.arrival for r in records if r.tenant_id == "batch"] == \
        [10.0, 11.0, 12.0, 13.0, 14.0]
    assert any(r.tenant_id == "acme" for r in records)  # the spec's own tenant


def test_align_clock_refuses_a_source_without_times_of_day(tmp_path):
    with pytest.raises(WorkloadError, match="probe has none"):
        run(tmp_path, {"align": "clock", "sources": [
            {"name": "big", "import": azure(600, 630)}, {"name": "probe", "spec": str(SMOKE)}]})


@pytest.mark.parametrize(("sources", "expected"), [
    ([{"tenant": "a"}], "exactly one of import, traffic or spec"),
    ([{"traffic": "a.jsonl", "spec": "b.yaml"}], "this one gives traffic and spec"),
    ([{"import": {"format": "azure"}}], "import: needs 'trace'"),
    ([{"tenant": "a", "traffic": "x"}, {"tenant": "a", "traffic": "y"}],
     "source names must differ (give 'name'): a"),
])
def test_a_bad_spec_names_the_field(tmp_path, sources, expected):
    with pytest.raises(WorkloadError, match=r"mix spec .*mix\.yaml") as caught:
        load_mix_spec(spec_file(tmp_path, {"sources": sources}))
    assert expected in str(caught.value)


def test_cli_writes_the_mix_and_reports_each_source(tmp_path):
    path = spec_file(tmp_path, {"sources": [
        {"tenant": "big", "import": azure(600, 660)},
        {"tenant": "chat", "import": {"trace": str(MOONCAKE), "format": "mooncake",
                                      "block_tokens": 16}}]})
    out = tmp_path / "mixed.jsonl"
    result = CliRunner().invoke(app, ["traffic", "mix", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "  chat: 17 requests (chat: 17)" in result.output
    loaded = load_traffic(out)
    assert loaded.n_bad == 0 and {r.tenant_id for r in loaded.records} == {"big", "chat"}


def test_cli_bad_source_is_one_error_line(tmp_path):
    path = spec_file(tmp_path, {"sources": [{"traffic": "missing.jsonl"}]})
    result = CliRunner().invoke(app, ["traffic", "mix", str(path), "--out",
                                      str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert "missing.jsonl" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_the_mix_command_is_documented():
    root = typer.main.get_command(app)
    command = root.commands["traffic"].commands["mix"]  # type: ignore[attr-defined]
    flags = [opt for param in command.params for opt in param.opts if opt.startswith("--")]
    text = DOC.read_text()
    assert "cluster-eval traffic mix" in text
    assert [flag for flag in flags if f"`{flag}" not in text] == []
