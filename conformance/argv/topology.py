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


# -- a smolvm machine's network ----------------------------------------------------

# Flags that give a smolvm machine a network (1.8.0 and 1.9.3
# src/network/launch.rs: any of them makes `wants_network` true; without
# them the VM has only a vsock and no network at all).
SMOLVM_NET_FLAGS = ("net", "allow-cidr", "allow-host", "outbound-localhost-only", "dns",
                    "network", "port")


@dataclass
class MachineNet:
    """What a ``smolvm machine create`` lets the guest reach.

    ``network``: the guest has a network at all. ``everything``: why it
    reaches every address (no allow list, ``--outbound-localhost-only`` or
    ``--allow-host``), else None. ``allow_cidrs``: the ``--allow-cidr``
    entries, which bound what it reaches when ``everything`` is None."""

    name: str
    network: bool
    everything: str | None
    allow_cidrs: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def machine_network(argv: Sequence[str]) -> MachineNet | None:
    """The network of the machine ``argv`` (a ``smolvm machine create``)
    creates, every networking flag read; None for any other argv."""
    words = [str(a) for a in argv]
    k = tool_index(words)
    if k is None or posixpath.basename(words[k]) != "smolvm" or words[k + 1:k + 3] != [
            "machine", "create"]:
        return None
    values: dict[str, list[str]] = {}
    name, i = None, k + 3
    takes = {"allow-cidr", "allow-host", "dns", "network", "port", "name", "p", "n"}
    while i < len(words):
        tok = words[i]
        if tok == "--":
            break
        if tok.startswith("-"):
            flag, eq, val = tok.lstrip("-").partition("=")
            flag = {"p": "port", "n": "name"}.get(flag, flag)
            if flag in takes and not eq and i + 1 < len(words):
                val, i = words[i + 1], i + 1
            if flag == "name":
                name = val
            else:
                values.setdefault(flag, []).append(val)
        elif name is None and not words[i - 1].startswith("-"):
            name = tok
        i += 1
    flags = [f for f in SMOLVM_NET_FLAGS if f in values]
    cidrs = values.get("allow-cidr", [])
    everything = None
    if not flags:
        return MachineNet(name or "default", False, None, [], [])
    if "outbound-localhost-only" in values:
        everything = ("--outbound-localhost-only allows 127.0.0.0/8 and ::1/128: every host "
                      "loopback service (smolvm machine.rs resolve_egress_flags)")
    elif "allow-host" in values:
        everything = (f"--allow-host {values['allow-host'][0]} allows whatever that name "
                      "resolves to at create time")
    elif not cidrs:
        everything = (f"networking ({', '.join('--' + f for f in flags)}) with no --allow-cidr, "
                      "--allow-host or --outbound-localhost-only: unrestricted outbound network")
    return MachineNet(name or "default", True, everything, cidrs, flags)
