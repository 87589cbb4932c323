"""Everything a backend may know about the host, read once, up front.

`prepare` is pure: it sees the host only through a `HostContext`. Tests build
one by hand, so no test ever reads the real user's credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Home-relative files a bottle may forward (placeholders are derived from them).
CODEX_AUTH = ".codex/auth.json"
CLAUDE_CREDENTIALS = ".claude/.credentials.json"
HOME_FILES = (CODEX_AUTH, CLAUDE_CREDENTIALS)


def default_state_root(env: Mapping[str, str], home: Path) -> Path:
    base = env.get("XDG_STATE_HOME") or str(home / ".local" / "state")
    return Path(base) / "bottle-ref"


@dataclass(frozen=True)
class HostContext:
    """The host as `prepare` sees it.

    ``home_files`` maps home-relative paths (see `HOME_FILES`) to their text;
    a missing key means the file does not exist. ``state_root`` is where
    `launch` writes per-bottle config files.
    """

    # env and home_files hold real tokens on a real host: never in a repr.
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    home: Path = Path("/home/user")
    cwd: Path = Path("/work")
    home_files: Mapping[str, str] = field(default_factory=dict, repr=False)
    state_root: Path = Path("/tmp/bottle-ref-state")

    @classmethod
    def from_os(cls) -> "HostContext":
        """Read the real host (CLI only; never called by tests or prepare)."""
        env = dict(os.environ)
        home = Path.home()
        files = {}
        for rel in HOME_FILES:
            path = home / rel
            try:
                files[rel] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
        return cls(env=env, home=home, cwd=Path.cwd(), home_files=files,
                   state_root=default_state_root(env, home))

    def expand_user(self, path: str) -> Path:
        """``~/x`` against this context's home (not the process's)."""
        if path == "~" or path.startswith("~/"):
            return self.home / path[2:]
        return Path(path)
