"""The plan: everything `launch` needs, computed purely by `prepare`.

A plan is frozen data. It carries an image *reference* (a string), never a
built artifact; config files as rendered text (launch writes them under
``state_dir``); and token values only in ``secrets``, which is never
serialised (`to_json` redacts it) and only ever reaches a child process
through the runner's ``env=``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .spec import AgentKind, GitUser, Limits, Route, Upstream

# Bundle daemon names and their container ports (DESIGN §1).
from .conventions import EGRESS, GIT_GATE, PIPELOCK, PORTS, PROMPT_PATH, SUPERVISE  # noqa: E402,F401

REDACTED = "<redacted>"


@dataclass(frozen=True)
class GuestFile:
    """A file `launch` places in the guest (copy, then chown/chmod as root)."""

    path: str
    content: str
    mode: int = 0o600
    owner: str = "node"


@dataclass(frozen=True)
class PipelockPlan:
    """pipelock's config, rendered in pipelock's own keys (see `pipelock.py`)."""

    config_yaml: str
    port: int = PORTS[PIPELOCK]


@dataclass(frozen=True)
class EgressPlan:
    """egress's routes and where it forwards (always pipelock)."""

    routes: tuple[Route, ...]
    routes_yaml: str
    token_slots: tuple[str, ...]  # bare env names egress reads its real tokens from
    upstream_proxy: str  # pipelock, from egress's point of view
    port: int = PORTS[EGRESS]


@dataclass(frozen=True)
class GitGatePlan:
    upstreams: tuple[Upstream, ...]
    port: int = PORTS[GIT_GATE]


@dataclass(frozen=True)
class SupervisePlan:
    port: int = PORTS[SUPERVISE]
    server_name: str = "supervise"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Backend-neutral plan. Backends subclass it to add their own fields."""

    backend: str
    bottle: str
    agent: AgentKind
    agent_image_ref: str
    bundle_image_ref: str
    state_dir: str
    daemons: tuple[str, ...]
    first_hop: str  # EGRESS when any route is declared (incl. auto routes), else PIPELOCK
    pipelock: PipelockPlan
    egress: EgressPlan
    git_gate: GitGatePlan | None = None
    supervise: SupervisePlan | None = None
    guest_env: Mapping[str, str] = field(default_factory=dict)  # never holds a secret
    guest_files: tuple[GuestFile, ...] = ()
    prompt: str = ""
    prompt_path: str = PROMPT_PATH
    skills: tuple[tuple[str, str], ...] = ()  # (host dir, skill name)
    cwd: str | None = None
    git_user: GitUser = field(default_factory=GitUser)
    limits: Limits = field(default_factory=Limits)  # the guest's memory/pids/CPU limits
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    missing_tokens: tuple[str, ...] = ()  # key paths of routes whose token_env is unset
    spec_source: str = "<spec>"
    spec_lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def routed(self) -> bool:
        return self.first_hop == EGRESS

    def state_path(self, name: str) -> Path:
        return Path(self.state_dir) / name


def to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as plain data with every secret value replaced by `REDACTED`."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out = {}
            for f in dataclasses.fields(value):
                v = getattr(value, f.name)
                if f.name == "secrets":
                    v = {k: REDACTED for k in v}
                out[f.name] = convert(v)
            return out
        if isinstance(value, Mapping):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return convert(plan)


def to_json(plan: Plan) -> str:
    return json.dumps(to_dict(plan), indent=2, sort_keys=True)
