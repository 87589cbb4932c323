"""Benchmark: wall time of the static tiers (snapshot + invariant) for both
reference backends with the `ci` hypothesis profile, through the shipped
entry point exactly as an author runs it on every save.

    python bench/static_tiers.py [--repeat N]

Prints one line per backend and the total against its budget (the
`static-tiers` row of README.md's Benchmarks table, the one place budgets
are stated), and exits 1 when the budget is not met. Wall time: run it on an
idle machine; it prints the load average and the CPU time too, which a busy
machine inflates less. A benchmark, not a test: run by hand (figures go in
the issue note).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("docker", "smolmachines")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from budgets import budget, verdict  # noqa: E402


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_once(backend: str) -> tuple[float, float, str]:
    argv = [
        sys.executable, "-m", "pytest", "--pyargs", "conformance",
        f"--bottle-backend={backend}", "--bottle-tier=snapshot,invariant",
        "--bottle-hypothesis-profile=ci",
        f"--bottle-snapshot-dir={ROOT / 'snapshots' / backend}",
        "-q", "-p", "no:cacheprovider",
    ]
    # Python's default, as in an author's shell: pytest caches the modules it
    # rewrites (every module of the plugin's distribution). A shell with
    # PYTHONDONTWRITEBYTECODE set pays ~1.5 s per run to rewrite them again.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    tail = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    if proc.returncode != 0:
        sys.exit(f"{backend}: suite failed (exit {proc.returncode}): {tail}")
    return elapsed, cpu, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend (median kept)")
    args = parser.parse_args()
    limit = budget("static-tiers")
    total = total_cpu = 0.0
    for backend in BACKENDS:
        times, cpus, tail = [], [], ""
        for _ in range(max(1, args.repeat)):
            elapsed, cpu, tail = run_once(backend)
            times.append(elapsed)
            cpus.append(cpu)
        median = statistics.median(times)
        total += median
        total_cpu += statistics.median(cpus)
        print(f"{backend:13s} median {median:5.2f} s wall, {statistics.median(cpus):5.2f} s CPU"
              f"  (runs: {', '.join(f'{t:.2f}' for t in times)})  {tail}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{'both':13s} {total:5.2f} s wall, {total_cpu:.2f} s CPU, sequential, load {load}")
    print(f"static-tiers: {verdict(total, limit, ' s')}")
    return 0 if total < limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
