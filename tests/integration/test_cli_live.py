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
