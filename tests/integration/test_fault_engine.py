"""`bottle-ref up`/`down` against a fake docker engine with faults (issue 17):
a kill at every command, a hang, an unreachable engine. No real engine is
used (``engine_free``): the shim `fault_engine.py` plays ``docker`` and a
stub plays ``openssl`` (CA generation is not under test and costs seconds)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine_free

HERE = Path(__file__).parent
EXAMPLE = HERE.parent.parent / "examples" / "minimal.yaml"
OPENSSL_STUB = """#!/bin/sh
# writes the -keyout and -out files openssl req would
while [ $# -gt 0 ]; do
  case "$1" in -keyout) echo KEY > "$2";; -out) echo CERT > "$2";; esac; shift
done
"""


@pytest.fixture
def engine(tmp_path):
    bin_dir, root = tmp_path / "bin", tmp_path / "engine"
    bin_dir.mkdir()
    root.mkdir()
    (bin_dir / "docker").write_text(
        f"#!/bin/sh\nexec {sys.executable} {HERE / 'fault_engine.py'} \"$@\"\n")
    (bin_dir / "openssl").write_text(OPENSSL_STUB)
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    (tmp_path / "home").mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_ENGINE": str(root), "XDG_STATE_HOME": str(tmp_path / "state"),
           "HOME": str(tmp_path / "home"), "BOTTLE_BACKEND": "docker"}
    for name in ("FAKE_KILL_AT", "FAKE_HANG_AT", "FAKE_DOWN", "DOCKER_HOST"):
        env.pop(name, None)
    return env


def cli(env, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c",
                           "import sys, bottle_ref.cli as c; sys.exit(c.main(sys.argv[1:]))",
                           *args], env=env, capture_output=True, text=True, timeout=120, **kw)


def objects(env) -> list[str]:
    d = Path(env["FAKE_ENGINE"]) / "objects"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def leftovers(env) -> list[str]:
    state = Path(env["XDG_STATE_HOME"]) / "bottle-ref"
    files = [str(p.relative_to(state)) for p in state.rglob("*")] if state.exists() else []
    return [f for f in files if f != "bottles"] + objects(env)


def reset(env) -> None:
    root = Path(env["FAKE_ENGINE"])
    for p in sorted(root.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()


def test_a_full_up_and_down_on_the_fake_engine(engine):
    up = cli(engine, "up", str(EXAMPLE))
    assert up.returncode == 0, up.stderr
    assert any(o.startswith("ctr.") for o in objects(engine))
    down = cli(engine, "down", "minimal")
    assert down.returncode == 0, down.stderr
    assert leftovers(engine) == []


def _calls(env) -> int:
    return int((Path(env["FAKE_ENGINE"]) / "calls").read_text())


def _call(log: Path, n: int) -> str:
    """The engine's log line of call ``n`` ("n argv..."), or ""."""
    lines = log.read_text().splitlines() if log.exists() else []
    return next((ln for ln in lines if ln.split(" ", 1)[0] == str(n)), "")


def test_a_kill_at_every_command_leaves_nothing_down_cannot_find(engine):
    """SIGKILL `up` during each engine command in turn; that command then
    completes after up died (a create in flight). `down` at once must
    remove everything: every object, the state dir (CA keys), the entry."""
    assert cli(engine, "up", str(EXAMPLE)).returncode == 0
    total = _calls(engine)
    assert cli(engine, "down", "minimal").returncode == 0
    failures = []
    for n in range(1, total + 1):
        reset(engine)
        up = cli({**engine, "FAKE_KILL_AT": str(n), "FAKE_LAG": "0.3"}, "up", str(EXAMPLE))
        assert up.returncode == -signal.SIGKILL, (n, up.stderr)
        down = cli(engine, "down", "minimal")
        left = leftovers(engine)
        if down.returncode != 0 or left:
            failures.append(f"kill at call {n}: down exit {down.returncode} "
                            f"({down.stderr.strip()}), left {left}")
    assert not failures, "\n".join(failures)


def test_an_unreachable_engine_keeps_the_bottle_and_says_so(engine):
    assert cli(engine, "up", str(EXAMPLE)).returncode == 0
    made = objects(engine)
    down = cli({**engine, "FAKE_DOWN": "1"}, "down", "minimal")
    assert down.returncode == 1 and down.stderr.count("\n") == 1, down.stderr
    assert "Cannot connect" in down.stderr and "agent" in down.stderr
    forced = cli({**engine, "FAKE_DOWN": "1"}, "down", "--force", "minimal")
    assert forced.returncode == 1
    assert objects(engine) == made
    assert cli(engine, "down", "minimal").returncode == 0  # engine back: now it goes
    assert leftovers(engine) == []
    up = cli({**engine, "FAKE_DOWN": "1"}, "up", str(EXAMPLE))
    assert up.returncode == 1 and "unreachable" in up.stderr and "not found" not in up.stderr
    assert leftovers(engine) == []


def test_one_sigterm_during_a_hanging_create_tears_down(engine):
    """`docker create` hangs (the 6th call: after both image checks and
    the three networks, one of the containers' creates, which `up` starts
    together): one SIGTERM ends up within its grace, and what it made,
    before and beside the hanging call, is removed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, bottle_ref.cli as c; sys.exit(c.main(sys.argv[1:]))",
         "up", str(EXAMPLE)], env={**engine, "FAKE_HANG_AT": "6",
                                   "BOTTLE_REF_SIGNAL_GRACE": "0.5"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = Path(engine["FAKE_ENGINE"]) / "log"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and _call(log, 6)):
            time.sleep(0.05)
        assert _call(log, 6).split()[1:2] == ["create"], (
            f"up never reached its hanging create: {_call(log, 6)!r}")
    except BaseException:
        # Not left hanging (the fake create sleeps an hour), writing into
        # this test's dirs later: up and its commands go together.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert time.monotonic() - t0 < 30
    assert leftovers(engine) == []
    state = Path(engine["XDG_STATE_HOME"]) / "bottle-ref" / "bottles" / "minimal.json"
    assert not state.exists() or json.loads(state.read_text())
