"""Running the live tier leaves nothing of its own behind and spares what it
did not make: a nested pytest run of live tests (pinned run tag, so whatever
it made is recognisable) must leave no object with its tag, and a bottle-like
sentinel network made outside it must survive.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from bottle_api.runner import SubprocessRunner
from conformance.live.engine import Engine

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
        _check_nested_run(engine, tag, tmp_path, f"{sentinel}-agent")
    finally:
        engine.run("network", "rm", f"{sentinel}-agent", check=False)


def _check_nested_run(engine: Engine, tag: str, tmp_path: Path, sentinel_name: str) -> None:
    before = engine.snapshot()
    assert any(o.name == sentinel_name for o in before.objects)
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
    # The bottle-like network nobody in the run made must survive. Only our
    # own sentinel is judged: other users of the engine (other live runs)
    # create and remove their objects meanwhile, which is none of our business.
    assert [o for o in after.objects if o.name == sentinel_name], (
        f"the live run removed {sentinel_name}, which it did not create")
