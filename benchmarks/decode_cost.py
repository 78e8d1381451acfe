#!/usr/bin/env python3
"""What the extended decode costs on traffic that has no encapsulation (issue 12, §4).

    python benchmarks/decode_cost.py [--packets 200000] [--rounds 15]

``bucket_rows(path, jobs=1)`` in this process, compiled core, on the synthetic capture of
``run.py`` (cached in benchmarks/.cache/): the reference decode, ``decode="extended"`` and
``decode="extended", tunnels="inner"``, each once untimed, then ``--rounds`` rounds with the
three in alternating order (a drifting machine slows them alike).  Prints the medians and,
for each extended variant, its ratio to the reference decode: of the medians, and the range
and median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

from run import capture, ensure_cache, warm

import fastpcap

VARIANTS = {"reference": {}, "extended": {"decode": "extended"},
            "extended, tunnels inner": {"decode": "extended", "tunnels": "inner"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    ensure_cache()
    path = capture(args.packets, 0)
    warm(path)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for options in VARIANTS.values():
        fastpcap.bucket_rows(path, jobs=1, **options)
    for r in range(args.rounds):
        names = list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]
        for name in names:
            start = time.perf_counter()
            fastpcap.bucket_rows(path, jobs=1, **VARIANTS[name])
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"{path.name}, {args.packets:,} packets, {args.rounds} interleaved rounds, backend {fastpcap.BACKEND}")
    for name, m in medians.items():
        print(f"  {name}: {m * 1000:.1f} ms median")
    for name in list(VARIANTS)[1:]:
        per = sorted(b / a for a, b in zip(times["reference"], times[name]))
        print(f"  {name} / reference: {medians[name] / medians['reference']:.2f}x (medians); rounds "
              f"{per[0]:.2f}-{per[-1]:.2f}, median {statistics.median(per):.2f}")


if __name__ == "__main__":
    main()
