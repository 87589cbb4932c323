"""Benchmark: wall time of the static tiers (snapshot + invariant) for both
reference backends with the `ci` hypothesis profile, through the shipped
entry point exactly as an author runs it on every save.

    python bench/static_tiers.py [--repeat N]

Prints one line per backend and the total; target: total under 10 s on a
2-core machine. A benchmark, not a test: it asserts nothing and is run by
hand (figures go in the issue note).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("docker", "smolmachines")


def run_once(backend: str) -> tuple[float, str]:
    argv = [
        sys.executable, "-m", "pytest", "--pyargs", "conformance",
        f"--bottle-backend={backend}", "--bottle-tier=snapshot,invariant",
        "--bottle-hypothesis-profile=ci",
        f"--bottle-snapshot-dir={ROOT / 'snapshots' / backend}",
        "-q", "-p", "no:cacheprovider",
    ]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    tail = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    if proc.returncode != 0:
        sys.exit(f"{backend}: suite failed (exit {proc.returncode}): {tail}")
    return elapsed, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend (median kept)")
    args = parser.parse_args()
    total = 0.0
    for backend in BACKENDS:
        times, tail = [], ""
        for _ in range(max(1, args.repeat)):
            elapsed, tail = run_once(backend)
            times.append(elapsed)
        median = statistics.median(times)
        total += median
        print(f"{backend:13s} median {median:5.2f} s  (runs: "
              f"{', '.join(f'{t:.2f}' for t in times)})  {tail}")
    print(f"{'both':13s} {total:5.2f} s wall, sequential (target < 10 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
