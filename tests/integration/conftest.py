"""Integration (live) tests: run only where a docker engine answers.

Without an engine every test here (except those marked ``engine_free``) is
skipped with an ``ERROR:`` reason (so a clause test counts as ERROR, never
PASSED). At the end of a session the
controller checks that nothing the live harness named (``bctl-...``) is left
in ``docker ps -a`` / ``docker network ls``; leftovers fail the session.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conformance.live.resources import PREFIX

HERE = __file__.rsplit("/", 1)[0]
ENGINE_HINT = "start one with `bash scripts/engine.sh` (Debian, as root)"


def engine_reason() -> str | None:
    """Why no docker engine can be used here, or None."""
    if shutil.which("docker") is None:
        return f"no docker client on PATH; {ENGINE_HINT}"
    try:
        probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                               capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return f"docker info timed out; {ENGINE_HINT}"
    if probe.returncode != 0:
        tail = (probe.stderr or probe.stdout).strip().splitlines()
        return f"no docker engine answers ({tail[-1] if tail else 'docker info failed'}); {ENGINE_HINT}"
    return None


def _ours() -> set[str]:
    """``kind name`` of every engine object whose name holds the harness prefix."""
    out = set()
    for argv, kind in ((["docker", "ps", "-a", "--format", "{{.Names}}"], "container"),
                       (["docker", "network", "ls", "--format", "{{.Name}}"], "network")):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        out |= {f"{kind} {n}" for n in r.stdout.split() if PREFIX in n}
    return out


_BEFORE = pytest.StashKey[set[str]]()
_LEFT = pytest.StashKey[list[str]]()


ENGINE_FREE = "engine_free"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ENGINE_FREE}: runs without a docker engine")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [i for i in items if str(i.path).startswith(HERE)
            and not i.get_closest_marker(ENGINE_FREE)]
    reason = engine_reason() if mine else None
    for item in mine if reason else ():
        item.add_marker(pytest.mark.skip(reason=f"ERROR: {reason}"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """On the controller (not on xdist workers): remember what is there."""
    if hasattr(session.config, "workerinput") or engine_reason() is not None:
        return
    session.config.stash[_BEFORE] = _ours()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    before = config.stash.get(_BEFORE, None)
    if before is None:
        return
    left = sorted(_ours() - before)
    if left:
        config.stash[_LEFT] = left
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    left = config.stash.get(_LEFT, None)
    if left:
        terminalreporter.write_sep("-", "live leftovers", red=True)
        terminalreporter.write_line(f"the live run left {len(left)} engine object(s) behind:")
        for obj in left:
            terminalreporter.write_line(f"  {obj}")
