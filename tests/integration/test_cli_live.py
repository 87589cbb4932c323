"""``bottle-ref up / ls / exec / down`` against the real docker engine.

Each command is its own process, as a user runs them; the state lives in a
private XDG_STATE_HOME. Cleanup by the bottle's label survives a failed
assertion, so a broken ``down`` cannot leak a bottle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bottle_api.runner import SubprocessRunner
from conformance.live.engine import Engine
from conformance.live.resources import PREFIX, Resources, run_tag

PASS = ("PATH", "DOCKER_HOST", "CLAUDE_BOTTLE_IMAGE", "BOTTLE_BUNDLE_IMAGE", "LANG")


@pytest.fixture
def cli(tmp_path):
    engine = Engine(SubprocessRunner())
    res = Resources(engine, run_tag())
    env = {k: os.environ[k] for k in PASS if k in os.environ}
    env.update(HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"))
    (tmp_path / "home").mkdir()
    for role in ("CLAUDE_BOTTLE_IMAGE", "BOTTLE_BUNDLE_IMAGE"):
        ref = env.get(role)
        if not ref or not engine.image_exists(ref):
            pytest.skip(f"ERROR: {role} is unset or not in the engine; export what "
                        "`python -m bottle_ref.images all --print-env` prints")

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bottle_ref.cli", *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def remove_by_label(name: str) -> None:
        """Belt and braces: whatever still names the bottle goes."""
        for o in engine.snapshot().mentioning(f"bottle-{name}-"):
            engine.run(*(("rm", "-f") if o.kind == "container" else ("network", "rm")),
                       o.id, check=False)

    run.tmp, run.engine, run.res = tmp_path, engine, res
    run.name = f"{PREFIX}{res.tag}-cli"
    res.defer("cli bottle", lambda: remove_by_label(run.name))
    res.defer("cli down", lambda: run("down", run.name, timeout=120))
    yield run
    res.cleanup()


def _spec(path: Path, name: str, extra: str = "") -> Path:
    path.write_text(f"name: {name}\nagent: claude\nprompt: hello from the cli test\n{extra}")
    return path


def test_up_exec_down(cli):
    spec = _spec(cli.tmp / "bottle.yaml", cli.name)
    up = cli("up", str(spec))
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == cli.name
    state = json.loads((cli.tmp / "state" / "bottle-ref" / "bottles" / f"{cli.name}.json").read_text())
    ident = state["handle"]["ident"]
    assert cli.engine.snapshot().mentioning(ident), "up reported success but nothing runs"

    ls = cli("ls")
    assert ls.returncode == 0 and ls.stdout.split("\t")[0] == cli.name

    who = cli("exec", cli.name, "--", "sh", "-c", 'id -un; printf "%s\\n" "$HOME" "$HTTPS_PROXY"')
    assert who.returncode == 0, who.stderr
    assert who.stdout.split() == ["node", "/home/node", "http://pipelock:8888"]
    failing = cli("exec", cli.name, "--", "sh", "-c", "exit 3")
    assert failing.returncode == 3, "exec must return the guest command's exit status"
    prompt = cli("exec", cli.name, "--", "cat", "/home/node/.claude-bottle-prompt.txt")
    assert prompt.stdout == "hello from the cli test"

    again = cli("up", str(spec))
    assert again.returncode == 1 and "already up" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr

    down = cli("down", cli.name)
    assert down.returncode == 0, down.stderr
    left = [str(o) for o in cli.engine.snapshot().mentioning(ident)]
    assert not left, f"down left: {left}"
    assert not (cli.tmp / "state" / "bottle-ref" / cli.name).exists(), "state dir left behind"
    gone = cli("exec", cli.name, "--", "true")
    assert gone.returncode == 2 and "no bottle named" in gone.stderr


def test_failed_up_is_one_line_and_leaves_nothing(cli):
    spec = _spec(cli.tmp / "bad.yaml", cli.name, f"image: {PREFIX}missing-image:none\n")
    up = cli("up", str(spec))
    assert up.returncode == 1
    lines = up.stderr.strip().splitlines()
    assert lines[-1].startswith("bottle-ref: error:") and "not found" in lines[-1], up.stderr
    assert "Traceback" not in up.stderr
    assert not cli.engine.snapshot().mentioning(f"bottle-{cli.name}-")
    assert not (cli.tmp / "state" / "bottle-ref" / "bottles" / f"{cli.name}.json").exists()
    assert not (cli.tmp / "state" / "bottle-ref" / cli.name).exists()


# -- crash safety (issue 11) ----------------------------------------------------------
import signal  # noqa: E402
import time  # noqa: E402

# Kill points: progress lines of a docker `up`, in launch order. Each kill
# lands right after the line appears, i.e. while the step's first engine
# command is in flight.
KILL_POINTS = ("creating networks", "starting pipelock", "starting egress", "starting agent",
               "waiting for bundle daemons")
MIN_KILL_AT = 0.5  # seconds: the earliest kill


def _up_proc(cli, spec: Path) -> subprocess.Popen:
    env = {k: os.environ[k] for k in PASS if k in os.environ}
    env.update(HOME=str(cli.tmp / "home"), XDG_STATE_HOME=str(cli.tmp / "state"),
               PYTHONUNBUFFERED="1")
    # Its own process group, like a shell job: a group signal is Ctrl-C.
    return subprocess.Popen([sys.executable, "-m", "bottle_ref.cli", "up", str(spec)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_line(proc: subprocess.Popen, needle: str, *, timeout: float = 180) -> float:
    """Read up's stderr until a line containing ``needle``; returns the
    seconds since start. Bounded: the pipe's reader thread has a deadline."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue()

    def pump():
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    if not hasattr(proc, "_lines"):
        proc._lines = lines
        proc._start = time.monotonic()
        threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"up never printed {needle!r} within {timeout}s")
        try:
            line = proc._lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"up exited (rc {proc.wait()}) before {needle!r}")
        if needle in line:
            return time.monotonic() - proc._start


def _state_path(cli) -> Path:
    return cli.tmp / "state" / "bottle-ref" / "bottles" / f"{cli.name}.json"


def _assert_nothing_left(cli) -> None:
    left = [str(o) for o in cli.engine.snapshot().mentioning(f"bottle-{cli.name}-")]
    assert not left, f"down left engine objects: {left}"
    assert not _state_path(cli).exists(), "state file left behind"
    assert not (cli.tmp / "state" / "bottle-ref" / cli.name).exists(), "state dir left behind"


@pytest.mark.parametrize("point", KILL_POINTS)
def test_down_after_up_was_killed_at_any_point_leaves_nothing(cli, point):
    """SIGKILL (no handler can run) at five points of a launch; `down NAME`
    then removes every engine object and all state, by the journal."""
    spec = _spec(cli.tmp / "bottle.yaml", cli.name)
    proc = _up_proc(cli, spec)
    try:
        at = _wait_for_line(proc, point)
        if at < MIN_KILL_AT:  # bounded: the earliest kill is 0.5 s in
            deadline = proc._start + MIN_KILL_AT
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            at = time.monotonic() - proc._start
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"killed at {point!r}, {at:.2f}s after start")
    state = json.loads(_state_path(cli).read_text())
    assert state["starting"] and state["journal"]["ident"].startswith(f"bottle-{cli.name}-")
    refused = cli("exec", cli.name, "--", "true")
    assert refused.returncode == 2 and "never finished starting" in refused.stderr
    down = cli("down", cli.name)
    assert down.returncode == 0, down.stderr
    _assert_nothing_left(cli)


@pytest.mark.parametrize("target", ["pid", "group"])
def test_sigint_during_a_create_removes_the_container_it_made(cli, target):
    """SIGINT while `docker create` of the agent runs: to up alone (kill
    -INT: the create completes, the signal deferred) or to its whole
    process group (Ctrl-C: the docker client dies too, the engine may
    finish the create later). Either way up tears down and exits 130."""
    spec = _spec(cli.tmp / "bottle.yaml", cli.name)
    proc = _up_proc(cli, spec)
    try:
        _wait_for_line(proc, "starting agent")
        if target == "pid":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=180) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _assert_nothing_left(cli)


def test_sigterm_during_up_cleans_up_and_exits_143(cli):
    spec = _spec(cli.tmp / "bottle.yaml", cli.name)
    proc = _up_proc(cli, spec)
    try:
        _wait_for_line(proc, "starting egress")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=180) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _assert_nothing_left(cli)


def test_gc_removes_a_killed_launch(cli):
    spec = _spec(cli.tmp / "bottle.yaml", cli.name)
    proc = _up_proc(cli, spec)
    try:
        _wait_for_line(proc, "starting pipelock")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    gc = cli("gc")
    assert gc.returncode == 0, gc.stderr
    assert gc.stdout.split() == [cli.name]
    _assert_nothing_left(cli)


def test_exec_into_a_stopped_bottle_is_one_error_line(cli):
    spec = _spec(cli.tmp / "bottle.yaml", cli.name)
    up = cli("up", str(spec))
    assert up.returncode == 0, up.stderr
    ident = json.loads(_state_path(cli).read_text())["handle"]["ident"]
    cli.engine.run("stop", "--time", "1", f"{ident}-agent")
    gone = cli("exec", cli.name, "--", "true")
    assert gone.returncode == 1
    assert gone.stdout == ""
    lines = gone.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bottle-ref: error: bottle "), gone.stderr
    assert "is not running" in lines[0] and "Error response" not in lines[0]
    down = cli("down", cli.name)
    assert down.returncode == 0, down.stderr
    _assert_nothing_left(cli)
