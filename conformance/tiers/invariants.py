"""Tier 2: hypothesis properties over generated bottle specs and host states.

Inputs come from `conformance.strategies` (odd names, up to 8 routes and 6
upstreams, any token exp, missing tokens...). Two kinds of property:

- *plan* properties call ``backend.prepare`` only (pure, cheap);
- *recorded* properties launch the case with a recording runner
  (`conformance.recording.record`) under a fresh temporary directory and
  read the argv the backend ran, the way `recording` reads argv: docker /
  podman / nerdctl and smolvm shapes plus the bundle image interface.

Oracles are computed from the spec and host (expected daemons, hop, hosts,
exp, git config calls), not by calling the helpers the reference backends
use, so a property cannot agree with a bug it shares.

Example budgets scale with the active hypothesis profile (dev, ci, certify),
which the plugin loads before this module is imported and decorated: each
property runs half the profile's ``max_examples`` (25 under ci, 500 under
certify); every other setting is the profile's. Generated cases are cut to
the backend's declared capabilities (`_fit`), so a backend without
``supervise`` never sees a supervised spec.

Failure messages say what was seen (the argv, the value, the key); the
plugin prefixes them with ``[CLAUSE-ID] sentence``. Assertion messages show
at most a 6-character prefix of a secret (argv goes through the recording's
normaliser, ``<SECRET>``); the generated tokens are fakes anyway.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import enum
import io
import ipaddress
import json
import os
import pathlib
import posixpath
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from hypothesis import HealthCheck, assume, given, settings

from bottle_api.plan import to_json
from bottle_ref.pipelock import load_config, validate_config
from bottle_ref.resume import resume_with_fallback
from bottle_api.spec import SpecError, parse_spec

from .. import strategies as bst
from ..capabilities import Capability, parse_capabilities
from ..markers import clause
from ..outcomes import not_supported
from ..recording import (
    Recording,
    contains_seq,
    created_resource,
    env_assignments,
    guest_command_start,
    is_guest_copy,
    is_guest_exec,
    mount_pairs,
    parse_publish,
    prog,
    publish_all_flags,
    publish_values,
    record,
    subcommand,
)

# -- contract facts (DESIGN §4, §8 and the team brief), written out here ---------

NODE, NODE_HOME = "node", "/home/node"
AGENT_BINARIES = frozenset({"claude", "codex"})
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # what update-ca-certificates writes
CA_ENV = {"codex": "CODEX_CA_CERTIFICATE", "claude": "NODE_EXTRA_CA_CERTS"}
CA_GUEST_FILE = "/usr/local/share/ca-certificates/bottle-egress.crt"
EGRESS_CA_MOUNT, PIPELOCK_CA_MOUNT = "/etc/egress/ca.pem", "/etc/pipelock/ca.pem"
BUNDLE_ENTRY = "bottle-bundle"  # the bundle image's daemon launcher
PIPELOCK_PORT, EGRESS_PORT, GIT_GATE_PORT = 8888, 9099, 9418
CODEX_API_HOSTS = ("chatgpt.com", "api.openai.com")
CODEX_PIPELOCK_HOSTS = CODEX_API_HOSTS + ("*.chatgpt.com",)
CLAUDE_API_HOSTS = ("api.anthropic.com",)
CODEX_AUTH_GUEST = "/home/node/.codex/auth.json"
CLAUDE_CREDENTIALS_GUEST = "/home/node/.claude/.credentials.json"

# pipelock's own keys (DESIGN §8); anything else is a hard error in pipelock.
PIPELOCK_KEYS: Mapping[str, Any] = {
    "version": None, "mode": None, "api_allowlist": None,
    "fetch_proxy": {"listen": None, "monitoring": {"max_requests_per_minute": None}},
    "forward_proxy": {"enabled": None},
    "dlp": {"patterns": None},
    "request_body_scanning": {"enabled": None, "action": None, "scan_headers": None},
    "tls_interception": {"enabled": None, "ca_cert": None, "ca_key": None,
                         "passthrough_domains": None},
}

# Commands that make or start something; none may run before a launch refusal.
_STARTING_WORDS = frozenset({"create", "run", "start", "build", "pack", "cp", "exec",
                             "connect", "push", "save", "load", "pull"})

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# -- budgets ----------------------------------------------------------------------


def _budget(fraction: float) -> settings:
    """Settings for one property: the active profile's max_examples scaled by
    ``fraction`` (the profile's other settings are inherited as they are).

    Suppressed health checks, and why: fixtures of any scope are fine (no
    property mutates the backend); one test class per backend means the same
    tier method runs with several ``self`` types (differing_executors), which
    is safe because every example is valid for every backend; recorded
    launches are slow by hypothesis' standards (too_slow). No deadline: a
    recorded launch's wall time depends on the host's filesystem and load,
    not on the backend's correctness (the ci and certify profiles agree)."""
    base = settings.default.max_examples
    return settings(
        max_examples=max(1, round(base * fraction)),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.differing_executors],
    )


_PLAN = _budget(0.5)  # plan properties: prepare only
_LAUNCH = _budget(0.5)  # recorded properties: a whole recorded launch per example


# -- helpers ----------------------------------------------------------------------


def _show(argv: Sequence[str]) -> str:
    text = shlex.join(str(a) for a in argv)
    return text if len(text) <= 600 else text[:597] + "..."


def _routed(spec) -> bool:
    """Independent hop oracle: any declared route, or auto routes from
    forward_host_credentials (each agent has at least one API host)."""
    return bool(spec.routes) or spec.forward_host_credentials


def _expected_daemons(spec) -> list[str]:
    return (["egress", "pipelock"] + (["git-gate"] if spec.upstreams else [])
            + (["supervise"] if spec.supervise else []))


def _api_hosts(agent: str) -> tuple[str, ...]:
    return CODEX_API_HOSTS if agent == "codex" else CLAUDE_API_HOSTS


def _scratch_parent() -> str | None:
    """Where per-example scratch dirs go: a tmpfs when there is one (a
    recorded launch creates and removes a dozen small dirs and files; on a
    disk-backed /tmp that I/O, not the backend, dominates), else the default."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


_SCRATCH = _scratch_parent()


def _scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="bottle-inv-", dir=_SCRATCH)


def _fit(backend, case):
    """The case, cut to what ``backend`` declares it supports: no supervise
    without ``supervise``, no upstreams without ``git_gate``; an agent it
    cannot run is rejected (hypothesis draws another case)."""
    spec, host = case
    caps = parse_capabilities(getattr(backend, "capabilities", ()))
    assume(Capability(spec.agent) in caps)
    if spec.supervise and Capability.SUPERVISE not in caps:
        spec = dataclasses.replace(spec, supervise=False)
    if spec.upstreams and Capability.GIT_GATE not in caps:
        spec = dataclasses.replace(spec, upstreams=())
    return spec, host


@contextlib.contextmanager
def _recorded(backend, case) -> Iterator[Recording]:
    """Launch ``case`` with a recording runner under a fresh scratch
    directory (removed afterwards); skills and cwd become real dirs there."""
    with _scratch() as tmp:
        root = Path(tmp)
        spec, host = bst.materialise(*case, root)
        yield record(backend, (spec, host), tmp=root)


def _launched(rec: Recording) -> None:
    assert rec.error is None, (
        f"recorded launch of a generated case failed: {rec.describe_error()} "
        f"(spec {rec.spec!r})")


def _agent_index(argv: Sequence[str], agent: str) -> int:
    for i, tok in enumerate(argv):
        if tok == agent or (tok.startswith("/") and posixpath.basename(tok) == agent):
            return i
    return -1


def _user_switch_problem(prefix: Sequence[str]) -> str | None:
    """Why ``prefix`` (everything before a command) does not run it as node
    with HOME=/home/node, or None. The *last* user switch and the *last*
    HOME assignment win, as they do for docker and for nested runuser."""
    users: list[str] = []
    for i, tok in enumerate(prefix):
        if tok in ("-u", "--user") and i + 1 < len(prefix):
            users.append(prefix[i + 1])
        elif tok.startswith("--user="):
            users.append(tok.split("=", 1)[1])
        elif tok.startswith("-u") and len(tok) > 2 and not tok.startswith("--"):
            users.append(tok[2:])
    assigned = env_assignments(prefix)
    homes = [v for k, v in assigned if k == "HOME"]
    user_vars = [v for k, v in assigned if k == "USER"]
    if not users:
        return "no switch to node before it (no -u node / --user node / runuser -u node --)"
    if users[-1].split(":")[0] != NODE:
        return f"the last user switch before it is to {users[-1]!r}, not node"
    if not homes:
        return "it switches to node but never sets HOME=/home/node (HOME stays root's)"
    if homes[-1] != NODE_HOME:
        return f"it switches to node but the last HOME set before it is {homes[-1]!r}"
    # runuser -u keeps the caller's environment: from a root exec channel
    # USER stays root's unless set (DESIGN s4 frames -e USER=node).
    if "runuser" in prefix and (not user_vars or user_vars[-1] != NODE):
        return (f"it switches with runuser but USER is {user_vars[-1]!r}" if user_vars
                else "it switches with runuser but never sets USER=node (USER stays root's)")
    return None


def _guest_commands(rec: Recording) -> list[tuple[tuple[str, ...], int]]:
    """``(argv, index of the in-guest command)`` of every guest exec."""
    return [(a, guest_command_start(a)) for a in rec.runs() if is_guest_exec(a)]


def _git_config_calls(rec: Recording, key_prefix: str) -> list[tuple[tuple[str, ...], int, str, str]]:
    """``(argv, index of 'git', key, value)`` of every guest
    ``git config --global <key> <value>`` whose key starts with ``key_prefix``."""
    out = []
    for argv, start in _guest_commands(rec):
        at = contains_seq(argv[start:], ["git", "config", "--global"])
        if at < 0:
            continue
        i = start + at
        rest = argv[i + 3:]
        if len(rest) >= 2 and rest[0].startswith(key_prefix):
            out.append((argv, i, rest[0], rest[1]))
    return out


def _pipelock_config(plan) -> dict:
    data = yaml.load(plan.pipelock.config_yaml, Loader=_Loader)  # noqa: S506 - safe loader
    assert isinstance(data, dict), (
        f"pipelock.yaml is not a mapping: {plan.pipelock.config_yaml[:200]!r}")
    return data


def _guest_file(plan, path: str):
    files = [f for f in plan.guest_files if f.path == path]
    assert len(files) == 1, (
        f"expected one guest file at {path}, the plan has "
        f"{[f.path for f in plan.guest_files]}")
    return files[0]


# -- purity guard ------------------------------------------------------------------


class ExternalCall(OSError):
    """Raised by the purity guard. An OSError so a backend's ``except
    OSError`` around a write is exercised; the guard records it anyway."""


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _guarded_targets() -> list[tuple[Any, str, str]]:
    """``(owner, attribute, what)`` for everything prepare must never call."""
    out: list[tuple[Any, str, str]] = [
        (subprocess, "Popen", "subprocess.Popen"),
        (socket.socket, "connect", "socket.connect"),
        (socket.socket, "connect_ex", "socket.connect_ex"),
        (socket.socket, "sendto", "socket.sendto"),
        (socket, "create_connection", "socket.create_connection"),
        (socket, "getaddrinfo", "socket.getaddrinfo (DNS)"),
        (socket, "gethostbyname", "socket.gethostbyname (DNS)"),
        (shutil, "rmtree", "shutil.rmtree"),
        (shutil, "copy", "shutil.copy"),
        (shutil, "copy2", "shutil.copy2"),
        (shutil, "copyfile", "shutil.copyfile"),
        (shutil, "copytree", "shutil.copytree"),
        (shutil, "move", "shutil.move"),
    ]
    for name in ("system", "popen", "fork", "forkpty", "execv", "execve", "execvp", "execvpe",
                 "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnvp",
                 "spawnvpe", "spawnl", "spawnle", "posix_spawn", "posix_spawnp",
                 "mkdir", "makedirs", "remove", "unlink", "rename", "renames", "replace",
                 "rmdir", "removedirs", "chmod", "chown", "lchown", "symlink", "link",
                 "truncate", "mkfifo", "mknod", "utime"):
        if hasattr(os, name):
            out.append((os, name, f"os.{name}"))
    for name in ("write_text", "write_bytes", "mkdir", "touch", "unlink", "rename", "replace",
                 "rmdir", "symlink_to", "hardlink_to", "chmod", "lchmod"):
        if hasattr(pathlib.Path, name):
            out.append((pathlib.Path, name, f"Path.{name}"))
    return out


def _backend_modules(backend) -> list[Any]:
    tops = {type(backend).__module__.split(".")[0], "bottle_ref"}
    return [m for name, m in list(sys.modules.items())
            if m is not None and name.split(".")[0] in tops]


@contextlib.contextmanager
def no_external_calls(backend=None) -> Iterator[list[str]]:
    """While active, every process, network and filesystem-write entry point
    (and every runner) records what was attempted in the yielded list and
    raises `ExternalCall`. Globals of the backend's modules bound to an
    original (``from subprocess import Popen``) are replaced too."""
    seen: list[str] = []

    def stub(what: str):
        def refuse(*args, **kwargs):
            seen.append(what + (f"({args[0]!s:.120})" if args else "()"))
            raise ExternalCall(f"prepare() must not call {what}")
        return refuse

    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in str(mode) for c in "wax+"):
            seen.append(f"open({file!s:.120}, {mode!r})")
            raise ExternalCall("prepare() must not open a file for writing")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & _WRITE_FLAGS:
            seen.append(f"os.open({path!s:.120}, write flags)")
            raise ExternalCall("prepare() must not open a file for writing")
        return real_os_open(path, flags, *args, **kwargs)

    patches: list[tuple[Any, str, Any, Any]] = []  # owner, name, original, replacement
    for owner, name, what in _guarded_targets():
        patches.append((owner, name, getattr(owner, name), stub(what)))
    patches += [(builtins, "open", real_open, guarded_open), (io, "open", io.open, guarded_open),
                (os, "open", real_os_open, guarded_os_open)]
    from bottle_api import runner as runner_mod

    for cls in (runner_mod.SubprocessRunner, runner_mod.RecordingRunner):
        for name in ("run", "sleep", "unique"):
            patches.append((cls, name, getattr(cls, name), stub(f"{cls.__name__}.{name}")))
    if backend is not None:
        originals = {id(orig): repl for owner, _, orig, repl in patches if owner is not builtins}
        for mod in _backend_modules(backend):
            for name, value in list(vars(mod).items()):
                if id(value) in originals and not isinstance(value, type(sys)):
                    patches.append((mod, name, value, originals[id(value)]))
    undo: list[tuple[Any, str, bool, Any]] = []  # owner, name, had own attribute, its value
    try:
        for owner, name, _, repl in patches:
            own = vars(owner)
            undo.append((owner, name, name in own, own.get(name)))
            setattr(owner, name, repl)
        yield seen
    finally:
        for owner, name, had, value in reversed(undo):
            if had:
                setattr(owner, name, value)
            else:
                delattr(owner, name)


_DECOY_ENV = {
    "CLAUDE_BOTTLE_IMAGE": "decoy-from-os-environ:1", "BOTTLE_BUNDLE_IMAGE": "decoy-bundle:1",
    "BOTTLE_SMOL_PUBLISH_HOST": "127.0.0.99", "BOTTLE_SMOL_CPUS": "7",
    "BOTTLE_SMOL_MEM_MIB": "777", "XDG_STATE_HOME": "/decoy/state", "HOME": "/decoy/home",
}


@contextlib.contextmanager
def _decoy_environ(extra: Mapping[str, str]) -> Iterator[None]:
    """The process env holds values a backend might wrongly read instead of
    the HostContext (image refs, loopback address, tokens); restored after."""
    saved = dict(os.environ)
    os.environ.update({**_DECOY_ENV, **extra})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _plain_data_problems(value: Any, path: str, out: list[str]) -> None:
    """Collect every place in a plan that holds something other than plain
    data (str, int, float, bool, None, tuples/lists/mappings/dataclasses)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, enum.Enum):
        return
    if isinstance(value, os.PathLike):
        out.append(f"{path} is a path object ({type(value).__name__} {os.fspath(value)!r}); "
                   "a plan carries strings")
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _plain_data_problems(getattr(value, f.name), f"{path}.{f.name}", out)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _plain_data_problems(k, f"{path}[key {k!r}]", out)
            _plain_data_problems(v, f"{path}[{k!r}]", out)
        return
    if isinstance(value, (tuple, list, frozenset)):
        for i, v in enumerate(value):
            _plain_data_problems(v, f"{path}[{i}]", out)
        return
    out.append(f"{path} holds a {type(value).__name__} ({value!r:.80}), not plain data")


def _differing(a: Any, b: Any) -> list[str]:
    """Names of the top-level dataclass fields where ``a`` and ``b`` differ."""
    if not (dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b)) or type(a) is not type(b):
        return [f"type {type(a).__name__} vs {type(b).__name__}"]
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y:
            out.append(f.name if f.name == "secrets" else f"{f.name}: {x!r:.120} vs {y!r:.120}")
    return out


_ARTIFACT_SUFFIXES = (".smolmachine", ".tar", ".tar.gz", ".oci", ".img", ".qcow2", ".raw")


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
    """Containers the launch made (networks, aliases, daemons, publishes)
    and the smolvm agent machine, if any (``{"name", "allow_cidrs"}``)."""
    plan = rec.plan
    containers: dict[str, _Container] = {}
    machine = None
    stops = {plan.bundle_image_ref, plan.agent_image_ref}
    for argv in rec.runs("launch"):
        res = created_resource(argv)
        if res is None:
            if prog(argv) in ("docker", "podman", "nerdctl") and subcommand(argv) == ("network", "connect"):
                pos = [a for a in argv[3:] if not a.startswith("-")]
                aliases = set(_flag_values(argv, "--alias"))
                pos = [p for p in pos if p not in aliases]
                if len(pos) >= 2 and pos[-1] in containers:
                    c = containers[pos[-1]]
                    c.networks.add(pos[-2])
                    c.aliases |= aliases
            continue
        if res.kind == "container":
            daemons = _daemons_in(argv)
            containers[res.name] = _Container(
                name=res.name,
                networks=set(_flag_values(argv, "--network", "--net")),
                aliases=set(_flag_values(argv, "--network-alias", "--alias")),
                daemons=daemons,
                publishes=[parse_publish(p) for p in publish_values(argv, stop_at=stops)],
                is_agent=plan.agent_image_ref in argv and not daemons,
            )
        elif res.kind == "machine":
            machine = {"name": res.name, "allow_cidrs": _flag_values(argv, "--allow-cidr")}
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


# -- the tier ------------------------------------------------------------------------


class InvariantTier:
    """Property tests; mixed into `BackendConformance`."""

    # -- PLAN-PURE ------------------------------------------------------------------

    @clause("PLAN-PURE")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_prepare_is_pure_and_deterministic(self, backend, case):
        """No process, socket, DNS, file write or runner while preparing, and
        equal inputs give equal plans whatever the process env holds."""
        case = _fit(backend, case)
        spec, host = case
        with no_external_calls(backend) as seen:
            try:
                first = backend.prepare(spec, host)
            except ExternalCall:
                first = None  # recorded in ``seen``
        assert not seen, f"prepare() reached outside the process: {seen}"
        decoys = {r.token_env: "decoy-token-from-os-environ" for r in spec.routes}
        with _decoy_environ(decoys):
            second = backend.prepare(spec, host)
        assert first == second, (
            "two prepare() calls on equal inputs (the second with decoy values in the "
            f"process env) gave different plans; differing fields: {_differing(first, second)}")
        assert to_json(first) == to_json(second), "equal plans serialise differently"

    # -- PLAN-HOP / PLAN-DAEMONS --------------------------------------------------------

    @clause("PLAN-HOP")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_first_hop_follows_routes(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        want = "egress" if _routed(spec) else "pipelock"
        assert plan.first_hop == want, (
            f"first_hop is {plan.first_hop!r}, expected {want!r} ({len(spec.routes)} declared "
            f"routes, forward_host_credentials={spec.forward_host_credentials})")
        up = urlsplit(plan.egress.upstream_proxy)
        assert up.scheme == "http" and up.port == PIPELOCK_PORT, (
            f"egress upstream_proxy {plan.egress.upstream_proxy!r} is not pipelock "
            f"(http://<pipelock>:{PIPELOCK_PORT})")
        routes_file = yaml.load(plan.egress.routes_yaml, Loader=_Loader)  # noqa: S506
        assert routes_file.get("upstream_proxy") == plan.egress.upstream_proxy, (
            f"egress-routes.yaml upstream_proxy {routes_file.get('upstream_proxy')!r} differs "
            f"from the plan's {plan.egress.upstream_proxy!r}")

    @clause("PLAN-DAEMONS")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2))
    def test_daemons_follow_the_spec(self, backend, case):
        """The plan's daemons, and the daemons launch starts: the seed's bundle
        idled because the plan listed daemons but launch passed none."""
        case = _fit(backend, case)
        spec = case[0]
        want = _expected_daemons(spec)
        with _recorded(backend, case) as rec:
            _launched(rec)
            planned = list(rec.plan.daemons)
            started: set[str] = set()
            for argv in rec.runs("launch"):
                started |= _daemons_in(argv)
        assert sorted(planned) == sorted(want), (
            f"plan.daemons is {planned}, expected {want} ({len(spec.upstreams)} upstreams, "
            f"supervise={spec.supervise})")
        assert started == set(want), (
            f"launch started bundle daemons {sorted(started)} (via `{BUNDLE_ENTRY} "
            f"<daemon>[,...]`), expected {sorted(want)}")

    # -- LAUNCH-PACK-IN-LAUNCH -------------------------------------------------------

    @clause("LAUNCH-PACK-IN-LAUNCH")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_plan_holds_only_image_references(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        with no_external_calls(backend) as seen:
            try:
                plan = backend.prepare(spec, host)
            except ExternalCall:
                plan = None
        assert not seen, f"prepare() ran or wrote something (a build or pack?): {seen}"
        problems: list[str] = []
        _plain_data_problems(plan, "plan", problems)
        assert not problems, "the plan holds more than plain data: " + "; ".join(problems[:5])
        for f in dataclasses.fields(plan):
            if "image" in f.name or "artifact" in f.name:
                value = getattr(plan, f.name)
                assert isinstance(value, str) and value, f"plan.{f.name} is {value!r}, not an image reference"
                assert not value.endswith(_ARTIFACT_SUFFIXES), (
                    f"plan.{f.name} = {value!r} names a built artifact, not an image reference")
        if spec.image:
            assert plan.agent_image_ref == spec.image, (
                f"agent_image_ref {plan.agent_image_ref!r} is not the spec's image {spec.image!r}")

    # -- EXEC-USER / EXEC-RESUME -------------------------------------------------------

    @clause("EXEC-USER", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2))
    def test_agent_and_user_state_run_as_node(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            for tty, argv in rec.agent_argvs.items():
                i = _agent_index(argv, spec.agent)
                assert i >= 0, f"agent_argv(tty={tty}) has no {spec.agent} binary: {_show(argv)}"
                why = _user_switch_problem(argv[:i])
                assert why is None, (
                    f"agent_argv(tty={tty}) runs {spec.agent} wrongly: {why}: {_show(argv)}")
            for argv, start in _guest_commands(rec):
                cmd = argv[start:]
                user_state = (contains_seq(cmd, ["git", "config", "--global"]) >= 0
                              or contains_seq(cmd, ["mcp", "add"]) >= 0)
                if user_state:
                    why = _user_switch_problem(argv[:start])
                    assert why is None, f"user-state command runs wrongly: {why}: {_show(argv)}"

    @clause("EXEC-RESUME")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2, max_upstreams=2))
    def test_resume_wrap_keeps_user_switch(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            for tty, argv in rec.agent_argvs.items():
                i = _agent_index(argv, spec.agent)
                assert i >= 0, f"agent_argv(tty={tty}) has no {spec.agent} binary: {_show(argv)}"
                try:
                    wrapped = resume_with_fallback(argv)
                except ValueError as exc:
                    raise AssertionError(f"the resume wrap cannot find the agent in "
                                         f"agent_argv(tty={tty}): {exc}") from None
                assert list(wrapped[:i]) == list(argv[:i]), (
                    f"the resume wrap changed the prefix before {spec.agent}:\n"
                    f"  before: {_show(argv[:i])}\n  after:  {_show(wrapped[:i])}")
                why = _user_switch_problem(wrapped[:i])
                assert why is None, (f"after the resume wrap, {_show(wrapped[i:i + 2])} runs "
                                     f"wrongly: {why}: {_show(wrapped)}")

    # -- SECRET-ARGV / SECRET-PLAN -------------------------------------------------------

    @clause("SECRET-ARGV")
    @_LAUNCH
    @given(case=bst.bottle_cases())
    def test_no_token_value_on_any_argv(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        secrets = set(bst.secret_values(spec, host))
        with _recorded(backend, case) as rec:
            _launched(rec)
            plan = rec.plan
            secrets |= {v for v in plan.secrets.values() if v}
            slots = set(plan.secrets)
            argvs = rec.all_argvs()
            blob = "\0".join("\0".join(a) for a in argvs)
            for s in secrets:
                if s in blob:
                    where = next(a for a in argvs if any(s in t for t in a))
                    raise AssertionError(f"a token value ({len(s)} chars, starts {s[:6]!r}) is on "
                                         f"argv: {rec.normalise(_show(where))}")
            for call in rec.runner.calls:
                if call.kind != "run":
                    continue
                argv = call.argv
                for name, value in env_assignments(argv):
                    assert name not in slots, (
                        f"token slot {name} is given a value on argv (-e {name}=...), not bare "
                        f"-e {name}: {rec.normalise(_show(argv))}")
                if call.env_names and (prog(argv) in ("docker", "podman", "nerdctl", "smolvm")):
                    named = set(_flag_values(argv, "-e", "--env"))
                    for name in call.env_names:
                        assert name in named, (
                            f"{name} travels in the runner's env but is not named bare "
                            f"(-e {name}) on argv: {rec.normalise(_show(argv))}")
            undelivered = {v for v in plan.secrets.values() if v} - set(rec.runner.secret_values)
            assert not undelivered, (
                f"{len(undelivered)} token(s) of plan.secrets never reached a child through the "
                "runner's env=")

    @clause("SECRET-PLAN")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_plan_repr_and_json_hold_no_secret(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        secrets = set(bst.secret_values(spec, host)) | {v for v in plan.secrets.values() if v}
        for what, text in (("repr(plan)", repr(plan)), ("str(plan)", str(plan)),
                           ("to_json(plan)", to_json(plan))):
            leaked = [s for s in secrets if s in text]
            assert not leaked, (
                f"{what} contains {len(leaked)} secret value(s), e.g. one starting "
                f"{leaked[0][:6]!r}")

    # -- PORT-LOOPBACK / PORT-EGRESS-ONLY-WHEN-ROUTED ------------------------------------

    @clause("PORT-LOOPBACK", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2))
    def test_published_ports_bind_loopback_only(self, backend, case):
        case = _fit(backend, case)
        with _recorded(backend, case) as rec:
            _launched(rec)
            stops = {rec.plan.bundle_image_ref, rec.plan.agent_image_ref}
            for argv in rec.runs():
                if prog(argv) not in ("docker", "podman", "nerdctl"):
                    continue
                for value in publish_values(argv, stop_at=stops):
                    p = parse_publish(value)
                    assert p.loopback, (
                        f"port {p.container_port} is published on "
                        f"{p.host_ip or 'every interface'} ({value!r}), not host loopback: "
                        f"{rec.normalise(_show(argv))}")
                flags = publish_all_flags(argv, stop_at=stops)
                assert not flags, (f"{flags} exposes every port on the host: "
                                   f"{rec.normalise(_show(argv))}")

    @clause("PORT-EGRESS-ONLY-WHEN-ROUTED", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2, max_upstreams=2))
    def test_agent_reaches_egress_iff_routed(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            containers, machine = _topology(rec)
        egress, why_e = _reaches(containers, machine, "egress", EGRESS_PORT)
        pipelock, why_p = _reaches(containers, machine, "pipelock", PIPELOCK_PORT)
        if _routed(spec):
            assert egress, f"routed bottle, but the agent cannot reach egress: {why_e}"
            assert not pipelock, f"routed bottle, but the agent can reach pipelock: {why_p}"
        else:
            assert pipelock, f"unrouted bottle, but the agent cannot reach pipelock: {why_p}"
            assert not egress, f"unrouted bottle, but the agent can reach egress: {why_e}"

    # -- credentials ----------------------------------------------------------------------

    @clause("CRED-EXP")
    @_PLAN
    @given(case=bst.bottle_cases(agent="codex", forward_host_credentials=True, max_routes=2))
    def test_codex_placeholder_keeps_real_exp(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        real = json.loads(host.home_files[bst.CODEX_AUTH])["tokens"]
        real_access = bst.decode_jwt(real["access_token"])[1].get("exp")
        real_id = bst.decode_jwt(real["id_token"])[1].get("exp")
        want = {"access_token": real_access,
                "id_token": real_id if real_id is not None else real_access}
        placeholder = json.loads(_guest_file(plan, CODEX_AUTH_GUEST).content)
        for key, exp in want.items():
            token = placeholder["tokens"][key]
            try:
                claims = bst.decode_jwt(token)[1]
            except ValueError as exc:
                raise AssertionError(f"placeholder {key} is not a readable JWT: {exc}") from None
            got = claims.get("exp")
            assert got == exp and type(got) is type(exp), (
                f"placeholder {key} exp is {got!r}, the real token's is {exp!r}")

    @clause("CRED-SHAPE", needs="codex")
    @_PLAN
    @given(case=bst.bottle_cases(agent="codex", forward_host_credentials=True, max_routes=2))
    def test_codex_placeholder_shape(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        real_text = host.home_files[bst.CODEX_AUTH]
        real = json.loads(real_text)
        text = _guest_file(plan, CODEX_AUTH_GUEST).content
        data = json.loads(text)
        assert "OPENAI_API_KEY" in data and data["OPENAI_API_KEY"] is None, (
            f"OPENAI_API_KEY must be present and null, got {data.get('OPENAI_API_KEY', '<absent>')!r}")
        tokens = data.get("tokens")
        assert isinstance(tokens, dict), f"tokens is {type(tokens).__name__}, not an object"
        missing = {"id_token", "access_token", "refresh_token", "account_id"} - set(tokens)
        assert not missing, f"tokens lacks {sorted(missing)}"
        decoded = []
        for key in ("id_token", "access_token"):
            token = tokens[key]
            assert isinstance(token, str) and token.count(".") == 2, (
                f"{key} is not a 3-part JWT: {token!r:.80}")
            try:
                header, claims = bst.decode_jwt(token)
            except ValueError as exc:
                raise AssertionError(f"{key} does not parse as a JWT: {exc}") from None
            decoded.append(json.dumps([header, claims], ensure_ascii=False))
        assert "last_refresh" in data, "last_refresh is missing"
        assert data["last_refresh"] == real["last_refresh"], (
            f"last_refresh {data['last_refresh']!r} differs from the host's {real['last_refresh']!r}")
        everything = text + "\n".join(decoded)
        leaked = [s for s in bst.credential_material(real_text) if s in everything]
        assert not leaked, (f"the placeholder holds real token material "
                            f"({len(leaked)} piece(s), e.g. one starting {leaked[0][:8]!r})")

    @clause("CRED-SHAPE", needs="claude")
    @_PLAN
    @given(case=bst.bottle_cases(agent="claude", forward_host_credentials=True, max_routes=2))
    def test_claude_placeholder_shape(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        real_text = host.home_files[bst.CLAUDE_CREDENTIALS]
        real = json.loads(real_text)["claudeAiOauth"]
        text = _guest_file(plan, CLAUDE_CREDENTIALS_GUEST).content
        oauth = json.loads(text).get("claudeAiOauth")
        assert isinstance(oauth, dict), "claudeAiOauth is missing or not an object"
        for key in ("accessToken", "refreshToken"):
            assert isinstance(oauth.get(key), str) and oauth[key], f"{key} is {oauth.get(key)!r}"
        exp = oauth.get("expiresAt")
        assert isinstance(exp, int) and not isinstance(exp, bool), f"expiresAt is {exp!r}, not an int"
        assert exp == real["expiresAt"], f"expiresAt {exp} differs from the host's {real['expiresAt']}"
        scopes = oauth.get("scopes")
        assert isinstance(scopes, list) and all(isinstance(s, str) for s in scopes), (
            f"scopes is {scopes!r}, not a list of strings")
        leaked = [s for s in bst.credential_material(real_text) if s in text]
        assert not leaked, f"the placeholder holds real token material ({len(leaked)} piece(s))"

    @clause("CRED-CA")
    @_LAUNCH
    @given(case=bst.bottle_cases(agent="codex", max_routes=2, max_upstreams=2))
    def test_codex_trusts_the_agent_ca_bundle(self, backend, case):
        case = _fit(backend, case)
        self._check_ca_env(backend, case, "codex")

    @clause("CRED-CA-CLAUDE")
    @_LAUNCH
    @given(case=bst.bottle_cases(agent="claude", max_routes=2, max_upstreams=2))
    def test_claude_trusts_the_agent_ca_bundle(self, backend, case):
        case = _fit(backend, case)
        self._check_ca_env(backend, case, "claude")

    @staticmethod
    def _check_ca_env(backend, case, agent: str) -> None:
        """The agent's environment (where the agent is created, then its exec)
        sets the agent's CA variable to the bundle update-ca-certificates writes."""
        var = CA_ENV[agent]
        with _recorded(backend, case) as rec:
            _launched(rec)
            containers, machine = _topology(rec)
            agent_names = {c.name for c in containers.values() if c.is_agent}
            if machine:
                agent_names.add(machine["name"])
            sources = [a for a in rec.runs("launch")
                       if (r := created_resource(a)) is not None and r.name in agent_names]
            for tty, argv in rec.agent_argvs.items():
                i = _agent_index(argv, agent)
                values = [v for k, v in env_assignments([*(t for a in sources for t in a),
                                                         *argv[:max(i, 0)]]) if k == var]
                assert values, (f"{var} is never set for the {agent} agent (agent creation "
                                f"and agent_argv(tty={tty}))")
                assert values[-1] == CA_BUNDLE, (
                    f"{var}={values[-1]!r}, expected the agent CA bundle {CA_BUNDLE}")

    # -- pipelock ------------------------------------------------------------------------

    @clause("PIPELOCK-PASS")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_injected_hosts_pass_through_pipelock(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        data = _pipelock_config(plan)
        allow = data.get("api_allowlist") or []
        passthrough = (data.get("tls_interception") or {}).get("passthrough_domains") or []
        injected = [r.host for r in spec.routes]
        if spec.forward_host_credentials:
            injected += list(_api_hosts(spec.agent))
        for h in injected:
            assert h in passthrough, (
                f"egress injects a token for {h!r}, but it is not in passthrough_domains "
                f"{passthrough}")
            assert h in allow, f"egress injects a token for {h!r}, but it is not in api_allowlist"

    @clause("PIPELOCK-PASS-CODEX")
    @_PLAN
    @given(case=bst.bottle_cases(agent="codex", forward_host_credentials=True,
                                 missing_tokens=None, credentials=None, max_routes=3))
    def test_codex_api_hosts_pass_through_pipelock(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        data = _pipelock_config(backend.prepare(spec, host))
        allow = data.get("api_allowlist") or []
        passthrough = (data.get("tls_interception") or {}).get("passthrough_domains") or []
        for h in CODEX_PIPELOCK_HOSTS:
            assert h in passthrough, f"Codex API host {h!r} missing from passthrough_domains {passthrough}"
            assert h in allow, f"Codex API host {h!r} missing from api_allowlist {allow}"

    @clause("PIPELOCK-SCHEMA")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_pipelock_yaml_uses_only_pipelock_keys(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        data = _pipelock_config(plan)
        unknown: list[str] = []

        def walk(value: Any, schema: Mapping[str, Any], path: str) -> None:
            for key, sub in value.items():
                here = f"{path}.{key}" if path else str(key)
                if key not in schema:
                    unknown.append(here)
                elif schema[key] is not None:
                    assert isinstance(sub, dict), f"{here} must be a mapping, got {sub!r:.60}"
                    walk(sub, schema[key], here)

        walk(data, PIPELOCK_KEYS, "")
        assert not unknown, f"pipelock.yaml has keys pipelock does not know: {unknown}"
        problems = validate_config(data)
        assert not problems, f"pipelock would refuse this config: {problems}"
        assert (data.get("forward_proxy") or {}).get("enabled") is True, (
            f"forward_proxy.enabled is {(data.get('forward_proxy') or {}).get('enabled')!r}, "
            "must be true")
        try:
            load_config(plan.pipelock.config_yaml)
        except ValueError as exc:
            raise AssertionError(f"pipelock.yaml does not load strictly: {exc}") from None

    # -- provisioning ------------------------------------------------------------------

    @clause("PROV-CA-SELECT", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2, max_upstreams=2))
    def test_guest_trusts_the_first_hops_ca(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            mounted: dict[str, set[str]] = {}
            for argv in rec.runs("launch"):
                for src, dst in mount_pairs(argv):
                    mounted.setdefault(dst, set()).add(os.path.realpath(src))
            copies = [a for a in rec.runs("launch")
                      if is_guest_copy(a) and a[-1].endswith(":" + CA_GUEST_FILE)]
            assert len(copies) == 1, (f"expected one copy of a CA to {CA_GUEST_FILE}, found "
                                      f"{len(copies)}")
            copied = os.path.realpath(copies[0][-2])
            which, target = (("egress", EGRESS_CA_MOUNT) if _routed(spec)
                             else ("pipelock", PIPELOCK_CA_MOUNT))
            want = mounted.get(target, set())
            assert want, f"no CA is mounted at {target} for {which} (mounts: {sorted(mounted)})"
            assert copied in want, (
                f"the guest was given {rec.normalise(copied)}, but the first hop is {which}, "
                f"whose CA is {rec.normalise(sorted(want)[0])}")

    @clause("PROV-GITUSER", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=1, max_upstreams=2))
    def test_one_git_user_config_per_set_field(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        want = [(f"user.{k}", v) for k, v in (("name", spec.git_user.name),
                                                ("email", spec.git_user.email)) if v]
        with _recorded(backend, case) as rec:
            _launched(rec)
            calls = _git_config_calls(rec, "user.")
            got = [(key, value) for _, _, key, value in calls]
            assert sorted(got) == sorted(want), (
                f"git config --global user.* calls {got}, expected {want} (one per set field)")
            for argv, at, _, _ in calls:
                why = _user_switch_problem(argv[:at])
                assert why is None, f"git user config runs wrongly: {why}: {_show(argv)}"

    @clause("PROV-GITGATE")
    @_LAUNCH
    @given(case=bst.bottle_cases(with_upstreams=True, max_routes=1))
    def test_every_upstream_rewrites_to_the_gate(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            calls = [(argv, at, key, value) for argv, at, key, value in _git_config_calls(rec, "url.")
                     if key.endswith(".insteadOf")]
            gates = self._gate_addresses(rec)
        assert len(calls) == len(spec.upstreams), (
            f"{len(calls)} insteadOf rewrites for {len(spec.upstreams)} upstreams: "
            f"{[(k, v) for _, _, k, v in calls]}")
        assert gates, "no git-gate address the agent can reach was found in the launch"
        for u in spec.upstreams:
            mine = [(argv, at, key) for argv, at, key, value in calls if value == u.url
                    and key.endswith(f"/{u.name}.git.insteadOf")]
            assert len(mine) == 1, (f"upstream {u.name!r} ({u.url!r}) has {len(mine)} insteadOf "
                                    f"rewrites, expected 1: {[(k, v) for _, _, k, v in calls]}")
            argv, at, key = mine[0]
            gate = key[len("url."):-len(f"/{u.name}.git.insteadOf")]
            assert gate.rstrip("/") in gates, (
                f"upstream {u.name!r} is rewritten to {gate!r}, not to a git-gate address "
                f"the agent reaches ({sorted(gates)})")
            why = _user_switch_problem(argv[:at])
            assert why is None, f"insteadOf config runs wrongly: {why}: {_show(argv)}"

    @staticmethod
    def _gate_addresses(rec: Recording) -> set[str]:
        """git:// addresses at which the agent reaches git-gate: a network
        alias of the git-gate container on the agent's network (port 9418),
        or the host address and port `docker port` reported for 9418."""
        containers, machine = _topology(rec)
        out: set[str] = set()
        agent_nets = set().union(*(c.networks for c in containers.values() if c.is_agent))
        for c in containers.values():
            if "git-gate" in c.daemons and c.networks & agent_nets:
                for alias in c.aliases | {c.name}:
                    out |= {f"git://{alias}:{GIT_GATE_PORT}", f"git://{alias}"}
        for i, call in rec.indexed("launch"):
            if call.kind == "run" and subcommand(call.argv) == ("port",) and any(
                    t.split("/")[0] == str(GIT_GATE_PORT) for t in call.argv[3:]):
                line = rec.runner.stdout_of(i).strip().splitlines()
                if line:
                    out.add(f"git://{line[0].strip()}")
        return out

    # -- LAUNCH-MISSING-TOKEN -------------------------------------------------------------

    @clause("LAUNCH-MISSING-TOKEN")
    @_LAUNCH
    @given(case=bst.bottle_cases(routed=True, missing_tokens=True, credentials=None,
                                 skills=False, cwd=False, max_upstreams=2))
    def test_missing_token_refused_before_anything_starts(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        if not spec.routes:  # forward_host_credentials alone: make its file the missing input
            host = dataclasses.replace(host, home_files={})
        source = "generated-bottle.yaml"
        text = bst.spec_yaml(spec)
        parsed = parse_spec(text.text, source=source)
        assert parsed == spec, "strategy bug: the generated spec does not round-trip"
        missing = [f"egress.routes[{i}].token_env" for i, r in enumerate(parsed.routes)
                   if not host.env.get(r.token_env)]
        if parsed.forward_host_credentials and not host.home_files:
            missing.append("forward_host_credentials")
        with _scratch() as tmp:
            state_root = Path(tmp) / "state"
            host = dataclasses.replace(host, state_root=state_root)
            rec = record(backend, (parsed, host), tmp=Path(tmp))
            assert isinstance(rec.error, SpecError), (
                f"launch with unset token(s) {missing} did not raise SpecError: "
                f"{rec.describe_error()}")
            err, message = rec.error, str(rec.error)
            assert err.key in missing and err.key in message, (
                f"the error names key {err.key!r}, expected one of {missing}: {message!r}")
            line = text.lines[err.key]
            assert err.file == source and source in message, (
                f"the error does not name the spec file {source}: {message!r}")
            assert err.line == line and str(line) in message, (
                f"the error names line {err.line}, but {err.key} is on line {line}: {message!r}")
            started = [a for a in rec.runs() if created_resource(a) is not None
                       or prog(a) == "openssl" or set(a[1:4]) & _STARTING_WORDS]
            assert not started, (
                f"launch ran {len(started)} command(s) that create or start something before "
                f"refusing, e.g. {rec.normalise(_show(started[0]))}")
            assert not state_root.exists(), (
                f"launch created {state_root} (the state dir) before refusing")
