#!/usr/bin/env python3
"""Compressed captures: fastpcap against the decompressor alone (the README's figures).

    python benchmarks/compressed.py [--packets 1000000] [--repeat 5] [--undisturbed]

A capture of synthetic traffic whose payloads are random bytes (it compresses about as
badly as real traffic does; the default synthetic frames compress ~50x), compressed with
``zstd -3`` and ``gzip -6``.  Whole processes, timed as in ``run.py`` and interleaved round
by round:

* ``zstd -dc X.pcap.zst > /dev/null``; ``gzip -dc`` and ISA-L's ``igzip`` (``python -m
  isal.igzip -dc``, the fastest inflate here, interpreter start-up included) for the gzip file;
* ``fastpcap --version`` (interpreter start-up and fastpcap's import);
* ``fastpcap bucketize X -o OUT`` for each file, with the decompression in its own thread
  (the default) and in the main thread (``FASTPCAP_NO_PREFETCH=1``).

Printed: medians and the spread of per-round ratios of fastpcap to (decompressor + start-up),
and the load average before and after; every run's wall time goes to
``.cache/run/compressed.json``.  It checks that both fastpcap runs write the bytes of the
uncompressed capture's run.

fastpcap's modules are byte-compiled first, as a wheel's install does: from a checkout
installed in place under ``PYTHONDONTWRITEBYTECODE=1`` every run would compile them again,
which costs ``fastpcap bucketize`` (more modules) more than ``fastpcap --version``.
"""

from __future__ import annotations

import argparse
import compileall
import filecmp
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import CACHE, Result, cpu_model, ensure_cache, measure, run_once, warm

HERE = Path(__file__).resolve().parent


def random_capture(packets: int) -> Path:
    path = CACHE / f"random-{packets}.pcap"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        from traffic import write_capture

        partial = path.with_name(path.name + ".tmp")
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        write_capture(str(partial), packets, seed=7, random_payload=True)
        os.replace(partial, path)
    return path


def compressed(path: Path, kind: str) -> Path:
    out = path.with_name(path.name + {"zstd": ".zst", "gzip": ".gz"}[kind])
    if not out.exists():
        partial = out.with_name(out.name + ".tmp")
        command = ["zstd", "-3", "-q", "-f", "-c"] if kind == "zstd" else ["gzip", "-6", "-c"]
        with open(partial, "wb") as f:
            subprocess.run([*command, str(path)], stdout=f, check=True)
        os.replace(partial, out)
    return out


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_undisturbed(plan: list[tuple], rounds: int) -> int:
    """Like ``run.measure``, but a round starts once the machine is idle (other processes
    used < 5% of a CPU for 0.5 s) and is run again if other processes used more than 3% of
    its time on the CPUs meanwhile (a test suite started, say): on a shared 2-CPU machine,
    their load makes every ratio swing by 2x.  Returns the rounds dropped."""
    for result, env, _, _, tag in plan:
        result.runs = []
        run_once(result.argv, env, tag)  # warm-up
    dropped = 0
    while len(plan[0][0].runs) < rounds:
        while True:
            before = busy_cpu_s()
            time.sleep(0.5)
            if busy_cpu_s() - before < 0.05 * 0.5:
                break
            time.sleep(2)
        print(f"round {len(plan[0][0].runs) + 1} ...", file=sys.stderr, flush=True)
        busy, children, start = busy_cpu_s(), children_cpu_s(), time.perf_counter()
        runs = [run_once(result.argv, env, tag) for result, env, _, _, tag in plan]
        others = (busy_cpu_s() - busy) - (children_cpu_s() - children)
        if others > 0.03 * (time.perf_counter() - start) + 0.02:
            dropped += 1
            print(f"  dropped: other processes used {others:.2f} CPU s", file=sys.stderr, flush=True)
            continue
        for (result, *_), run in zip(plan, runs):
            result.runs.append(run)
    return dropped


def shell(command: str) -> list[str]:
    return ["/bin/sh", "-c", command]


def fastpcap(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "fastpcap", "bucketize", *map(str, args), "--quiet"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--undisturbed", action="store_true",
                        help="start each round on an idle machine; run a round again if other processes ran")
    args = parser.parse_args(argv)
    for tool in ("zstd", "gzip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"compressed.py needs {tool} on PATH")
    ensure_cache()
    plain = random_capture(args.packets)
    zst, gz = compressed(plain, "zstd"), compressed(plain, "gzip")
    for path in (plain, zst, gz):
        warm(path)
    import fastpcap as package

    for folder in package.__path__:
        compileall.compile_dir(folder, quiet=1)
    load_before = os.getloadavg()[0]
    out = CACHE / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("FASTPCAP_NO_EXTENSIONS", "FASTPCAP_NO_PREFETCH")}
    main_thread = dict(env, FASTPCAP_NO_PREFETCH="1")
    n, size = args.packets, plain.stat().st_size
    py = sys.executable

    def result(what: str, command: list[str], environment: dict[str, str], tag: str) -> tuple:
        return (Result(what, command, "", n, size), environment, args.repeat, True, tag)

    plan = [
        result("fastpcap --version (start-up)", [py, "-m", "fastpcap", "--version"], env, "startup"),
        result("zstd -dc > /dev/null", shell(f"zstd -dc '{zst}' > /dev/null"), env, "zstd"),
        result("gzip -dc > /dev/null", shell(f"gzip -dc '{gz}' > /dev/null"), env, "gzip"),
        result("igzip -dc > /dev/null (python -m isal.igzip)", shell(f"'{py}' -m isal.igzip -dc '{gz}' > /dev/null"),
               env, "igzip"),
        result("fastpcap X.pcap.zst, decompression thread", fastpcap(zst, "-o", out / "zst-t.jsonl"), env, "zst-t"),
        result("fastpcap X.pcap.zst, main thread", fastpcap(zst, "-o", out / "zst-m.jsonl"), main_thread, "zst-m"),
        result("fastpcap X.pcap.gz, decompression thread", fastpcap(gz, "-o", out / "gz-t.jsonl"), env, "gz-t"),
        result("fastpcap X.pcap.gz, main thread", fastpcap(gz, "-o", out / "gz-m.jsonl"), main_thread, "gz-m"),
        result("fastpcap X.pcap (uncompressed)", fastpcap(plain, "-o", out / "plain.jsonl"), env, "plain"),
    ]
    dropped = measure_undisturbed(plan, args.repeat) if args.undisturbed else measure(plan)
    r = {p[4]: p[0] for p in plan}
    print(f"\nmachine: {cpu_model()}, {os.cpu_count()} CPUs; load average (1 min) {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {args.repeat} interleaved rounds"
          + (f" (--undisturbed: {dropped} dropped)" if args.undisturbed else ""))
    print(f"capture: {n:,} packets, {size / 1e6:,.0f} MB, random payloads; .zst {zst.stat().st_size / 1e6:,.0f} MB "
          f"(zstd -3), .gz {gz.stat().st_size / 1e6:,.0f} MB (gzip -6)\n")
    print("| what | wall s (median) | min s |")
    print("|---|---:|---:|")
    for res in r.values():
        print(f"| {res.what} | {res.median:.3f} | {res.min:.3f} |")
    print()
    fastest_gzip = min((r["gzip"], r["igzip"]), key=lambda res: res.median)

    def ratio(tag: str, base: Result) -> str:
        per_round = sorted(a.wall / (b.wall + s.wall) for a, b, s in zip(r[tag].runs, base.runs, r["startup"].runs))
        quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
        return (f"{r[tag].median / (base.median + r['startup'].median):.2f}x; per round: median "
                f"{statistics.median(per_round):.2f}x, quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}x, "
                f"range {per_round[0]:.2f}-{per_round[-1]:.2f}x")

    for tag in ("zst-t", "zst-m"):
        print(f"{r[tag].what} / (zstd -dc + start-up): {ratio(tag, r['zstd'])}")
    for tag in ("gz-t", "gz-m"):
        print(f"{r[tag].what} / ({fastest_gzip.what.split(' >')[0]} + start-up): {ratio(tag, fastest_gzip)}")
    thread_gain = [statistics.median(a.wall / b.wall for a, b in zip(r[m].runs, r[t].runs))
                   for m, t in (("zst-m", "zst-t"), ("gz-m", "gz-t"))]
    print(f"decompression thread vs main thread: zstd {thread_gain[0]:.2f}x, gzip {thread_gain[1]:.2f}x faster "
          "(median of per-round ratios)")
    (out / "compressed.json").write_text(json.dumps({tag: [run.wall for run in res.runs] for tag, res in r.items()}))
    ok = all(filecmp.cmp(out / f"{tag}.jsonl", out / "plain.jsonl", shallow=False)
             for tag in ("zst-t", "zst-m", "gz-t", "gz-m"))
    print(f"outputs identical to the uncompressed capture's: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
