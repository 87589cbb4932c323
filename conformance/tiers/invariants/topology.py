"""Which container reaches which daemon, read from recorded argv (PORT-EGRESS-ONLY-WHEN-ROUTED, PROV-GITGATE)."""

from __future__ import annotations

import contextlib
import ipaddress
import re

import dataclasses
from collections.abc import Mapping, Sequence

from ...argv import topology as argv_topology
from ...outcomes import not_supported
from ...recording import (
    Recording,
    created_resource,
    parse_publish,
)
from ...argv.checks import socket_daemon
from .facts import BUNDLE_ENTRY

# -- topology (PORT-EGRESS-ONLY-WHEN-ROUTED, PROV-GITGATE) ---------------------------


@dataclasses.dataclass
class _Container:
    name: str
    networks: set[str]
    aliases: set[str]
    daemons: set[str]
    publishes: list  # recording.Publish
    is_agent: bool


def _daemons_in(argv: Sequence[str]) -> set[str]:
    if BUNDLE_ENTRY not in argv:
        return set()
    i = list(argv).index(BUNDLE_ENTRY)
    if i + 1 >= len(argv):
        return set()
    return {d for d in argv[i + 1].split(",") if d}


def _flag_values(argv: Sequence[str], *flags: str) -> list[str]:
    out = []
    for i, tok in enumerate(argv):
        if tok in flags and i + 1 < len(argv):
            out.append(argv[i + 1])
        for f in flags:
            if f.startswith("--") and tok.startswith(f + "="):
                out.append(tok.split("=", 1)[1])
    return out


def _topology(rec: Recording) -> tuple[dict[str, _Container], dict | None]:
    """Containers the launch made (networks, aliases, daemons, publishes;
    the agent found by role, `conformance.argv.topology`) and the smolvm
    agent machine, if any (``{"name", "sockets"}``: its ``--mount-socket``
    ``(HOST_PATH, GUEST_PATH)`` pairs)."""
    launch = rec.runs("launch")
    found = argv_topology.containers(
        launch, [rec.agent_argvs[t] for t in (False, True) if t in rec.agent_argvs],
        agent_image=rec.plan.agent_image_ref)
    containers = {name: _Container(name=c.name, networks=c.networks, aliases=c.aliases,
                                   daemons=c.daemons,
                                   publishes=[parse_publish(p) for p in c.publishes],
                                   is_agent=c.is_agent)
                  for name, c in found.items()}
    machine = None
    for argv in launch:
        res = created_resource(argv)
        if res is not None and res.kind == "machine":
            net = argv_topology.machine_network(argv)
            sockets = [tuple(v.partition(":")[::2]) for v in _flag_values(argv, "--mount-socket")]
            machine = {"name": res.name, "sockets": sockets,
                       "allow_cidrs": _flag_values(argv, "--allow-cidr"),
                       "network": net is None or net.network,
                       "everything": net.everything if net is not None else None}
    return containers, machine


def _reaches(containers: Mapping[str, _Container], machine: dict | None, daemon: str,
             port: int) -> tuple[bool, str]:
    """Can the agent reach ``daemon``? ``(answer, why)``."""
    agents = [c for c in containers.values() if c.is_agent]
    hosting = [c for c in containers.values() if daemon in c.daemons]
    if agents:
        nets = set().union(*(a.networks for a in agents))
        for c in hosting:
            shared = c.networks & nets
            if shared:
                return True, f"{c.name} runs {daemon} on the agent's network(s) {sorted(shared)}"
        return False, f"no container running {daemon} shares a network with the agent"
    if machine is not None:
        if machine.get("everything"):
            return True, f"the guest reaches everything: {machine['everything']}"
        # A smolvm guest has no network (SMOLVM-NO-NET): it reaches a daemon
        # only through a --mount-socket whose host end is <daemon>.sock
        # (SMOLVM-SOCKETS), served by a container running that daemon.
        for host, guest in machine["sockets"]:
            if socket_daemon(host) == daemon and hosting:
                return True, (f"--mount-socket {host}:{guest} reaches {daemon} "
                              f"(run by {hosting[0].name})")
        if not machine.get("network", True):
            return False, f"no --mount-socket of the guest serves {daemon} (<...>/{daemon}.sock)"
        nets = []
        for cidr in machine["allow_cidrs"]:
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(cidr, strict=False))
        for c in hosting:
            for p in c.publishes:
                if str(p.container_port) != str(port) or p.host_ip is None:
                    continue
                with contextlib.suppress(ValueError):
                    ip = ipaddress.ip_address(p.host_ip.strip("[]"))
                    if any(ip in n for n in nets):
                        return True, (f"{c.name} publishes {daemon}'s port {port} on {p.host_ip}, "
                                      f"inside the guest's --allow-cidr {machine['allow_cidrs']}")
        return False, f"{daemon}'s port {port} is not published where the guest may dial"
    not_supported("cannot find the agent in the recorded launch (no container from the "
                  "agent image, no smolvm machine): topology not readable from argv")


# A guest relay mapping (bottle_bundle.socket_relay): loopback TCP -> a mounted socket.
_RELAY_MAPPING = re.compile(r"tcp:(?P<host>[0-9.]+|localhost):(?P<port>\d+)=unix:(?P<guest>/\S+)")


def relay_addresses(rec: Recording, machine: dict | None, daemon: str) -> set[str]:
    """``host:port`` addresses at which a smolvm guest (no network,
    SMOLVM-NO-NET) reaches ``daemon``: those of a relay the launch started
    with ``tcp:HOST:PORT=unix:GUEST`` where GUEST is the guest end of the
    ``--mount-socket`` whose host end is ``<daemon>.sock``."""
    if machine is None:
        return set()
    guests = {g for h, g in machine["sockets"] if socket_daemon(h) == daemon}
    out: set[str] = set()
    for _, call in rec.indexed("launch"):
        for tok in call.argv:
            m = _RELAY_MAPPING.fullmatch(str(tok))
            if m and m["guest"] in guests:
                out.add(f"{m['host']}:{int(m['port'])}")
    return out

