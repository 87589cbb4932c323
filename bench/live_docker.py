"""Benchmark: wall time of the docker live tier, and which live tests take
over 10 s and whether each says why.

    python bench/live_docker.py [pytest args...]

Runs ``pytest tests/integration/test_live_docker.py`` (the reference docker
backend, every clause's live test plus the topology checks), then prints
the wall and CPU time, the load average, every test over `SLOW` seconds
with the first line of the reason written in it (a comment or docstring
naming the 10 s budget) or ``NO REASON WRITTEN``, and the figure against
its budget (the `docker-live` row of README.md's Benchmarks table, the one
place budgets are stated); exits 1 when the budget is not met or a slow
test gives no reason. Needs a docker engine and the images (export what
``python -m bottle_ref.images all --print-env`` prints). Wall time is the
budget's figure: run it on an idle machine. A benchmark, not a test.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "integration" / "test_live_docker.py"
SLOW = 10.0  # seconds: a live test over this says why, in the test
sys.path.insert(0, str(Path(__file__).resolve().parent))
from budgets import budget, verdict  # noqa: E402

_DURATION = re.compile(r"^(?P<secs>\d+\.\d+)s (?P<phase>call|setup|teardown)\s+(?P<nodeid>\S+)")
_REASON = re.compile(r"10\s*s\b")


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _source(obj) -> str:
    for candidate in (obj, getattr(obj, "__wrapped__", None),
                      getattr(obj, "_get_wrapped_function", lambda: None)()):
        try:
            return inspect.getsource(candidate)
        except (TypeError, OSError):
            continue
    return ""


def reason_for(nodeid: str, phase: str) -> str | None:
    """The first line of the test's own text that names the 10 s budget, or
    None. A slow set-up or teardown may be explained by a fixture the test
    asks for instead (its text, looked up on the test's class)."""
    path, *names = nodeid.split("::")
    spec = importlib.util.spec_from_file_location("_bench_live_tests", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    owner, obj = None, module
    for name in names:
        owner, obj = obj, getattr(obj, name.split("[", 1)[0])
    texts = [_source(obj)]
    if phase != "call" and isinstance(owner, type):
        texts += [_source(getattr(owner, arg)) for arg in inspect.signature(obj).parameters
                  if hasattr(owner, arg)]
    for text in texts:
        for line in text.splitlines():
            if _REASON.search(line):
                return line.strip().lstrip('#" ').strip()
    return None


def main() -> int:
    limit = budget("docker-live")
    argv = [sys.executable, "-m", "pytest", str(TESTS), "-q", "-p", "no:cacheprovider",
            "--durations=0", *sys.argv[1:]]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    if proc.returncode != 0:
        sys.exit(f"docker live tier failed (exit {proc.returncode}): {lines[-1]}")
    print(f"{elapsed:6.2f} s wall, {cpu:6.2f} s CPU (this process's children; the engine's "
          f"own CPU is not counted)  {lines[-1]}")
    unexplained = 0
    for line in lines:
        m = _DURATION.match(line)
        if not m or float(m["secs"]) <= SLOW:
            continue
        why = reason_for(m["nodeid"], m["phase"])
        unexplained += why is None
        print(f"  {float(m['secs']):6.2f} s {m['phase']:8s} {m['nodeid']}\n"
              f"           {why or 'NO REASON WRITTEN'}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load {load} on {os.cpu_count()} cores")
    print(f"docker-live: {verdict(elapsed, limit, ' s')}; over {SLOW:g} s without a reason: "
          f"{unexplained}")
    return 0 if elapsed < limit and not unexplained else 1


if __name__ == "__main__":
    raise SystemExit(main())
