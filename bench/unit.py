"""Benchmark: wall time of the unit suite as `nox -s unit` runs it (the same
pytest-xdist workers, `noxfile.xdist_args`; bytecode caching on), without
nox's install step.

    python bench/unit.py [--repeat N] [pytest args...]

Prints each run's wall and CPU time, the load average, the slowest tests,
and the median against its budget (the `unit` row of README.md's Benchmarks
table, the one place budgets are stated); exits 1 when the budget is not
met. Run it on an idle machine: wall time is the budget's figure, and a
busy machine inflates it (compare CPU time then). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from budgets import budget, verdict  # noqa: E402

sys.path.insert(0, str(ROOT))
from noxfile import xdist_args  # noqa: E402  (the workers nox -s unit asks for)


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_once(extra: list[str]) -> tuple[float, float, str, list[str]]:
    argv = [sys.executable, "-m", "pytest", "tests/unit", *xdist_args(extra),
            "-q", "-p", "no:cacheprovider", "--durations=5", *extra]
    # As noxfile.unit: pytest may cache its assertion rewrites.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    if proc.returncode != 0:
        sys.exit(f"unit suite failed (exit {proc.returncode}): {lines[-1]}")
    slowest = [ln for ln in lines if re.match(r"^\d+\.\d+s (call|setup|teardown) ", ln)]
    return elapsed, cpu, lines[-1], slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs (median kept)")
    args, extra = parser.parse_known_args()
    limit = budget("unit")
    times = []
    for i in range(max(1, args.repeat)):
        elapsed, cpu, tail, slowest = run_once(extra)
        times.append(elapsed)
        print(f"run {i + 1}: {elapsed:6.2f} s wall, {cpu:6.2f} s CPU  {tail}")
        for line in slowest:
            print(f"    {line}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load {load} on {os.cpu_count()} cores")
    print(f"unit: {verdict(statistics.median(times), limit, ' s')}")
    return 0 if statistics.median(times) < limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
