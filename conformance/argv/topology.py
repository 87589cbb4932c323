"""The engine topology of a launch, read with the argv library.

Containers come from ``run``/``create --name``; their networks from
``--network``/``--net`` (each value through `docker.parse_network`, so
podman's ``NET:alias=x`` and docker's ``name=NET,alias=x`` name NET) and
``network connect NET C``; aliases from ``--network-alias``/``--alias`` and
the network forms' ``alias=``; bundle daemons from the bundle interface
(the container's command is ``bottle-bundle d1,d2``); the agent container by
ROLE: the one the agent exec (`framing.agent_exec`) targets. An image given
by ID or digest changes nothing here. Only when no agent exec is known
(``agent_argvs`` empty) does an image reference decide, as a fallback.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bottle_api.conventions import BUNDLE_ENTRY

from . import docker
from .framing import agent_exec, parse, tool_index
from .grammar import ArgvError, Invocation, UnknownTool

CREATE = (("run",), ("create",))


@dataclass
class Container:
    name: str
    tool: str
    image: str
    networks: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)
    daemons: set[str] = field(default_factory=set)
    publishes: list[str] = field(default_factory=list)
    is_agent: bool = False
    invocation: Invocation | None = None


def _engine(argv: Sequence[str]) -> Invocation | None:
    k = tool_index(argv)
    if k is None or posixpath.basename(str(argv[k])) not in docker.ENGINES:
        return None
    try:
        return parse(argv[k:])
    except (ArgvError, UnknownTool):
        return None  # DOCKER-ARGV reports it


def agent_targets(agent_argvs: Iterable[Sequence[str]]) -> set[str]:
    """Names of the guests the agent execs target (engine containers)."""
    out = set()
    for argv in agent_argvs:
        try:
            found = agent_exec(argv)
        except (ArgvError, UnknownTool):
            continue
        if found is not None and found.invocation.tool in docker.ENGINES:
            out.add(found.invocation.positionals[0])
    return out


def containers(runs: Iterable[Sequence[str]], agent_argvs: Iterable[Sequence[str]] = (), *,
               agent_image: str | None = None) -> dict[str, Container]:
    out: dict[str, Container] = {}
    for argv in runs:
        inv = _engine(argv)
        if inv is None:
            continue
        if inv.path in CREATE and inv.last("name"):
            c = Container(inv.last("name"), inv.tool, inv.positionals[0], invocation=inv)
            for value in inv.values("network", "net"):
                ref = docker.parse_network(value, inv.tool)
                c.networks.add(ref.name)
                c.aliases |= {v for k, v in ref.options if k == "alias"}
            c.aliases |= set(inv.values("network-alias", "net-alias"))
            if inv.command and posixpath.basename(inv.command[0]) == BUNDLE_ENTRY:
                c.daemons = {d for t in inv.command[1:2] for d in t.split(",") if d}
            c.publishes = inv.values("publish")
            out[c.name] = c
        elif inv.path == ("network", "connect") and len(inv.positionals) == 2:
            net, name = inv.positionals
            if name in out:
                out[name].networks.add(net)
                out[name].aliases |= set(inv.values("alias"))
    targets = agent_targets(agent_argvs)
    for c in out.values():
        if targets:
            c.is_agent = c.name in targets
        elif agent_image is not None:
            c.is_agent = not c.daemons and docker.image_matches(c.image, agent_image)
    return out
