"""Two live runs of the reference docker backend at the same time, on one
engine, both pass (issue 10): the harness names everything per run, and
LIVE-TEARDOWN judges a bottle by its own resources, never by a diff of the
whole engine, so one run's set-up and teardown cannot fail the other.

Each nested run takes the teardown tests (which create and remove objects
while the other run does the same) and probes that share a bottle.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bottle_api.runner import SubprocessRunner
from conformance.live.engine import Engine

HERE = Path(__file__).parent
SUBSET = "teardown_leaves or exec_echo or host_services"


def _start(tag: str, tmp: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTTLE_REPORT", "PYTEST_"))}
    env["BOTTLE_LIVE_TAG"] = tag
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance", "--bottle-backend", "docker",
         "--bottle-tier", "live", "-k", SUBSET, "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--basetemp", str(tmp / tag), "-W", "ignore::DeprecationWarning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=HERE.parent.parent)


def test_two_live_runs_at_once_both_pass(tmp_path, record_property):
    engine = Engine(SubprocessRunner())
    tags = ["conc" + secrets.token_hex(3) for _ in range(2)]
    t0 = time.monotonic()
    runs = [_start(tag, tmp_path) for tag in tags]
    try:
        outs = [r.communicate(timeout=900)[0] for r in runs]
    finally:
        for r in runs:
            if r.poll() is None:
                r.kill()
        left = [str(o) for tag in tags for o in engine.snapshot().mentioning(tag)]
        for tag in tags:  # whatever a failed run left: ours by its tag alone
            for o in engine.snapshot().mentioning(tag):
                engine.run(*(("rm", "-f") if o.kind == "container" else ("network", "rm")),
                           o.id, check=False)
    record_property("concurrent_wall_s", f"{time.monotonic() - t0:.1f}")
    for tag, run, out in zip(tags, runs, outs):
        assert run.returncode == 0, f"live run {tag} failed beside the other:\n{out[-3000:]}"
        assert " passed" in out and " failed" not in out, out[-1000:]
    assert not left, f"the concurrent runs left: {left}"
