"""``traffic import --format mooncake`` on a whole Mooncake trace: time, memory, fidelity.

    .venv/bin/python benchmarks/mooncake_import.py TRACE.jsonl [--block-tokens 16 512]

Get a trace from kvcache-ai/Mooncake (``FAST25-release/traces/conversation_trace.jsonl``,
Apache-2.0; not shipped here). For each ``--block-tokens``, runs the CLI the way users
do (``cluster-eval traffic import``, a fresh process, timed; peak RSS of that process),
then reads the written file back and prints:

* ``trace reuse``: the share of prompt tokens whose leading blocks an earlier request
  already had (a block is ``--block-size`` tokens, the last the remainder);
* ``imported reuse``: the same share measured on the token ids the served tokenizer
  gives the imported text, chunked in ``--block-tokens``;
* ``exact length``: the share of prompts whose token count is the trace's
  ``input_length`` scaled by block-tokens / block-size (each block rounded as the
  importer does).

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tokenizers import Tokenizer

from traffic.importers.block_text import default_tokenizer_path
from traffic.importers.mooncake import trace_reuse

ROOT = Path(__file__).resolve().parents[1]

# The CLI in a fresh process, as users run it; then that process's own peak RSS.
_CHILD = """
import resource, sys
from cluster_eval.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
"""


def imported_reuse(prompts: list[list[int]], chunk: int) -> float:
    """Share of tokens in leading chunks an earlier prompt began with (chunk by chunk)."""
    seen: set[tuple[int, ...]] = set()
    reused = total = 0
    for ids in prompts:
        chunks = [tuple(ids[i:i + chunk]) for i in range(0, len(ids), chunk)]
        key, leading, still = 0, 0, True
        for piece in chunks:
            key = hash((key, piece))  # the chain of chunks so far
            if still and key in seen:
                leading += len(piece)
            else:
                still = False
            seen.add(key)
        reused += leading
        total += len(ids)
    return reused / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--block-tokens", type=int, nargs="+", default=[16, 512])
    parser.add_argument("--block-size", type=int, default=512)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.trace.read_text().splitlines() if line.strip()]
    tokenizer = Tokenizer.from_file(str(default_tokenizer_path()))
    print(f"{args.trace.name}: {len(rows)} requests, trace reuse "
          f"{trace_reuse(rows, args.block_size):.3f}")
    print(f"{'block tokens':>12} {'import s':>9} {'peak MiB':>9} {'records':>8} "
          f"{'imported reuse':>15} {'exact length':>13}")
    for block_tokens in args.block_tokens:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "mooncake.jsonl"
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, "traffic", "import", str(args.trace),
                 "--format", "mooncake", "--out", str(out), "--block-size",
                 str(args.block_size), "--block-tokens", str(block_tokens)],
                check=True, cwd=ROOT, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            peak_mib = int(done.stderr.strip().splitlines()[-1])
            records = [json.loads(line) for line in out.read_text().splitlines()]
        texts = ["".join(m["content"] for m in r["body"]["messages"]) for r in records]
        prompts = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        by_line = {int(r["tags"]["trace_line"]): ids for r, ids in zip(records, prompts,
                                                                         strict=True)}
        exact = 0
        for line, ids in by_line.items():
            row = rows[line - 1]
            blocks = len(row["hash_ids"])
            last = min(max(row["input_length"] - args.block_size * (blocks - 1), 1),
                       args.block_size)
            expected = block_tokens * (blocks - 1) + max(
                1, round(last * block_tokens / args.block_size))
            exact += len(ids) == expected
        ordered = [by_line[line] for line in sorted(by_line)]
        print(f"{block_tokens:>12} {seconds:>9.1f} {peak_mib:>9} "
              f"{len(records):>8} {imported_reuse(ordered, block_tokens):>15.3f} "
              f"{exact / len(records):>13.3f}")


if __name__ == "__main__":
    main()
