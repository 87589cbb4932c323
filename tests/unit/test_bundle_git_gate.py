"""git-gate: declared repos exist at startup and are served over git:// (push + clone)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bottle_bundle.git_gate import daemon_argv, repo_names
from bundle_harness import LOOPBACK, free_port, running

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git-gate needs git")

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.test",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.test",
           "GIT_TERMINAL_PROMPT": "0"}


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV},
                          capture_output=True, text=True, timeout=30)


def test_repo_names():
    assert repo_names(" app, lib.git ,app,") == ["app", "lib"]
    for bad in ("../x", "a/b", ".hidden", "x..y"):
        with pytest.raises(ValueError, match="not a plain repo name"):
            repo_names(bad)


def test_daemon_argv_is_the_interface_command():
    argv = daemon_argv(Path("/srv/git"), 9418, "0.0.0.0")
    assert argv[argv.index("daemon"):] == [
        "daemon", "--reuseaddr", "--base-path=/srv/git", "--export-all",
        "--enable=receive-pack", "--port=9418", "--listen=0.0.0.0", "/srv/git"]


def test_serves_declared_repos_push_then_clone(tmp_path):
    base, port = tmp_path / "srv", free_port()
    env = {"GIT_GATE_BASE": str(base), "GIT_GATE_PORT": str(port), "GIT_GATE_LISTEN": LOOPBACK,
           "GIT_GATE_REPOS": "app,lib"}
    url = f"git://{LOOPBACK}:{port}"
    with running("git-gate", env, tmp_path / "log", ports=(port,)) as d:
        assert (base / "app.git" / "HEAD").is_file() and (base / "lib.git" / "HEAD").is_file()

        empty = git("clone", f"{url}/app.git", str(tmp_path / "empty"))
        assert empty.returncode == 0, empty.stderr + d.output()

        work = tmp_path / "work"
        assert git("init", "-q", "-b", "main", str(work)).returncode == 0
        (work / "README").write_text("through the gate\n")
        assert git("add", "README", cwd=work).returncode == 0
        assert git("commit", "-qm", "seed", cwd=work).returncode == 0
        push = git("push", f"{url}/app.git", "main", cwd=work)
        assert push.returncode == 0, push.stderr + d.output()

        clone = git("clone", "-b", "main", f"{url}/app.git", str(tmp_path / "clone"))
        assert clone.returncode == 0, clone.stderr
        assert (tmp_path / "clone" / "README").read_text() == "through the gate\n"

        missing = git("ls-remote", f"{url}/undeclared.git")
        assert missing.returncode != 0
