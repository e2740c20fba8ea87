"""Time and peak memory of ``traffic import`` on the Azure trace, printed, never asserted.

Each measurement runs in a fresh process (``ru_maxrss`` is a process's peak), through
the same path as ``cluster-eval traffic import``: ``import_trace`` then ``write_traffic``.
``--repeat N`` also measures a file of N copies of the trace laid end to end (clock
shifted by the trace's length each time), to see how the import grows with the rows.

    python benchmarks/import_trace.py
    python benchmarks/import_trace.py --trace my_azure.csv --repeat 10 --rate 1
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = ROOT / "traffic/data/azure_llm_2023/AzureLLMInferenceTrace_code.csv"

_CHILD = """
import json, resource, sys, time
from traffic.importers import ImportOptions, import_trace
from traffic.writer import write_traffic
trace, out, rate = sys.argv[1], sys.argv[2], sys.argv[3]
options = ImportOptions(format="azure", rate=float(rate) if rate else None)
started = time.perf_counter()
result = import_trace(trace, options, quarantine_path=out + ".quarantine.jsonl")
imported = time.perf_counter()
import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
write_traffic(result.records, out)
done = time.perf_counter()
print(json.dumps({"rows": result.n_read, "kept": len(result.records),
                  "import_s": imported - started, "write_s": done - imported,
                  "import_peak_mib": import_rss,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def repeated(trace: Path, copies: int, into: Path) -> Path:
    """``copies`` of ``trace`` one after the other, each shifted by the trace's length."""
    with trace.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    times = [datetime.fromisoformat(row[0]) for row in body]
    length = max(times) - min(times) + timedelta(seconds=1)
    path = into / f"azure_x{copies}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for copy in range(copies):
            for when, row in zip(times, body, strict=True):
                stamp = (when + copy * length).strftime("%Y-%m-%d %H:%M:%S.%f")
                writer.writerow([stamp, *row[1:]])
    return path


def measure(trace: Path, rate: float | None, workdir: Path) -> dict[str, float]:
    out = workdir / "out.jsonl"
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(trace), str(out), "" if rate is None else str(rate)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--repeat", type=int, default=10, help="Also a file of N copies.")
    parser.add_argument("--rate", type=float, default=None, help="Thin to this req/s.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        files = [args.trace]
        if args.repeat > 1:
            files.append(repeated(args.trace, args.repeat, workdir))
        print(
            f"{'file':<40} {'rows':>9} {'kept':>9} {'import s':>9} {'write s':>8} "
            f"{'import MiB':>10} {'peak MiB':>9}"
        )
        for path in files:
            figures = measure(path, args.rate, workdir)
            print(
                f"{path.name:<40} {figures['rows']:>9} {figures['kept']:>9} "
                f"{figures['import_s']:>9.2f} {figures['write_s']:>8.2f} "
                f"{figures['import_peak_mib']:>10.0f} "
                f"{figures['peak_rss_mib']:>9.0f}"
            )


if __name__ == "__main__":
    main()
