"""Running the live tier leaves ``docker ps -a`` and ``docker network ls`` as
they were: a nested pytest run of live tests (pinned run tag, so whatever it
made is recognisable) is compared before and after.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from bottle_api.runner import SubprocessRunner
from conformance.live.engine import Engine
from conformance.live.resources import PREFIX

HERE = Path(__file__).parent
SUBSET = "exec_echo or pipelock_answers or teardown_leaves"


def test_live_run_leaves_engine_as_it_was(tmp_path):
    engine = Engine(SubprocessRunner())
    tag = "nest" + secrets.token_hex(3)
    # A bottle-like network nobody in the run made: it must survive.
    sentinel = f"bottle-sentinel-{secrets.token_hex(3)}"
    engine.run("network", "create", "--internal", "--label", f"bottle-ref.bottle={sentinel}",
               f"{sentinel}-agent")
    try:
        _check_nested_run(engine, tag, tmp_path)
    finally:
        engine.run("network", "rm", f"{sentinel}-agent", check=False)


def _check_nested_run(engine: Engine, tag: str, tmp_path: Path) -> None:
    before = engine.snapshot()
    assert any(o.name.startswith("bottle-sentinel-") for o in before.objects)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTTLE_REPORT", "PYTEST_"))}
    env["BOTTLE_LIVE_TAG"] = tag
    nested = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "test_live_docker.py"), "-k", SUBSET,
         "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--basetemp", str(tmp_path / "t"),
         "-W", "ignore::DeprecationWarning"],
        env=env, capture_output=True, text=True, timeout=900, cwd=HERE.parent.parent)
    after = engine.snapshot()
    assert nested.returncode == 0, f"nested live run failed:\n{nested.stdout[-3000:]}"
    assert " passed" in nested.stdout and "skipped" not in nested.stdout.split("\n")[-2], \
        nested.stdout[-1000:]
    made = [str(o) for o in after.mentioning(tag)]
    assert not made, f"the live run left: {made}"
    # Bottle-like objects the suite did not make (other live runs, e.g. xdist
    # siblings, hold PREFIX and come and go concurrently) must all survive.
    gone = [str(o) for o in before.objects - after.objects
            if o.mentions("bottle") and not o.mentions(PREFIX)]
    assert not gone, f"the live run removed engine objects it did not create: {gone}"
