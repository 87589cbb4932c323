"""git-gate: a plain ``git daemon`` serving the bottle's repos.

The guest's ``~/.gitconfig`` rewrites each declared upstream to
``git://<gate>/<name>.git`` (PROV-GITGATE), so the gate must answer for every
declared name even before anything was pushed: missing bare repos are
created at startup. Push is enabled (receive-pack) because the gate is where
the agent's work leaves the bottle.

Environment (defaults are the bundle image interface):
    GIT_GATE_REPOS    comma list of repo names (``name`` -> <base>/name.git)
    GIT_GATE_BASE     /srv/git
    GIT_GATE_PORT     9418
    GIT_GATE_LISTEN   0.0.0.0

After the repos exist the process *becomes* git daemon (exec), so SIGTERM
reaches git directly. ``safe.directory=*`` is passed through ``git -c`` (it
reaches upload-pack/receive-pack via GIT_CONFIG_PARAMETERS) so repos on a
bind mount owned by another uid are still served.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bottle_api import conventions

NAME = "git-gate"
REPO_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


def repo_names(value: str | None) -> list[str]:
    """Names from the comma list; ValueError for one that could escape the
    base dir or is not a plain name."""
    names = []
    for raw in (value or "").split(","):
        name = raw.strip()
        if not name:
            continue
        if name.endswith(".git"):
            name = name[: -len(".git")]
        if not REPO_NAME.match(name) or ".." in name:
            raise ValueError(f"GIT_GATE_REPOS: {raw.strip()!r} is not a plain repo name")
        if name not in names:
            names.append(name)
    return names


def daemon_argv(base: Path, port: int, listen: str) -> list[str]:
    return ["git", "-c", "safe.directory=*", "daemon", "--reuseaddr", f"--base-path={base}",
            "--export-all", "--enable=receive-pack", f"--port={port}", f"--listen={listen}",
            str(base)]


def ensure_repos(base: Path, names: list[str]) -> list[Path]:
    """Create ``<base>/<name>.git`` bare repos that are missing; returns the
    ones created."""
    base.mkdir(parents=True, exist_ok=True)
    created = []
    for name in names:
        path = base / f"{name}.git"
        if path.exists():
            continue
        subprocess.run(["git", "init", "--bare", "--quiet", str(path)], check=True,
                       capture_output=True, text=True)
        created.append(path)
    return created


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    base = Path(env.get("GIT_GATE_BASE") or conventions.GIT_GATE_ROOT)
    listen = env.get("GIT_GATE_LISTEN") or "0.0.0.0"
    try:
        port = int(env.get("GIT_GATE_PORT") or conventions.PORTS[conventions.GIT_GATE])
        names = repo_names(env.get("GIT_GATE_REPOS"))
        created = ensure_repos(base, names)
    except ValueError as exc:
        print(f"{NAME}: refusing to start: {exc}", file=sys.stderr, flush=True)
        return 2
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        print(f"{NAME}: cannot create repos under {base}: {detail}", file=sys.stderr, flush=True)
        return 2
    for path in created:
        print(f"{NAME}: created {path}", file=sys.stderr)
    print(f"{NAME}: serving {base} ({', '.join(names) or 'no declared repos'}) on {listen}:{port}",
          file=sys.stderr, flush=True)
    argv_ = daemon_argv(base, port, listen)
    try:
        os.execvp(argv_[0], argv_)
    except OSError as exc:
        print(f"{NAME}: cannot run git daemon: {exc.strerror}", file=sys.stderr, flush=True)
        return 127
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())
