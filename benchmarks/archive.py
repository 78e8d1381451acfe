#!/usr/bin/env python3
"""The archive runner's costs: the README's "Processing an archive" figures.

    python benchmarks/archive.py [--copies 400] [--captures 16] [--packets 130000] [--repeat 5]

Two measurements, each command a whole process timed as in ``run.py`` (fork, exec, wait4),
runs interleaved round by round so that a VM whose speed drifts slows them all alike:

* **Per-file overhead**: ``fastpcap bucketize DIR -o OUT --jobs 1 --force`` on a folder of
  ``--copies`` copies of ``examples/sample.pcap`` and on a folder of one copy; the overhead
  per file beyond the first is the difference divided by copies - 1 (it includes each
  file's own work: 96 packets, 26 rows).  For comparison, one process per file: ``fastpcap
  bucketize FILE -o OUT`` on one copy (what a shell loop over the files pays each time).
* **--jobs scaling**: ``--captures`` generated captures (``traffic.py``, different seeds, about
  390 bytes a packet) with ``--jobs 1`` and ``--jobs 2``; the ratio of their wall times.

It checks that every output equals the single-file run of its capture, and says so.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import sys
from pathlib import Path

from run import CACHE, Result, capture, cpu_model, ensure_cache, measure, rel, warm

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "examples" / "sample.pcap"


def fastpcap(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "fastpcap", "bucketize", *map(str, args), "--quiet"]


def copies_folder(n: int) -> Path:
    folder = CACHE / f"sample-copies-{n}"
    if not folder.exists() or len(list(folder.iterdir())) != n:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i in range(n):
            shutil.copyfile(SAMPLE, folder / f"ep{i:04d}.pcap")
    return folder


def captures_folder(n: int, packets: int) -> Path:
    folder = CACHE / f"captures-{n}x{packets}"
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(n):
        link = folder / f"c{seed:02d}.pcap"
        if not link.exists():
            os.link(capture(packets, seed + 100), link)
    return folder


def same_outputs(folder: Path, out: Path) -> bool:
    """Every output equals the single-file run of its capture (run once here)."""
    import subprocess

    single = CACHE / "run" / "check.jsonl"
    for path in sorted(folder.iterdir()):
        subprocess.run(fastpcap(path, "-o", single), check=True)
        if not filecmp.cmp(single, out / (path.stem + ".jsonl"), shallow=False):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=400)
    parser.add_argument("--captures", type=int, default=16)
    parser.add_argument("--packets", type=int, default=130_000, help="per generated capture (~50 MB)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    ensure_cache()
    env = {k: v for k, v in os.environ.items() if k != "FASTPCAP_NO_EXTENSIONS"}

    many, one = copies_folder(args.copies), copies_folder(1)
    big = captures_folder(args.captures, args.packets)
    for path in big.iterdir():
        warm(path)
    out = CACHE / "run"
    size = sum(p.stat().st_size for p in big.iterdir())
    plan = [
        (Result(f"{args.copies} copies, --jobs 1", fastpcap(many, "-o", out / "many", "--jobs", "1", "--force"),
                "", 96 * args.copies, 0), env, args.repeat, True, "many"),
        (Result("1 copy, --jobs 1", fastpcap(one, "-o", out / "one", "--jobs", "1", "--force"), "", 96, 0),
         env, args.repeat, True, "one"),
        (Result("1 file, one process", fastpcap(SAMPLE, "-o", out / "single.jsonl"), "", 96, 0),
         env, args.repeat, True, "single"),
        (Result(f"{args.captures} captures, --jobs 1", fastpcap(big, "-o", out / "big1", "--jobs", "1", "--force"),
                "", args.packets * args.captures, size), env, args.repeat, True, "big1"),
        (Result(f"{args.captures} captures, --jobs 2", fastpcap(big, "-o", out / "big2", "--jobs", "2", "--force"),
                "", args.packets * args.captures, size), env, args.repeat, True, "big2"),
    ]
    measure(plan)
    many_r, one_r, single_r, big1, big2 = (p[0] for p in plan)
    per_file = (many_r.median - one_r.median) / (args.copies - 1)
    print(f"\nmachine: {cpu_model()}, {os.cpu_count()} CPUs; median of {args.repeat} interleaved runs\n")
    print("| what | wall s (median) | min s |")
    print("|---|---:|---:|")
    for result in (many_r, one_r, single_r, big1, big2):
        print(f"| {result.what} | {result.median:.3f} | {result.min:.3f} |")
    print(f"\nper-file overhead beyond the first ({rel(many)}): {per_file * 1000:.2f} ms "
          f"(one process per file: {single_r.median * 1000:.0f} ms, {single_r.median / per_file:.0f}x more)")
    ratios = [a.wall / b.wall for a, b in zip(big1.runs, big2.runs)]
    print(f"--jobs 2 vs --jobs 1 on {args.captures} x {size / args.captures / 1e6:.0f} MB: "
          f"{big1.median / big2.median:.2f}x (per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}x); {size / 1e6 / big2.median:,.0f} MB/s with 2 jobs")
    ok = filecmp.cmp(out / "many" / "ep0000.jsonl", out / "single.jsonl", shallow=False) and \
        same_outputs(big, out / "big2")
    print(f"outputs identical to single-file runs: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
