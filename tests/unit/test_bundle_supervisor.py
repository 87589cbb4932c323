"""``bottle-bundle``: starts the named daemons, forwards SIGTERM, and dies
with the first daemon that dies (a dead daemon must be visible)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bottle_bundle import DAEMONS
from bottle_bundle.supervisor import UsageError, main, parse_daemons
from bundle_harness import LOOPBACK, free_port, port_open, running, spawn


def test_parse_daemons():
    assert parse_daemons(["pipelock,egress", "git-gate", "egress"]) == ["pipelock", "egress", "git-gate"]
    assert parse_daemons([" pipelock , supervise "]) == ["pipelock", "supervise"]
    with pytest.raises(UsageError, match="unknown daemon 'nope'"):
        parse_daemons(["pipelock,nope"])
    with pytest.raises(UsageError, match="usage"):
        parse_daemons([""])
    assert set(DAEMONS) == {"pipelock", "egress", "git-gate", "supervise", "upstream"}


def test_usage_errors_exit_2_without_starting_anything(capsys):
    assert main(["pipelock,bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown daemon 'bogus'" in err and "started" not in err


def test_one_line_per_daemon_and_sigterm_stops_all(tmp_path):
    http_port, gate_port = free_port(), free_port()
    env = {"UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(http_port),
           "GIT_GATE_BASE": str(tmp_path / "git"), "GIT_GATE_PORT": str(gate_port),
           "GIT_GATE_LISTEN": LOOPBACK}
    with running("upstream,git-gate", env, tmp_path / "log", ports=(http_port, gate_port)) as d:
        d.proc.send_signal(signal.SIGTERM)
        code = d.wait_exit()
    out = d.output()
    started = [line for line in out.splitlines() if line.startswith("bottle-bundle: started ")]
    assert [line.split()[2] for line in started] == ["upstream", "git-gate"]
    assert code == 0, out
    assert "received SIGTERM" in out
    assert not port_open(LOOPBACK, http_port) and not port_open(LOOPBACK, gate_port)


def test_a_dying_daemon_takes_the_bundle_down(tmp_path):
    http_port = free_port()
    env = {"UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(http_port),
           "GIT_GATE_BASE": str(tmp_path / "git"), "GIT_GATE_PORT": str(free_port()),
           "GIT_GATE_REPOS": "../escape"}  # git-gate refuses this and exits 2
    daemon = spawn("upstream,git-gate", env, tmp_path / "log")
    try:
        code = daemon.wait_exit()
    finally:
        daemon.stop()
    out = daemon.output()
    assert code == 2, out
    assert "git-gate exited with code 2; stopping the bundle" in out
    assert "not a plain repo name" in out
    assert not port_open(LOOPBACK, http_port)


def test_runs_as_module(tmp_path):
    """``python -m bottle_bundle`` is the image's entry point."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "bottle_bundle"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "usage: bottle-bundle" in done.stderr


# --- issue 14: the smolmachines bundle's socket relay is supervised too ---

def test_socket_relay_runs_beside_the_daemons_and_its_death_stops_the_bundle(tmp_path):
    """With BOTTLE_SOCKET_RELAYS set, the supervisor starts the relay (the
    smolmachines guest's only way to its daemons); a relay that dies takes
    the bundle down (fail closed), as any daemon does."""
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="sup", dir="/tmp"))
    http_port = free_port()
    sock = short / "upstream.sock"
    env = {"UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(http_port),
           "BOTTLE_SOCKET_RELAYS": f"unix:{sock}=tcp:{LOOPBACK}:{http_port}"}
    try:
        with running("upstream", env, tmp_path / "log", ports=(http_port,)) as d:
            deadline = time.monotonic() + 30
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sock.exists(), d.output()
            started = [ln.split()[2] for ln in d.output().splitlines()
                       if ln.startswith("bottle-bundle: started ")]
            assert started == ["upstream", "socket-relay"]
            relay_pid = int(next(ln for ln in d.output().splitlines()
                                 if "started socket-relay" in ln).split("pid ")[1].rstrip(")"))
            os.kill(relay_pid, signal.SIGKILL)
            code = d.wait_exit()
        assert code != 0 and "socket-relay killed by SIGKILL; stopping the bundle" in d.output()
        assert not port_open(LOOPBACK, http_port)
    finally:
        import shutil
        shutil.rmtree(short, ignore_errors=True)
