"""The bottle spec: what a user writes in YAML, as frozen dataclasses.

`load_spec` / `parse_spec` turn a YAML file into a `BottleSpec` or raise a
`SpecError` that names the file, the key path and the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

AgentKind = Literal["claude", "codex"]
DEFAULT_IMAGE = "claude-bottle:latest"
IMAGE_ENV = "CLAUDE_BOTTLE_IMAGE"


class SpecError(ValueError):
    """Bad user input. ``str()`` is one line: ``file:line: key.path: message``."""

    def __init__(self, message: str, *, file: str = "<spec>", key: str = "",
                 line: int | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclass(frozen=True)
class Route:
    """An egress route: requests to ``host`` get the real token from ``token_env``."""

    host: str
    token_env: str
    header: str = "Authorization"
    scheme: str = "Bearer"


@dataclass(frozen=True)
class Upstream:
    """A git upstream fronted by git-gate."""

    name: str
    url: str
    identity: str | None = None


@dataclass(frozen=True)
class GitUser:
    name: str | None = None
    email: str | None = None

    def is_empty(self) -> bool:
        return not self.name and not self.email

    def fields(self) -> tuple[tuple[str, str], ...]:
        """``(key, value)`` for each set field, in git's order: name, email."""
        return tuple((k, v) for k, v in (("name", self.name), ("email", self.email)) if v)


@dataclass(frozen=True)
class BottleSpec:
    name: str
    agent: AgentKind = "claude"
    image: str | None = None
    prompt: str = ""
    skills: tuple[Path, ...] = ()
    cwd: Path | None = None
    git_user: GitUser = field(default_factory=GitUser)
    upstreams: tuple[Upstream, ...] = ()
    routes: tuple[Route, ...] = ()
    allow: tuple[str, ...] = ()
    tls_passthrough: tuple[str, ...] = ()
    forward_host_credentials: bool = False
    supervise: bool = False
    # Where the spec came from, for error messages raised after loading
    # (e.g. an undefined token_env at launch). Not part of equality.
    source: str = field(default="<spec>", compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def error(self, key: str, message: str) -> SpecError:
        """A `SpecError` pointing at ``key`` (a dotted path) in the source file."""
        return SpecError(message, file=self.source, key=key, line=self.lines.get(key))


def load_spec(path: str | Path) -> BottleSpec:  # pragma: no cover - replaced below
    raise NotImplementedError


def parse_spec(text: str, *, source: str = "<spec>", base_dir: Path | None = None) -> BottleSpec:  # pragma: no cover
    raise NotImplementedError
