"""The static argv clauses, as pure functions over a launch's argvs.

Each ``check_*`` takes the argvs a launch ran (in order; the agent argvs
last) and returns a `Verdict`: ``problems`` (empty: holds) or ``na`` (the
clause cannot be read from these argvs: no such tool, or a vocabulary the
suite lacks; the tier reports NOT_SUPPORTED with that reason, never
PASSED). The tier (`conformance.argv.tier`) feeds them recordings; the unit
tests feed them small hand-written fixtures.

The agent guest is found by role: the container (or smolvm machine) that
the agent exec (`framing.agent_exec`: the exec whose command runs
claude/codex) targets, never by image reference.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import docker, smolvm
from .framing import agent_exec, parse_any, tool_index
from .grammar import ArgvError, Invocation, Option, UnknownTool, prog

Argv = Sequence[str]
ENGINE_CREATE = (("run",), ("create",))
BRIDGE_NO_HOST_ADDR = "com.docker.network.bridge.inhibit_ipv4"


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    na: str | None = None

    @property
    def ok(self) -> bool:
        return self.na is None and not self.problems


def show(argv: Argv) -> str:
    text = shlex.join(str(a) for a in argv)
    return text if len(text) <= 500 else text[:497] + "..."


def _parsed(argvs: Sequence[Argv], tools) -> list[tuple[Argv, Invocation | None, str | None]]:
    """``(argv, invocation or None, parse error or None)`` of every argv
    whose tool (possibly behind a wrapper) is in ``tools``."""
    out = []
    for argv in argvs:
        k = tool_index(argv)
        if k is None or prog(argv[k:]) not in tools:
            continue
        try:
            inv, _ = parse_any(argv[k:])
            out.append((argv, inv, None))
        except ArgvError as exc:
            out.append((argv, None, str(exc)))
    return out


def unreadable(argvs: Sequence[Argv], tools) -> str | None:
    """Why the launch cannot be read whole: the first argv of ``tools`` that
    does not parse, with the parser's reason (it names the flag). A clause
    that must read every such argv is then NOT_SUPPORTED with this reason,
    never judged on the rest (a dropped ``network create`` would make the
    agent's network look uncreated, a FAILED for the wrong reason)."""
    for argv, inv, err in _parsed(argvs, tools):
        if inv is None:
            return f"cannot read `{show(argv)}`: {err}"
    return None


# -- SMOLVM-* ---------------------------------------------------------------------


def smolvm_argvs(argvs: Sequence[Argv]) -> list[Argv]:
    out = []
    for argv in argvs:
        k = tool_index(argv)
        if k is not None and prog(argv[k:]) == smolvm.TOOL:
            out.append(list(argv[k:]))
    return out


def check_smolvm_grammar(argvs: Sequence[Argv]) -> Verdict:
    """SMOLVM-ARGV: every smolvm invocation parses under ONE supported version."""
    runs = smolvm_argvs(argvs)
    if not runs:
        return Verdict(na="the backend runs no smolvm command")
    common = set(smolvm.SUPPORTED)
    v = Verdict()
    for argv in runs:
        ok = set()
        err = None
        for version in smolvm.SUPPORTED:
            try:
                smolvm.GRAMMARS[version].parse(argv)
                ok.add(version)
            except ArgvError as exc:
                err = err if version != smolvm.NEWEST and err else exc
        if not ok:
            v.problems.append(f"{err} in: {show(argv)}")
        common &= ok or common
    if not v.problems and not common:
        v.problems.append("no single supported smolvm version accepts every invocation "
                          "(flags from different versions are mixed)")
    return v


def _lenient(argv: Argv) -> Invocation:
    """A best-effort reading of a smolvm argv the grammar refuses (SMOLVM-ARGV
    reports the refusal): the subcommand path and every ``--long VALUE`` /
    ``-o VALUE`` pair, so the other SMOLVM-* clauses still see ``--from``,
    ``-o`` and ``machine create`` in an argv with, say, a positional name."""
    argv = [str(a) for a in argv]
    path = tuple(argv[1:3])
    path = smolvm.ALIASES.get(path, path)
    cmd = smolvm.GRAMMARS[smolvm.NEWEST].commands.get(path)
    opts, pos, i = [], [], 3
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            break
        flag = cmd.flag(tok.split("=", 1)[0]) if cmd is not None and tok.startswith("-") else None
        if flag is not None and flag.takes_value and "=" not in tok and i + 1 < len(argv):
            opts.append(Option(flag.long, argv[i + 1], i))
            i += 2
            continue
        if flag is not None:
            opts.append(Option(flag.long, tok.split("=", 1)[1] if "=" in tok else None, i))
        elif not tok.startswith("-"):
            pos.append(tok)
        i += 1
    if path in (("machine", "create"), ("machine", "delete")) and pos and not any(
            o.name == "name" for o in opts):
        opts.append(Option("name", pos[0], 3))  # the pre-1.0.2 positional name
    return Invocation(tuple(argv), smolvm.TOOL, path, tuple(opts), tuple(pos), grammar="lenient")


def _smolvm_invocations(argvs: Sequence[Argv]) -> list[tuple[int, Argv, Invocation | None]]:
    out = []
    for i, argv in enumerate(smolvm_argvs(argvs)):
        try:
            out.append((i, argv, parse_any(argv)[0]))
        except ArgvError:
            out.append((i, argv, _lenient(argv) if len(argv) > 2 else None))
    return out


def check_from_sidecar(argvs: Sequence[Argv]) -> Verdict:
    """SMOLVM-FROM-SIDECAR: ``--from F`` names ``X.smolmachine`` of an earlier
    ``pack create -o X`` (without ``--single-file``) of the same launch."""
    invs = _smolvm_invocations(argvs)
    if not invs:
        return Verdict(na="the backend runs no smolvm command")
    v, outputs = Verdict(), []
    used = False
    for _, argv, inv in invs:
        if inv is None:
            continue
        if inv.path == ("pack", "create") and inv.last("output"):
            outputs.append((inv.last("output"), inv.has("single-file")))
        if inv.path == ("machine", "create") and inv.last("from") is not None:
            used = True
            src = inv.last("from")
            sidecars = {smolvm.sidecar_of(o) for o, single in outputs if not single}
            stubs = {o for o, _ in outputs}
            if src in sidecars:
                continue
            if src in stubs:
                v.problems.append(f"--from {src} is the executable stub `pack create -o` wrote; "
                                  f"the artifact is {smolvm.sidecar_of(src)} (pack.rs:189-203): "
                                  f"{show(argv)}")
            elif not outputs:
                v.problems.append(f"--from {src} but no `smolvm pack create -o X` ran before it "
                                  f"in this launch: {show(argv)}")
            else:
                v.problems.append(f"--from {src} is not the sidecar of any `pack create -o X` of "
                                  f"this launch (expected one of {sorted(sidecars)}): {show(argv)}")
    if not used and not v.problems:
        v.na = None  # no --from: the clause holds trivially only if smolvm ran (it did)
    return v


def check_version_first(argvs: Sequence[Argv]) -> Verdict:
    """SMOLVM-VERSION-FIRST: ``smolvm --version`` runs before the first
    ``machine create``."""
    invs = _smolvm_invocations(argvs)
    if not invs:
        return Verdict(na="the backend runs no smolvm command")
    seen_version = False
    for _, argv, inv in invs:
        if smolvm.is_version_check(argv):
            seen_version = True
        if inv is not None and inv.path == ("machine", "create"):
            if not seen_version:
                return Verdict([f"`smolvm machine create` runs with no `smolvm --version` check "
                                f"before it (smolvm < {smolvm.EGRESS_FIX[0]} drops --allow-cidr "
                                f"for --from: unrestricted egress): {show(argv)}"])
            return Verdict()
    return Verdict()


def cp_sources(argvs: Sequence[Argv]) -> list[tuple[Argv, str]]:
    """``(argv, host source)`` of every smolvm upload (``machine cp SRC M:DST``)."""
    out = []
    for _, argv, inv in _smolvm_invocations(argvs):
        if inv is None or inv.path != ("machine", "cp") or len(inv.positionals) != 2:
            continue
        src, dst = inv.positionals
        if smolvm.split_cp_arg(src)[0] is None and smolvm.split_cp_arg(dst)[0] is not None:
            out.append((argv, src))
    return out


def check_cp_regular_file(argvs: Sequence[Argv], kinds: Mapping[str, str]) -> Verdict:
    """SMOLVM-CP-FILE: each upload's source was a regular file when the
    command ran. ``kinds`` maps a source path to what it was at that moment
    (``file``, ``dir``, ``symlink``, ``other``, ``missing``), observed by the
    recording runner."""
    if not smolvm_argvs(argvs):
        return Verdict(na="the backend runs no smolvm command")
    v = Verdict()
    for argv, src in cp_sources(argvs):
        kind = kinds.get(src, "missing")
        if kind in ("file", "missing"):
            # missing: a file a recorded (not executed) command would have
            # written, e.g. openssl's CA; nothing to object to statically.
            continue
        v.problems.append(f"`machine cp` copies one regular file (machine.rs:4973 File::open), "
                          f"but {src} is a {'directory' if kind == 'dir' else kind}: {show(argv)}")
    return v


# -- PROFILE-DECLARED ---------------------------------------------------------------

# Profile names (conformance.capabilities.Profile values; kept as strings here
# so the argv library stays free of the suite's vocabulary module).
DOCKER_CLI, CONTAINER_GUEST, SMOLVM = "docker-cli", "container-guest", "smolvm"


def driven_profiles(argvs: Sequence[Argv]) -> dict[str, Argv]:
    """Profile -> the first argv that shows the backend driving its tool
    (a docker-family command; an agent exec into an engine container; a
    smolvm command), looked for behind wrappers as everywhere else."""
    out: dict[str, Argv] = {}
    for argv in argvs:
        k = tool_index(argv)
        if k is None:
            continue
        tool = prog(argv[k:])
        if tool in docker.ENGINES:
            out.setdefault(DOCKER_CLI, argv)
        elif tool == smolvm.TOOL:
            out.setdefault(SMOLVM, argv)
    g = agent_guest(argvs)
    if not isinstance(g, str) and g.kind == "container":
        ae = next((a for a in reversed(argvs) if _is_agent_exec(a)), None)
        out.setdefault(CONTAINER_GUEST, ae or (g.create.argv if g.create else ()))
    return out


def _is_agent_exec(argv: Argv) -> bool:
    try:
        return agent_exec(argv) is not None
    except (UnknownTool, ArgvError):
        return False


def check_profiles_declared(launches: Mapping[str, Sequence[Argv]],
                            declared: Sequence[str]) -> Verdict:
    """PROFILE-DECLARED: the profiles ``declared`` (core left out) equal those
    the recorded ``launches`` (scenario -> argvs) drive, taken together: a
    profile driven but not declared would make its clauses NOT_APPLICABLE (a
    dodge); one declared but never driven leaves its clauses nothing to read."""
    known = (DOCKER_CLI, CONTAINER_GUEST, SMOLVM)
    driven: dict[str, tuple[str, Argv]] = {}
    for scenario, argvs in launches.items():
        for prof, argv in driven_profiles(argvs).items():
            driven.setdefault(prof, (scenario, argv))
    want = {p for p in declared if p in known}
    v = Verdict()
    for prof in known:
        if prof in driven and prof not in want:
            scenario, argv = driven[prof]
            v.problems.append(f"the backend drives the {prof} profile's tool but does not declare "
                              f"it (scenario {scenario!r}: {show(argv)})")
        elif prof in want and prof not in driven:
            v.problems.append(f"the backend declares the {prof} profile but no recorded launch "
                              f"({', '.join(sorted(launches)) or 'none'}) drives its tool")
    return v


# -- DOCKER-ARGV ------------------------------------------------------------------------


def check_docker_grammar(argvs: Sequence[Argv]) -> Verdict:
    """DOCKER-ARGV: every docker-family invocation parses (known subcommand,
    known flags, every value flag followed by its value)."""
    rows = _parsed(argvs, docker.ENGINES)
    if not rows:
        return Verdict(na="the backend runs no docker, podman or nerdctl command")
    v = Verdict()
    gaps = []
    for argv, inv, err in rows:
        if err is None:
            continue
        gap = docker.vocabulary_gap(prog(argv[tool_index(argv) or 0:]))
        (gaps if gap else v.problems).append(f"{err} in: {show(argv)}")
    if gaps and not v.problems:
        v.na = (docker.vocabulary_gap(prog(argvs[0])) or "vocabulary gap") + ": " + gaps[0]
    return v


# -- the agent guest -------------------------------------------------------------------


@dataclass
class Guest:
    """The agent's guest as the argvs show it: ``kind`` container|machine,
    its ``name``, the creating invocation and every invocation of the launch."""

    kind: str
    name: str
    tool: str
    create: Invocation | None
    invocations: list[Invocation]


def agent_guest(argvs: Sequence[Argv]) -> Guest | str:
    """The guest the agent exec targets, or why it cannot be read."""
    target = None
    for argv in reversed(argvs):
        try:
            ae = agent_exec(argv)
        except UnknownTool:
            continue
        except ArgvError as exc:
            return f"the agent exec does not parse: {exc}"
        if ae is not None:
            target = ae
            break
    if target is None:
        return "no argv execs the agent (claude/codex) through a tool the suite reads"
    inv = target.invocation
    invocations = [i for _, i, e in _parsed(argvs, docker.ENGINES) if i]
    # smolvm read leniently: an argv SMOLVM-ARGV refuses still shows its flags
    invocations += [i for _, _, i in _smolvm_invocations(argvs) if i is not None]
    if inv.tool == smolvm.TOOL:
        name = inv.last("name") or "default"
        create = next((i for i in invocations if i.tool == smolvm.TOOL
                       and i.path == ("machine", "create") and i.last("name") == name), None)
        return Guest("machine", name, smolvm.TOOL, create, invocations)
    name = inv.positionals[0]
    create = next((i for i in invocations if i.tool == inv.tool and i.path in ENGINE_CREATE
                   and i.last("name") == name), None)
    return Guest("container", name, inv.tool, create, invocations)


def _container_guest(argvs: Sequence[Argv]) -> Guest | Verdict:
    g = agent_guest(argvs)
    if isinstance(g, str):
        return Verdict(na=g)
    if g.kind != "container":
        return Verdict(na=f"the agent runs in a smolvm machine ({g.name}), not an engine container")
    why = unreadable(argvs, docker.ENGINES)
    if why:
        return Verdict(na=why)
    if g.create is None:
        return Verdict([f"no `{g.tool} run/create --name {g.name}` in the launch creates the agent "
                        "container the agent exec targets"])
    return g


def agent_networks(g: Guest) -> list[str]:
    assert g.create is not None
    nets = [docker.parse_network(v, g.tool).name for v in g.create.values("network", "net")]
    for inv in g.invocations:
        if inv.tool == g.tool and inv.path == ("network", "connect") and len(inv.positionals) == 2:
            if inv.positionals[1] == g.name:
                nets.append(inv.positionals[0])
    return nets


def check_networks_internal(argvs: Sequence[Argv]) -> Verdict:
    """GUEST-NET-INTERNAL: every network the agent container joins was
    created ``--internal`` in this launch (no default bridge, no host)."""
    g = _container_guest(argvs)
    if isinstance(g, Verdict):
        return g
    nets = agent_networks(g)
    v = Verdict()
    if not g.create.values("network", "net"):
        # docker attaches a container created without --network to the
        # default bridge; a later `network connect` adds a network, it does
        # not take the bridge away.
        v.problems.append(f"the agent container {g.name} is created with no --network, so it "
                          f"sits on the engine's default bridge (which routes out) whatever "
                          f"it is connected to later: {show(g.create.argv)}")
    created = {i.positionals[0]: i for i in g.invocations
               if i.tool == g.tool and i.path == ("network", "create") and i.positionals}
    for net in nets:
        inv = created.get(net)
        if inv is None:
            v.problems.append(f"the agent joins network {net!r}, which this launch did not create "
                              "(so nothing shows it is --internal)")
        elif not inv.has("internal"):
            v.problems.append(f"the agent's network {net!r} is created without --internal: "
                              f"{show(inv.argv)}")
    return v


def check_networks_no_host_address(argvs: Sequence[Argv]) -> Verdict:
    """GUEST-NET-NO-HOST-ADDR: docker bridge networks of the agent are
    created with ``-o com.docker.network.bridge.inhibit_ipv4=true``."""
    g = _container_guest(argvs)
    if isinstance(g, Verdict):
        return g
    if g.tool != "docker":
        return Verdict(na=f"{g.tool}: no known option keeps the host off an internal network")
    created = {i.positionals[0]: i for i in g.invocations
               if i.tool == g.tool and i.path == ("network", "create") and i.positionals}
    v = Verdict()
    for net in agent_networks(g):
        inv = created.get(net)
        if inv is None:
            continue  # GUEST-NET-INTERNAL reports it
        driver = inv.last("driver") or "bridge"
        if driver != "bridge":
            continue
        opts = dict(o.partition("=")[::2] for o in inv.values("opt"))
        if opts.get(BRIDGE_NO_HOST_ADDR, "").lower() != "true":
            v.problems.append(f"the agent's network {net!r} gives the host an address on it "
                              f"(the gateway), reachable from the guest; create it with "
                              f"-o {BRIDGE_NO_HOST_ADDR}=true: {show(inv.argv)}")
    return v


def _agent_execs(argvs: Sequence[Argv], g: Guest) -> list[Invocation]:
    return [i for i in g.invocations if i.tool == g.tool and i.path == ("exec",)
            and i.positionals and i.positionals[0] == g.name]


# docker's default capability set (moby oci/defaults.go defaultCapabilities):
# a --cap-add of one of these only restores what --cap-drop took, so a
# hardened guest (--cap-drop ALL, then the few provisioning needs) passes.
DOCKER_DEFAULT_CAPS = frozenset((
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"))
# --security-opt values that switch a confinement off (docker/cli
# opts.go parseSecurityOpts; "label:disable" and "seccomp:unconfined" are
# the legacy colon forms it still accepts).
_UNCONFINED = {"seccomp": "unconfined", "apparmor": "unconfined",
               "systempaths": "unconfined", "label": "disable"}


def _cap(name: str) -> str:
    name = name.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def security_opt_problem(value: str) -> str | None:
    """Why ``--security-opt value`` weakens the guest, or None."""
    key, sep, val = value.partition("=")
    if not sep:
        key, sep, val = value.partition(":")
    key, val = key.strip().lower(), val.strip().lower()
    if _UNCONFINED.get(key) == val or (key == "label" and val.startswith("disable")):
        return f"--security-opt {value} switches {key} confinement off"
    return None


def check_no_privilege(argvs: Sequence[Argv]) -> Verdict:
    """GUEST-NO-PRIVILEGE: no --privileged; --cap-add only after --cap-drop
    ALL, only within docker's default set and never a forbidden capability
    (`FORBIDDEN_CAPS`, e.g. NET_RAW) or ALL (issue 16); no confinement
    switched off (--security-opt seccomp/apparmor/systempaths=unconfined,
    label=disable) and no host device, on the agent container or any exec
    into it."""
    from bottle_api.conventions import FORBIDDEN_CAPS

    g = _container_guest(argvs)
    if isinstance(g, Verdict):
        return g
    v = Verdict()
    for inv in [g.create, *_agent_execs(argvs, g)]:
        if inv.has("privileged"):
            v.problems.append(f"--privileged on the agent: {show(inv.argv)}")
        dropped_all = any(_cap(c) == "ALL" for value in inv.values("cap-drop")
                          for c in value.split(","))
        for value in inv.values("cap-add"):
            caps = [c for c in (_cap(x) for x in value.split(",")) if c]
            if not dropped_all:
                v.problems.append(f"--cap-add {value} on the agent without --cap-drop ALL: "
                                  f"{show(inv.argv)}")
            forbidden = [c for c in caps if c == "ALL" or c in FORBIDDEN_CAPS]
            if forbidden:
                v.problems.append(f"--cap-add {value} gives the agent a forbidden capability "
                                  f"({', '.join(forbidden)}): {show(inv.argv)}")
            extra = [c for c in caps if c not in DOCKER_DEFAULT_CAPS and c not in forbidden]
            if extra:
                v.problems.append(f"--cap-add {value} gives the agent {', '.join(extra)}, beyond "
                                  f"docker's default capability set: {show(inv.argv)}")
        for value in inv.values("security-opt"):
            why = security_opt_problem(value)
            if why:
                v.problems.append(f"{why} on the agent: {show(inv.argv)}")
        for flag in ("device", "device-cgroup-rule", "gpus"):
            for value in inv.values(flag):
                v.problems.append(f"--{flag} {value} hands a host device to the agent: "
                                  f"{show(inv.argv)}")
    return v


def check_no_host_namespaces(argvs: Sequence[Argv]) -> Verdict:
    """GUEST-NO-HOST-NS: the agent shares no namespace with the host."""
    g = _container_guest(argvs)
    if isinstance(g, Verdict):
        return g
    v = Verdict()
    for flag in docker.HOST_NAMESPACE_FLAGS:
        for value in g.create.values(flag):
            if (docker.parse_network(value, g.tool).name if flag in ("network", "net")
                    else value) == "host":
                v.problems.append(f"--{flag} {value}: the agent shares the host's namespace: "
                                  f"{show(g.create.argv)}")
    return v


def _is_host_path(src: str) -> bool:
    return src.startswith(("/", ".", "~")) or "/" in src


def check_no_host_mounts(argvs: Sequence[Argv], declared: Sequence[str] = ()) -> Verdict:
    """GUEST-NO-HOST-MOUNTS: no engine socket and no host path is mounted
    into the agent guest beyond ``declared`` guest targets."""
    g = agent_guest(argvs)
    if isinstance(g, str):
        return Verdict(na=g)
    why = unreadable(argvs, docker.ENGINES if g.kind == "container" else {smolvm.TOOL})
    if why and g.kind == "container":
        return Verdict(na=why)
    if g.create is None:
        return Verdict(na=f"no invocation of the launch creates the agent guest {g.name}")
    inv, v = g.create, Verdict()
    allowed = set(declared)
    if g.kind == "machine":
        for flag in ("docker-socket", "ssh-agent"):
            if inv.has(flag):
                v.problems.append(f"--{flag} hands a host socket to the agent machine: {show(inv.argv)}")
        for value in inv.values("mount-socket"):
            # A bundle daemon's own socket is the guest's only way to its
            # daemons (issue 14); SMOLVM-SOCKETS judges which ones.
            if (value.rpartition(":")[2] in allowed
                    or socket_daemon(str(value).partition(":")[0]) in BUNDLE_SOCKET_DAEMONS):
                continue
            v.problems.append(f"--mount-socket {value} mounts a host socket into the agent "
                              f"machine: {show(inv.argv)}")
        for value in inv.values("volume"):
            dst = value.split(":")[1] if value.count(":") >= 1 else value
            if dst not in allowed:
                v.problems.append(f"-v {value} mounts a host path into the agent machine: "
                                  f"{show(inv.argv)}")
        return v
    if inv.has("use-api-socket"):
        v.problems.append(f"--use-api-socket mounts the engine's API socket into the agent: "
                          f"{show(inv.argv)}")
    for value in inv.values("volume"):
        parts = value.split(":")
        if len(parts) >= 2 and _is_host_path(parts[0]) and parts[1] not in allowed:
            v.problems.append(f"-v {value} bind-mounts a host path into the agent: {show(inv.argv)}")
    for value in inv.values("mount"):
        kv = dict(p.partition("=")[::2] for p in value.split(","))
        kind = kv.get("type", "volume")
        dst = kv.get("target") or kv.get("destination") or kv.get("dst") or ""
        if kind == "bind" and dst not in allowed:
            v.problems.append(f"--mount {value} bind-mounts a host path into the agent: "
                              f"{show(inv.argv)}")
    for value in inv.values("volumes-from"):
        v.problems.append(f"--volumes-from {value} hands another container's mounts to the "
                          f"agent: {show(inv.argv)}")
    for value in inv.values("volume", "mount"):
        if "docker.sock" in value or "podman.sock" in value or "containerd.sock" in value:
            v.problems.append(f"the engine socket is mounted into the agent: {value}")
    return v


def _own_addresses(g: Guest) -> set[str]:
    """Addresses the launch gave its own containers (``--ip``/``--ip6``,
    ``--network name=N,ip=...``, ``network connect --ip``)."""
    out: set[str] = set()
    for inv in g.invocations:
        if inv.tool != g.tool:
            continue
        if inv.path in ENGINE_CREATE or inv.path == ("network", "connect"):
            out |= set(inv.values("ip", "ip6"))
            for value in inv.values("network", "net"):
                out |= {v for k, v in docker.parse_network(value, g.tool).options
                        if k in ("ip", "ip6")}
    return {a.strip("[]") for a in out}


def _gateways(g: Guest) -> set[str]:
    """Gateway addresses of the networks this launch created (``--gateway``,
    else the first address of each ``--subnet``, as docker's IPAM picks)."""
    out: set[str] = set()
    for inv in g.invocations:
        if inv.tool != g.tool or inv.path != ("network", "create"):
            continue
        out |= set(inv.values("gateway"))
        for subnet in inv.values("subnet"):
            try:
                net = ipaddress.ip_network(subnet, strict=False)
                out.add(str(net.network_address + 1))
            except ValueError:
                continue
    return out


def check_no_host_gateway(argvs: Sequence[Argv]) -> Verdict:
    """GUEST-NO-HOST-GATEWAY: every ``--add-host`` on the agent names an
    address the launch gave one of its own containers; never
    ``host-gateway``, a gateway of a network it created (the host's end of
    the bridge), a loopback or any other address of the host."""
    g = _container_guest(argvs)
    if isinstance(g, Verdict):
        return g
    own, gateways, v = _own_addresses(g), _gateways(g), Verdict()
    for value in g.create.values("add-host"):
        # docker/cli opts/hosts.go ValidateExtraHost: NAME=ADDR, else NAME:ADDR
        # split at the first ':' (a name holds none; an IPv6 ADDR may).
        _, _, addr = value.partition("=" if "=" in value else ":")
        addr = addr.strip().strip("[]")
        if addr == "host-gateway":
            why = "host-gateway is the host"
        elif addr in gateways:
            why = f"{addr} is the gateway of a network this launch created (the host's end)"
        elif addr in own:
            continue
        else:
            try:
                ip = ipaddress.ip_address(addr)
                why = (f"{addr} is a host loopback address" if ip.is_loopback else
                       f"{addr} is no address this launch gave one of its containers "
                       "(a gateway or another address of the host)")
            except ValueError:
                why = f"{addr!r} is not an address"
        v.problems.append(f"--add-host {value} gives the agent a name for the host ({why}): "
                          f"{show(g.create.argv)}")
    return v


def _publishes(inv: Invocation) -> list[str]:
    return inv.values("publish")


def check_publish_ephemeral_loopback(argvs: Sequence[Argv]) -> Verdict:
    """PORT-NO-FIXED: every port the launch publishes binds a loopback
    address with an engine-chosen host port; the agent guest publishes none."""
    rows = _parsed(argvs, docker.ENGINES | {smolvm.TOOL})
    if not rows:
        return Verdict(na="the backend runs no docker-family or smolvm command")
    why = unreadable(argvs, docker.ENGINES)
    if why:
        return Verdict(na=why)
    from ..recording import parse_publish  # the suite's one -p reader
    v = Verdict()
    for argv, inv, _ in rows:
        if inv is None:
            continue
        if inv.tool == smolvm.TOOL and inv.path == ("machine", "create"):
            for p in inv.values("port"):
                v.problems.append(f"-p {p} publishes a fixed host port from the smolvm machine: "
                                  f"{show(argv)}")
            continue
        if inv.path not in ENGINE_CREATE:
            continue
        if inv.has("publish-all"):
            v.problems.append(f"-P publishes every exposed port on all interfaces: {show(argv)}")
        for p in _publishes(inv):
            pub = parse_publish(p)
            if pub.host_port not in ("", "0"):
                v.problems.append(f"-p {p} fixes host port {pub.host_port} (a clash with any "
                                  f"other bottle or host service; let the engine choose): {show(argv)}")
            elif not pub.loopback:
                v.problems.append(f"-p {p} is not bound to a loopback address: {show(argv)}")
    return v


def published_hosts(argvs: Sequence[Argv]) -> set[str]:
    """Host addresses of the engine publishes of a launch (``-p IP::PORT``)."""
    from ..recording import parse_publish
    out = set()
    for _, inv, _ in _parsed(argvs, docker.ENGINES):
        if inv is not None and inv.path in ENGINE_CREATE:
            for p in _publishes(inv):
                ip = parse_publish(p).host_ip
                if ip:
                    out.add(ip.strip("[]"))
    return out


NETWORK_PATHS = (("machine", "create"), ("machine", "run"), ("machine", "start"))


def _raw_network_flags(argv: Argv) -> list[str]:
    """Network flags in an argv the grammar could not parse (up to ``--``)."""
    found = []
    for tok in [str(a) for a in argv][3:]:
        if tok == "--":
            break
        name = tok.split("=", 1)[0]
        if name == "-p" or (name.startswith("-p") and not name.startswith("--")):
            found.append("port")
        elif name.startswith("--") and name[2:] in smolvm.NETWORK_FLAGS:
            found.append(name[2:])
    return found


def check_smolvm_no_net(argvs: Sequence[Argv]) -> Verdict:
    """SMOLVM-NO-NET: no machine create/run/start carries a flag that gives
    the guest networking (`smolvm.NETWORK_FLAGS`; 1.9.3 src/network/launch.rs
    ``plan_launch_network``: any of them sets ``wants_network``)."""
    invs = [(argv, inv) for _, argv, inv in _smolvm_invocations(argvs)
            if tuple(str(a) for a in argv[1:3]) in NETWORK_PATHS
            or (inv is not None and inv.path in NETWORK_PATHS)]
    if not invs:
        return Verdict(na="the backend creates, runs or starts no smolvm machine")
    v = Verdict()
    for argv, inv in invs:
        flags = ([o.name for o in inv.options if o.name in smolvm.NETWORK_FLAGS]
                 if inv is not None else _raw_network_flags(argv))
        for name in dict.fromkeys(flags):
            shown = "-p/--port" if name == "port" else f"--{name}"
            v.problems.append(f"{shown} gives the guest networking (smolvm src/network/launch.rs "
                              f"plan_launch_network: TSI or virtio-net, DNS forwarded for any "
                              f"name, no port filter): {show(argv)}")
    return v


# Daemons whose socket (<daemon>.sock) a smolvm guest may be given (issue 14).
BUNDLE_SOCKET_DAEMONS = ("egress", "pipelock", "git-gate", "supervise")


def _agent_facing(plan) -> list[str]:
    """The plan's agent-facing daemons: the first hop, git-gate, supervise."""
    daemons = list(getattr(plan, "daemons", ()))
    out = ["egress" if getattr(plan, "routed", False) else "pipelock"]
    return out + [d for d in ("git-gate", "supervise") if d in daemons]


def mount_sockets(inv: Invocation) -> list[tuple[str, str]]:
    """``(HOST_PATH, GUEST_PATH)`` of each ``--mount-socket`` (split at the
    first ``:``, as smolvm's parse_published_sockets does)."""
    out = []
    for spec in inv.values("mount-socket"):
        host, _, guest = str(spec).partition(":")
        out.append((host, guest))
    return out


def socket_daemon(host_path: str) -> str | None:
    """The daemon a host socket serves, by the convention ``<daemon>.sock``."""
    base = host_path.rstrip("/").rsplit("/", 1)[-1]
    return base[:-len(".sock")] if base.endswith(".sock") else None


def check_smolvm_sockets(argvs: Sequence[Argv], plan) -> Verdict:
    """SMOLVM-SOCKETS: each machine create mounts exactly one socket per
    agent-facing daemon of the plan (host end ``<daemon>.sock``), guest
    paths absolute and distinct, nothing else."""
    creates = [(argv, inv) for _, argv, inv in _smolvm_invocations(argvs)
               if inv is not None and inv.path == ("machine", "create")]
    if not creates:
        return Verdict(na="the backend creates no smolvm machine")
    want = _agent_facing(plan)
    v = Verdict()
    for argv, inv in creates:
        pairs = mount_sockets(inv)
        got = [socket_daemon(h) for h, _ in pairs]
        for (host, guest), daemon in zip(pairs, got):
            if not host or not guest:
                v.problems.append(f"--mount-socket {host}:{guest} lacks a path: {show(argv)}")
            elif not guest.startswith("/"):
                v.problems.append(f"--mount-socket guest path {guest!r} is not absolute "
                                  f"(machine.rs parse_published_sockets refuses it): {show(argv)}")
            if daemon not in want:
                v.problems.append(f"--mount-socket {host}:{guest} serves "
                                  f"{daemon or 'no daemon named <daemon>.sock'}, not one of the "
                                  f"agent-facing daemons {want}: a way around the first hop: "
                                  f"{show(argv)}")
        guests = [g for _, g in pairs]
        if len(set(guests)) != len(guests):
            v.problems.append(f"a guest path is mounted twice (the later bind mount shadows "
                              f"the first): {show(argv)}")
        for daemon in want:
            n = got.count(daemon)
            if n != 1:
                v.problems.append(f"{daemon} has {n} --mount-socket (want exactly one "
                                  f"<...>/{daemon}.sock): {show(argv)}")
    return v
