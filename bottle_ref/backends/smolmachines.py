"""The reference ``smolmachines`` backend: the agent in a smolvm microVM.

Topology (issue 14): the guest has NO network. No smolvm command gets
``--net`` or any flag that implies it (``--allow-cidr``, ``--allow-host``,
``--outbound-localhost-only``, ``--dns``, ``--network``, ``-p``): without
them smolvm attaches no network backend (1.8.0 and 1.9.3
``src/network/launch.rs`` ``plan_launch_network``: ``wants_network`` false
-> ``EffectiveNetworkBackend::None``; ``src/agent/launcher.rs``
``krun_add_vsock(ctx, 0)``, no INET hijack), so the guest has only ``lo``
and no DNS path at all. Each agent-facing daemon (egress iff routed else
pipelock; git-gate iff upstreams; supervise iff enabled) reaches the guest
through its own ``machine create --mount-socket HOST_PATH:GUEST_PATH``
(since v1.6.4, b310083f; 1.9.3 ``src/cli/machine.rs``
``parse_published_sockets`` ~138-240, ``src/agent/launcher.rs`` ~1445-1500:
libkrun dials HOST_PATH for each guest connection over vsock).

- In the guest, `bottle_bundle.socket_relay` (stdlib only), copied in at
  provisioning to a root-owned absolute path and run as root under a
  restart loop, listens on ``127.0.0.1:<daemon port>`` and forwards to the
  mounted socket, so HTTPS_PROXY, git's insteadOf URLs and the MCP URL are
  plain loopback TCP, the same on every host.
- On the host, HOST_PATH is ``<socket_root>/<ident>/<daemon>.sock``
  (socket_root: $XDG_RUNTIME_DIR, else /tmp: sun_path is short). Route
  ``bind-mount`` (Linux, where the engine shares Unix sockets through bind
  mounts): the bundle container mounts that folder and its own relay
  (``BOTTLE_SOCKET_RELAYS``) listens there, forwarding to the daemon's
  ``127.0.0.1`` port; the bundle publishes no port at all. Route
  ``host-relay`` (macOS: Docker Desktop does not pass Unix sockets through
  bind mounts): the bundle publishes each agent-facing port on host
  ``127.0.0.1`` (ephemeral) and a host relay the launch starts (its pid file
  in the state dir, which the journaled handle names) listens on the
  sockets; close() stops it. ``BOTTLE_SMOL_SOCKET_ROUTE`` overrides the
  choice.

``smolvm machine exec`` runs as the image's USER (smolvm 1.9.3
``src/cli/machine.rs`` ``ExecCmd::run`` -> ``resolve_image_runtime_defaults``
in ``src/cli/vm_common.rs``); the agent image sets none, so exec is root, and
anything touching user state is framed
``-e HOME=/home/node -e USER=node -- runuser -u node -- CMD``.

smolvm as it really is (each fact read in smol-machines/smolvm at v1.9.3):

- Target: smolvm >= 1.8.0. On 0.8.x..1.7.x ``machine create --from F --net
  --allow-cidr C`` drops the CIDR list (``allowed_cidrs: None``, 0.8.2
  ``src/cli/machine.rs`` ~1548): the guest would get unrestricted egress.
  Fixed by f8a6fa62 "preserve egress policy for --from", first in v1.8.0.
  ``launch`` asks ``smolvm --version`` first and refuses anything older.
- The machine is created with ``-I <docker save archive>`` (a path starting
  with ``/``: 1.9.3 ``src/data/image_source.rs`` ``classify`` treats it as a
  local archive, no registry; since v1.1.0, eb6aecfd). Not ``pack create``:
  it pulls its ``-I`` from a registry inside a temporary VM (1.9.3
  ``src/cli/pack.rs`` ``pull_with_progress``), so a locally built tag is not
  found; and its ``-o X`` is the executable stub, the artifact being
  ``X.smolmachine``.
- ``machine create/delete`` take ``-n/--name`` (a positional is rejected)
  and create's workload needs ``--`` (``last = true``; since v1.0.2,
  67a09b27). We pass no workload: the image's CMD runs on ``start``.
- ``machine exec`` takes the name as ``--name`` only (no ``-n``), then
  ``-e K=V`` (repeatable), ``-w DIR``, ``-i``, ``-t``, ``--`` and the command.
- ``machine cp`` copies one regular file (``File::open`` + stream); a
  directory travels as a tar stream through ``machine exec -i``
  (`bottle_ref.tar_pipe`).
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import re
import select
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import bottle_bundle.socket_relay as socket_relay

from .. import egress, pipelock, pty_resize, tar_pipe
from ..ca import CaFiles, bottle_ca_certificates, ensure_ca
from bottle_api.host import HostContext
from bottle_api.plan import EGRESS, GIT_GATE, PIPELOCK, PORTS, SUPERVISE, Plan
from ..planning import auto_routes, build_plan, first_hop_for
from ..provision import NODE, NODE_HOME, ROOT, Addresses, GuestChannel, guest_copy, provision
from bottle_api.runner import READY, Completed, RecordingRunner, Runner, poll
from bottle_api.spec import BottleSpec, SpecError
from ..state import remove_state, state_files, write_state
from ..supervise import MCP_PATH
from bottle_api.backend import UPSTREAM_CA_ENV, Backend, Bottle, Progress, _quiet
from .docker import (
    DAEMON_PROBE_TIMEOUT,
    DAEMON_READY_TIMEOUT,
    agent_facing_daemons,
    container_addresses,
    image_problem,
    remaining,
    remove_networks,
    wait_for_daemons,
)

KVM_DEVICE = "/dev/kvm"
SMOLVM = "smolvm"
DOCKER = "docker"
from bottle_api.conventions import (  # noqa: E402
    BUNDLE_ENTRY,
    EGRESS_UPSTREAM_CA_ENV,
    LABEL_KEY,
    PIPELOCK_UPSTREAM_CA_ENV,
    ROOT_EXEC_WORKDIR,
)
LABEL = LABEL_KEY

# The resize wrapper, run by absolute path (a tmux pane has its own cwd, so
# ``-m bottle_ref.pty_resize`` may not import there).
PTY_RESIZE_SCRIPT = str(Path(pty_resize.__file__).resolve())
# The directory copier, by absolute path for the same reason.
TAR_PIPE_SCRIPT = str(Path(tar_pipe.__file__).resolve())
# The socket relay (stdlib only): copied into the guest, run by the bundle
# as a module, and on a host-relay host run from here.
SOCKET_RELAY_SCRIPT = str(Path(socket_relay.__file__).resolve())

# The oldest smolvm this backend runs on: every flag used here exists from
# it on (-n/--name on create/delete: v1.0.2; -I <archive>: v1.1.0;
# --mount-socket: v1.6.4, b310083f), and 0.8.x..1.7.x also dropped
# --allow-cidr on `create --from` (f8a6fa62, v1.8.0) should anyone add it.
MIN_SMOLVM = (1, 8, 0)
MIN_SMOLVM_TEXT = "1.8.0"
SCRIPTED_SMOLVM = "1.9.3"  # what a recorded launch's `smolvm --version` answers
# clap's `#[command(version)]` on `smolvm` prints "smolvm X.Y.Z" (1.9.3 src/main.rs).
_VERSION_RE = re.compile(r"\bsmolvm\s+v?(\d+)\.(\d+)\.(\d+)")
# What the test-only stand-in prints after its version line (tests/standins/smolvm).
STANDIN_MARKER = "bottle-conformance stand-in"

SOCKET_ROUTE_ENV = "BOTTLE_SMOL_SOCKET_ROUTE"
ROUTE_BIND_MOUNT = "bind-mount"  # the bundle listens on the sockets (Linux)
ROUTE_HOST_RELAY = "host-relay"  # a host relay the launch starts (macOS)
SOCKET_ROUTES = (ROUTE_BIND_MOUNT, ROUTE_HOST_RELAY)
CPUS_ENV = "BOTTLE_SMOL_CPUS"
# Where the agent image's `docker save` archive is cached (default: beside
# the state root); a cache dir that outlives the run saves one `docker save`.
CACHE_ENV = "BOTTLE_SMOL_CACHE"
MEM_ENV = "BOTTLE_SMOL_MEM_MIB"
DEFAULT_CPUS = 2
DEFAULT_MEM_MIB = 2048

# pipelock is reached by egress on the bundle's own loopback (same netns).
PIPELOCK_URL = "http://127.0.0.1:8888"
PIPELOCK_LISTEN_INTERNAL = "127.0.0.1:8888"  # only egress or the bundle's relay dial it
PIPELOCK_LISTEN_PUBLISHED = "0.0.0.0:8888"  # host-relay route, unrouted: docker's forward

# Where the sockets live: the host's per-launch folder ``<root>/<ident>``
# (root: $XDG_RUNTIME_DIR, else /tmp; short, since sun_path is 104-108
# bytes; made 0700 by launch, removed by close), the bundle's view of it
# (bind-mount route), and the guest path of each mounted socket. A socket
# is named after its daemon.
SOCKET_ROOT_ENV = "XDG_RUNTIME_DIR"
DEFAULT_SOCKET_ROOT = "/tmp"
BUNDLE_SOCKET_DIR = "/run/bottle/sockets"
GUEST_SOCKET_DIR = "/run/bottle"
GUEST_RELAY = "/usr/local/lib/bottle/socket_relay.py"  # root-owned, run as root
GUEST_RELAY_LOG = "/var/log/bottle-socket-relay.log"
HOST_RELAY_PIDFILE = "host-relay.pid"
# sun_path is 108 bytes on Linux, 104 on macOS: a longer host path cannot be bound.
SOCKET_PATH_MAX = 103

# An extra CA bundle both proxies trust for upstream TLS (UPSTREAM_CA_ENV).
UPSTREAM_CA_MOUNT = "/etc/bottle/upstream-ca.pem"
UPSTREAM_CA_VARS = (PIPELOCK_UPSTREAM_CA_ENV, EGRESS_UPSTREAM_CA_ENV)
STOP_TIMEOUT = 5  # seconds docker stop waits before SIGKILL (stop_daemon)

READY_TIMEOUT = 60.0  # seconds to wait for the first successful exec
READY_PROBE_TIMEOUT = 10.0  # one probe exec may hang on a warming VM
RELAY_TIMEOUT = 30.0  # seconds for the guest relay (and sockets) to answer
HOST_RELAY_TIMEOUT = 30.0  # seconds for the host relay to bind its sockets (a loaded host)
GUEST_WORKDIR = NODE_HOME


def _last_line(result: Completed) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1].strip() if lines else f"exit {result.returncode}"


class LaunchError(RuntimeError):
    """Launch could not proceed; the message says what to do about it."""


# -- plan ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SmolmachinesPlan(Plan):
    """`Plan` plus how the guest's sockets reach the bundle and the VM's size."""

    socket_route: str = ROUTE_BIND_MOUNT  # ROUTE_BIND_MOUNT or ROUTE_HOST_RELAY
    socket_root: str = DEFAULT_SOCKET_ROOT  # the host folder of <ident>/<daemon>.sock
    cpus: int = DEFAULT_CPUS
    mem_mib: int = DEFAULT_MEM_MIB
    upstream_ca_file: str | None = None  # host PEM both proxies trust upstream
    cache_dir: str | None = None  # where the agent image archive is cached


def default_socket_route(system: str) -> str:
    """Docker Desktop on macOS does not pass Unix sockets through bind
    mounts (its engine runs in a VM), so there a host relay serves them;
    everywhere else the bundle listens on them through a bind mount."""
    return ROUTE_HOST_RELAY if system == "Darwin" else ROUTE_BIND_MOUNT


def resolve_socket_route(env: Mapping[str, str], system: str) -> str:
    raw = env.get(SOCKET_ROUTE_ENV, "").strip()
    if not raw:
        return default_socket_route(system)
    if raw not in SOCKET_ROUTES:
        raise ValueError(f"{SOCKET_ROUTE_ENV}={raw!r} must be one of {', '.join(SOCKET_ROUTES)}")
    return raw


def _positive_int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{key}={raw!r} must be a positive integer")
    return value


def artifact_path(plan: Plan, image_id: str = "") -> Path:
    """The cached ``docker save`` archive of the agent image: shared by every
    bottle (``<state_root>/../smolmachines/``), keyed by the image's ID as
    docker reports it at launch, so rebuilding an image under the same tag
    saves it again; by the ref only when no ID is known. Absolute and
    ending in ``.tar``, so smolvm's ``classify`` takes it as a local archive."""
    cache = getattr(plan, "cache_dir", None)
    base = Path(cache) if cache else Path(plan.state_dir).parent.parent / "smolmachines"
    key = hashlib.sha256((image_id or plan.agent_image_ref).encode("utf-8")).hexdigest()[:16]
    return (base / f"agent-{key}.tar").absolute()


def parse_smolvm_version(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` from ``smolvm --version`` output, or None."""
    m = _VERSION_RE.search(text or "")
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def smolvm_version_problem(result: Completed) -> str | None:
    """Why this smolvm must not run a bottle (one line), or None if it may."""
    if not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()
        return ("smolvm not available: `smolvm --version` failed ("
                + (detail[-1] if detail else f"exit {result.returncode}") + ")")
    version = parse_smolvm_version(result.stdout)
    if version is None:
        first = (result.stdout.strip().splitlines() or [""])[0]
        return (f"cannot read the smolvm version from `smolvm --version` ({first!r}); "
                f"smolvm >= {MIN_SMOLVM_TEXT} is required")
    if version < MIN_SMOLVM:
        have = ".".join(map(str, version))
        return (f"smolvm {have} is too old: this backend runs on smolvm >= {MIN_SMOLVM_TEXT} "
                "only (the releases its argv is checked against; before it `machine create "
                "--from` also dropped --allow-cidr, f8a6fa62); upgrade to smolvm >= "
                f"{MIN_SMOLVM_TEXT}")
    return None


def socket_daemons(plan: Plan) -> tuple[str, ...]:
    """The agent-facing daemons, one socket each, in order: egress iff
    routed, else pipelock (never both: the agent has exactly one first
    hop), then git-gate iff upstreams, supervise iff enabled."""
    out = [EGRESS if plan.routed else PIPELOCK]
    out += [d for d in (GIT_GATE, SUPERVISE) if d in plan.daemons]
    return tuple(out)


def published_ports(plan: Plan) -> tuple[int, ...]:
    """The agent-facing daemons' container ports, in `socket_daemons` order:
    what the guest relay listens on, and (host-relay route only) what the
    bundle publishes on host 127.0.0.1."""
    return tuple(PORTS[d] for d in socket_daemons(plan))


def socket_root(env: Mapping[str, str]) -> str:
    """$XDG_RUNTIME_DIR (per user, 0700) when set and absolute, else /tmp."""
    raw = env.get(SOCKET_ROOT_ENV, "").strip().rstrip("/")
    return raw if raw.startswith("/") else DEFAULT_SOCKET_ROOT


def socket_dir(plan: Plan, ident: str) -> Path:
    """``<socket_root>/<ident>``: this launch's sockets, and nothing else."""
    return Path(getattr(plan, "socket_root", DEFAULT_SOCKET_ROOT)) / ident


def host_socket(plan: Plan, ident: str, daemon: str) -> Path:
    """``<socket_root>/<ident>/<daemon>.sock``."""
    return socket_dir(plan, ident) / f"{daemon}.sock"


def guest_socket(daemon: str) -> str:
    return f"{GUEST_SOCKET_DIR}/{daemon}.sock"


def mount_socket_specs(plan: Plan, ident: str) -> list[str]:
    """One ``HOST_PATH:GUEST_PATH`` per agent-facing daemon."""
    return [f"{host_socket(plan, ident, d)}:{guest_socket(d)}" for d in socket_daemons(plan)]


def guest_relay_mappings(plan: Plan) -> list[str]:
    """The guest relay's ``tcp:127.0.0.1:PORT=unix:GUEST_SOCKET`` mappings."""
    return [f"tcp:127.0.0.1:{PORTS[d]}=unix:{guest_socket(d)}" for d in socket_daemons(plan)]


def bundle_relay_mappings(plan: Plan) -> list[str]:
    """The bundle relay's ``unix:<bundle socket>=tcp:127.0.0.1:PORT`` mappings."""
    return [f"unix:{BUNDLE_SOCKET_DIR}/{d}.sock=tcp:127.0.0.1:{PORTS[d]}"
            for d in socket_daemons(plan)]


def guest_addresses(plan: Plan) -> Addresses:
    """Plain loopback TCP in the guest, where the relay listens (known
    before launch: the daemon's own port)."""
    first = EGRESS if plan.routed else PIPELOCK
    return Addresses(
        proxy_url=f"http://127.0.0.1:{PORTS[first]}",
        git_gate_url=(f"git://127.0.0.1:{PORTS[GIT_GATE]}" if GIT_GATE in plan.daemons else None),
        supervise_url=(f"http://127.0.0.1:{PORTS[SUPERVISE]}{MCP_PATH}"
                       if SUPERVISE in plan.daemons else None),
    )


# -- argv builders (pure) -----------------------------------------------------


def _env_flags(env: Mapping[str, str]) -> list[str]:
    flags: list[str] = []
    for key, value in env.items():
        if not key or "=" in key:
            raise ValueError(f"bad guest env name {key!r}")
        flags += ["-e", f"{key}={value}"]
    return flags


@dataclass(frozen=True)
class SmolvmChannel(GuestChannel):
    """Exec and copy framing for one smolvm machine (exec is always root)."""

    machine: str

    def exec_argv(self, cmd: Sequence[str], *, user: str = NODE,
                  env: Mapping[str, str] | None = None, tty: bool = False,
                  workdir: str | None = None) -> list[str]:
        """``smolvm machine exec --name M [-e HOME=/home/node -e USER=node]
        [-e K=V...] [-w DIR] [-i -t] -- [runuser -u node --] CMD``. smolvm
        takes only ``-e K=V``, so env values land on argv: never a secret."""
        if user not in (NODE, ROOT):
            raise ValueError(f"smolvm guest user must be {NODE!r} or {ROOT!r}, not {user!r}")
        argv = [SMOLVM, "machine", "exec", "--name", self.machine]
        if user == NODE:
            # Bare runuser keeps root's HOME=/root: git --global and
            # `claude mcp add --scope user` would write root's files.
            argv += ["-e", f"HOME={NODE_HOME}", "-e", f"USER={NODE}"]
        argv += _env_flags(env or {})
        if user == ROOT and workdir is None:
            workdir = ROOT_EXEC_WORKDIR  # never node's workdir (issue 16)
        if workdir:
            argv += ["-w", workdir]
        if tty:
            argv += ["-i", "-t"]
        argv.append("--")
        if user == NODE:
            argv += ["runuser", "-u", NODE, "--"]
        return argv + [str(c) for c in cmd]

    def copy_argv(self, host_path: str, guest_path: str) -> list[str]:
        """A regular file: ``smolvm machine cp SRC M:DST`` (one file only).
        A directory: its tar stream into ``machine exec -i`` as root, which
        extracts it at DST (made if missing) without host owners; the
        caller chowns afterwards, as for a file copy."""
        if Path(host_path).is_dir():
            extract = ['mkdir -p "$1" && exec tar -x -f - -C "$1" --no-same-owner']
            return [sys.executable, TAR_PIPE_SCRIPT, str(host_path), "--",
                    SMOLVM, "machine", "exec", "--name", self.machine, "-i", "--",
                    "sh", "-c", *extract, "sh", guest_path]
        return [SMOLVM, "machine", "cp", str(host_path), f"{self.machine}:{guest_path}"]


def machine_create_argv(plan: SmolmachinesPlan, machine: str, archive: Path,
                        env: Mapping[str, str]) -> list[str]:
    """``-I`` a ``docker save`` archive (absolute path: a local source, no
    registry). No network flag at all; one ``--mount-socket`` per
    agent-facing daemon (`mount_socket_specs`). ``-w`` is honoured on this
    path (it is ignored only with ``--from``, 0.8.2 machine.rs ~1545). No
    ``--``: the image's CMD is the workload."""
    return [
        SMOLVM, "machine", "create", "--name", machine,
        "-I", str(archive),
        "--cpus", str(plan.cpus),
        "--mem", str(plan.mem_mib),
        *(a for spec in mount_socket_specs(plan, machine) for a in ("--mount-socket", spec)),
        *_env_flags(env),
        "-w", GUEST_WORKDIR,
    ]


def machine_start_argv(machine: str) -> list[str]:
    return [SMOLVM, "machine", "start", "--name", machine]


def machine_stop_argv(machine: str) -> list[str]:
    return [SMOLVM, "machine", "stop", "--name", machine]


def machine_delete_argv(machine: str) -> list[str]:
    return [SMOLVM, "machine", "delete", "--name", machine, "-f"]


def version_argv() -> list[str]:
    return [SMOLVM, "--version"]


def docker_save_argv(image_ref: str, out: Path) -> list[str]:
    return [DOCKER, "save", "-o", str(out), image_ref]


def ready_probe_argv(machine: str) -> list[str]:
    return [SMOLVM, "machine", "exec", "--name", machine, "--", "true"]


def _mount(source: Path | str, target: str) -> list[str]:
    return ["--mount", f"type=bind,source={source},target={target},readonly"]


def bundle_mounts(plan: Plan) -> list[tuple[Path, str]]:
    """(host path, in-container path) of the read-only config. The egress
    CA exists (and is mounted) only when routed, as on docker."""
    files = state_files(plan)
    mounts = [
        (files.pipelock_yaml, pipelock.CONFIG_PATH),
        (CaFiles(files.pipelock_ca_dir).cert, pipelock.CA_CERT),
        (CaFiles(files.pipelock_ca_dir).key, pipelock.CA_KEY),
        (files.egress_routes_yaml, egress.ROUTES_PATH),
    ]
    if plan.routed:
        mounts += [(CaFiles(files.egress_ca_dir).cert, egress.CA_CERT),
                   (CaFiles(files.egress_ca_dir).key, egress.CA_KEY)]
    return mounts


def token_slots(plan: Plan) -> list[str]:
    """Slots that have a value (launch refuses a plan with missing tokens)."""
    return [s for s in plan.egress.token_slots if s in plan.secrets]


def bundle_run_argv(plan: SmolmachinesPlan, ident: str) -> list[str]:
    """One container, every daemon. Route bind-mount: no port published;
    the bundle's relay serves the agent-facing daemons on Unix sockets in
    the mounted `socket_dir`. Route host-relay: each agent-facing
    port published on host ``127.0.0.1`` (ephemeral), for the host relay.
    Token slots are bare ``-e NAME``: their values come from the runner's
    ``env=``, never argv."""
    argv = [DOCKER, "run", "-d", "--name", f"{ident}-bundle",
            "--network", f"{ident}-net", "--label", f"{LABEL}={ident}"]
    if plan.socket_route == ROUTE_HOST_RELAY:
        for port in published_ports(plan):
            argv += ["-p", f"127.0.0.1::{port}"]
    for source, target in bundle_mounts(plan):
        argv += _mount(source, target)
    if plan.socket_route == ROUTE_BIND_MOUNT:
        argv += ["--mount", f"type=bind,source={socket_dir(plan, ident)},"
                            f"target={BUNDLE_SOCKET_DIR}"]
        argv += ["-e", f"{socket_relay.ENV}={' '.join(bundle_relay_mappings(plan))}"]
    argv += ["-e", f"{egress.UPSTREAM_ENV}={plan.egress.upstream_proxy}"]
    if plan.git_gate and plan.git_gate.upstreams:
        # git-gate serves (and creates) exactly these bare repos.
        argv += ["-e", "GIT_GATE_REPOS=" + ",".join(u.name for u in plan.git_gate.upstreams)]
    if plan.upstream_ca_file:
        argv += _mount(plan.upstream_ca_file, UPSTREAM_CA_MOUNT)
        for var in UPSTREAM_CA_VARS:
            argv += ["-e", f"{var}={UPSTREAM_CA_MOUNT}"]
    for slot in token_slots(plan):
        argv += ["-e", slot]
    argv += [plan.bundle_image_ref, BUNDLE_ENTRY, ",".join(plan.daemons)]
    return argv


def parse_port(stdout: str, *, container: str, port: int) -> int:
    """The host port from ``docker port`` output (``HOST:PORT``, first line)."""
    line = next((ln.strip() for ln in stdout.splitlines() if ln.strip()), "")
    _, sep, tail = line.rpartition(":")
    if not sep or not tail.isdigit() or not 0 < int(tail) < 65536:
        raise LaunchError(
            f"cannot read the host port of {container} {port}/tcp from "
            f"`docker port` output {stdout.strip()!r} (expected HOST:PORT)"
        )
    return int(tail)


def agent_env(plan: SmolmachinesPlan, addresses: Addresses | None) -> dict[str, str]:
    """The guest's environment: the plan's guest_env, then the proxy
    variables (the first hop's guest relay on 127.0.0.1). Lower-case twins
    too, since curl honours only ``http_proxy`` for plain http. git-gate
    and supervise are guest-loopback relays too, dialled directly, hence
    NO_PROXY."""
    env = dict(plan.guest_env)
    if addresses is None:
        return env
    for key, value in (("HTTPS_PROXY", addresses.proxy_url),
                       ("HTTP_PROXY", addresses.proxy_url),
                       ("NO_PROXY", "127.0.0.1,localhost")):
        env[key] = value
        env[key.lower()] = value
    return env


def _missing_token_error(plan: Plan) -> SpecError:
    key = plan.missing_tokens[0]
    extra = f" (and {len(plan.missing_tokens) - 1} more)" if len(plan.missing_tokens) > 1 else ""
    return SpecError(
        f"token environment variable is not set on the host{extra}",
        file=plan.spec_source, key=key, line=plan.spec_lines.get(key),
    )


# -- the socket relays ---------------------------------------------------------


def bundle_socket_probe_argv(plan: Plan, ident: str) -> list[str]:
    """One ``docker exec``: every agent-facing socket exists in the bundle."""
    checks = " && ".join(f"test -S {shlex.quote(f'{BUNDLE_SOCKET_DIR}/{d}.sock')}"
                         for d in socket_daemons(plan))
    return [DOCKER, "exec", f"{ident}-bundle", "sh", "-c", checks]


def wait_for_sockets(runner: Runner, bottle: "SmolmachinesBottle", *, timeout: float) -> None:
    """Poll (bounded) until every host socket exists: before the machine is
    created, so no guest connection ever meets a missing socket."""
    plan = bottle.plan
    if plan.socket_route == ROUTE_BIND_MOUNT:
        argv = bundle_socket_probe_argv(plan, bottle.ident)
        check = lambda: runner.run(argv, check=False, timeout=DAEMON_PROBE_TIMEOUT).ok  # noqa: E731
    else:
        check = lambda: all(host_socket(plan, bottle.ident, d).exists()  # noqa: E731
                            for d in socket_daemons(plan))
    try:
        poll(runner, check, timeout=timeout, what="bundle sockets")
    except TimeoutError:
        raise LaunchError(f"the bundle's sockets under {socket_dir(plan, bottle.ident)} did "
                          f"not appear within {timeout:g}s ({plan.socket_route} route); see "
                          f"`docker logs {bottle.ident}-bundle`") from None


def guest_relay_argv(plan: Plan) -> list[str]:
    """The guest relay, as root, detached, restarted if it ever exits (a
    one-second pause between restarts, so a broken relay does not spin)."""
    loop = 'while :; do python3 "$0" "$@"; sleep 1; done'
    return ["sh", "-c",
            f'exec setsid -f sh -c {shlex.quote(loop)} "$@" </dev/null >>{GUEST_RELAY_LOG} 2>&1',
            "sh", GUEST_RELAY, *guest_relay_mappings(plan)]


def start_guest_relay(runner: Runner, channel: GuestChannel, plan: Plan) -> None:
    """Copy the relay in (``machine cp`` makes it root's, parents too) and
    start it as root: node can neither replace nor stop it."""
    guest_copy(runner, channel, SOCKET_RELAY_SCRIPT, GUEST_RELAY)
    runner.run(channel.exec_argv(["chmod", "0755", GUEST_RELAY], user=ROOT))
    runner.run(channel.exec_argv(guest_relay_argv(plan), user=ROOT))


def guest_relay_probe_argv(plan: Plan) -> list[str]:
    script = ("import socket,sys\n"
              "for p in sys.argv[1:]:\n"
              "    socket.create_connection(('127.0.0.1', int(p)), 3).close()\n")
    return ["python3", "-c", script, *map(str, published_ports(plan))]


def wait_for_guest_relay(runner: Runner, channel: GuestChannel, plan: Plan, *,
                         timeout: float) -> None:
    argv = channel.exec_argv(guest_relay_probe_argv(plan), user=ROOT)
    try:
        poll(runner, lambda: runner.run(argv, check=False, timeout=READY_PROBE_TIMEOUT).ok,
             timeout=timeout, what="guest socket relay")
    except TimeoutError:
        ports = ", ".join(map(str, published_ports(plan)))
        raise LaunchError(f"the guest relay on 127.0.0.1 ({ports}) "
                          f"did not answer within {timeout:g}s; see {GUEST_RELAY_LOG} in the guest"
                          ) from None


def make_socket_dir(plan: Plan, ident: str) -> Path:
    """``<socket_root>/<ident>``, new and 0700 (the ident is unique per
    launch; an existing one that is not a private folder of ours is refused).
    Recorded launches of one scenario share an ident, so another process's
    close() may remove the folder between two of these steps: then start over
    (a bounded number of times)."""
    path = socket_dir(plan, ident)
    for _ in range(10):
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                st = path.lstat()
                if not (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
                        and stat.S_IMODE(st.st_mode) == 0o700):
                    raise LaunchError(f"{path} exists and is not a private folder of this "
                                      "user; refusing to put the bottle's sockets there") from None
            os.chmod(path, 0o700)
            return path
        except FileNotFoundError:
            continue  # removed meanwhile by a recording of the same ident
        except OSError as exc:
            raise LaunchError(f"cannot make the socket folder {path}: {exc.strerror}") from None
    raise LaunchError(f"cannot make the socket folder {path}: it kept disappearing")


def remove_socket_dir(plan: Plan, ident: str) -> None:
    """Remove the launch's socket folder (its sockets and the relay's
    files only; idempotent)."""
    path = socket_dir(plan, ident)
    try:
        if path.is_symlink() or not path.is_dir():
            return
        for entry in path.iterdir():
            if entry.is_socket() or entry.is_file():
                entry.unlink(missing_ok=True)
        path.rmdir()
    except OSError:
        pass


def host_relay_pidfile(plan: Plan) -> Path:
    return Path(plan.state_dir) / HOST_RELAY_PIDFILE


def start_host_relay(plan: Plan, ident: str, hostports: Mapping[int, int]) -> int:
    """Route host-relay: ``<socket_dir>/<daemon>.sock`` ->
    ``127.0.0.1:<published port>``, a detached process whose pid file is in
    the state dir (the journaled handle names the state dir, so a crashed
    `up` can still stop it; close() does)."""
    mappings = [f"unix:{host_socket(plan, ident, d)}=tcp:127.0.0.1:{hostports[PORTS[d]]}"
                for d in socket_daemons(plan)]
    log = open(Path(plan.state_dir) / "host-relay.log", "ab")
    try:
        # bufsize=0: select() sees the pipe, not Python's buffer. Buffered,
        # the first readline() takes every line the relay wrote at once and
        # select() then waits out the whole timeout for lines already read.
        proc = subprocess.Popen([sys.executable, SOCKET_RELAY_SCRIPT, *mappings],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True, bufsize=0)
    finally:
        log.close()
    host_relay_pidfile(plan).write_text(f"{proc.pid}\n")
    # A real process whatever the runner: the relay prints one line per
    # socket once every socket is bound; read them (select, bounded), so a
    # recorded launch waits exactly as a real one does, with no sleep.
    deadline = time.monotonic() + HOST_RELAY_TIMEOUT
    lines = 0
    assert proc.stdout is not None
    with proc.stdout:
        while lines < len(mappings):
            left = deadline - time.monotonic()
            ready = select.select([proc.stdout], [], [], max(left, 0))[0] if left > 0 else []
            line = proc.stdout.readline() if ready else b""
            if not line:
                raise LaunchError(f"the host socket relay did not serve {socket_dir(plan, ident)} "
                                  f"within {HOST_RELAY_TIMEOUT:g}s (see "
                                  f"{Path(plan.state_dir) / 'host-relay.log'})")
            lines += 1
    return proc.pid


def stop_host_relay(plan: Plan, ident: str) -> None:
    """Stop the host relay named in the pid file, if it is still ours (its
    command line names our relay and this state dir); idempotent."""
    pidfile = host_relay_pidfile(plan)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        # No timeout=: subprocess would poll with time.sleep; ps returns at once.
        cmd = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.SubprocessError):
        cmd = ""
    if SOCKET_RELAY_SCRIPT in cmd and f"{socket_dir(plan, ident)}/" in cmd:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        _wait_gone(pid, HOST_RELAY_TIMEOUT)
    pidfile.unlink(missing_ok=True)


def _wait_gone(pid: int, timeout: float) -> None:
    """Until ``pid`` has exited: reaped at once if it is our child (the
    usual case, close() in the process that launched), else polled (a later
    `bottle-ref down`), bounded."""
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


# -- bottle -------------------------------------------------------------------


class SmolmachinesBottle(Bottle):
    """A running (or partly launched) smolmachines bottle."""

    def __init__(self, plan: SmolmachinesPlan, runner: Runner, ident: str, *,
                 addresses: Addresses | None = None, prompt_path: str | None = None):
        self.plan = plan
        self.runner = runner
        self.ident = ident
        self.addresses = addresses
        self.prompt_path = prompt_path
        self.channel = SmolvmChannel(ident)
        self._closed = False

    @property
    def machine(self) -> str:
        return self.ident

    def run(self, argv: Sequence[str], **kw: Any) -> Completed:
        """``runner.run`` with a last-line check that no token value is on
        argv (smolvm exec has only ``-e K=V``, so a caller's env could leak)."""
        secrets = [v for v in self.plan.secrets.values() if v]
        if any(s in a for s in secrets for a in argv):
            raise ValueError("refusing to run a command with a token value on its argv")
        return self.runner.run(argv, **kw)

    def agent_command(self, argv: Sequence[str] = ()) -> list[str]:
        """The in-guest agent command (what follows ``runuser -u node --``)."""
        cmd = [self.plan.agent]
        if self.plan.agent == "claude" and self.prompt_path:
            cmd += ["--append-system-prompt-file", self.prompt_path]
        return cmd + [str(a) for a in argv]

    def agent_argv(self, argv: Sequence[str] = (), *, tty: bool = True) -> list[str]:
        inner = self.channel.exec_argv(self.agent_command(argv), user=NODE,
                                       env=agent_env(self.plan, self.addresses),
                                       tty=tty, workdir=GUEST_WORKDIR)
        if not tty:
            return inner
        # smolvm does not forward window size; the wrapper does. By absolute
        # path: a tmux pane runs in its own cwd (the script is stdlib-only).
        return [sys.executable, PTY_RESIZE_SCRIPT, self.machine, "--", *inner]

    def exec(self, cmd: Sequence[str], *, user: str = NODE,
             env: Mapping[str, str] | None = None, timeout: float | None = None,
             check: bool = False) -> Completed:
        """Run ``cmd`` in the guest with the agent's environment (so probes
        see the same first hop the agent does) plus ``env`` (non-secret)."""
        merged = {**agent_env(self.plan, self.addresses), **(env or {})}
        return self.run(self.channel.exec_argv(cmd, user=user, env=merged),
                        timeout=timeout, check=check)

    def close(self) -> None:
        """Remove exactly what launch names after ``ident``; idempotent, and
        safe after a failed launch (each step tolerates "not there", but only
        on proof: smolvm's "vm not found: NAME" (src/error.rs
        ``Error::VmNotFound``), docker's "No such .../... not found"). A
        step that fails any other way (engine or smolvm unreachable) is an
        error naming what may remain; the state dir is then kept and a later
        close() runs again."""
        if self._closed:
            return
        self.runner.run(machine_stop_argv(self.machine), check=False)
        left = []
        deleted = self.runner.run(machine_delete_argv(self.machine), check=False)
        if not deleted.ok and f"not found: {self.machine}" not in (
                deleted.stderr + deleted.stdout):
            left.append(f"machine {self.machine} ({_last_line(deleted)})")
        bundle = f"{self.ident}-bundle"
        result = self.runner.run([DOCKER, "rm", "-f", bundle], check=False)
        if not result.ok:
            still, why = remaining(self.runner, "container", [bundle], result)
            left += [f"container {n}" + (f" ({why})" if why else "") for n in still]
        still, why = remove_networks(self.runner, [f"{self.ident}-net"], [bundle], DOCKER)
        left += [f"network {n}" + (f" ({why})" if why else "") for n in still]
        stop_host_relay(self.plan, self.ident)
        remove_socket_dir(self.plan, self.ident)
        if left:
            raise LaunchError(f"bottle {self.ident}: cannot prove teardown removed "
                              + "; ".join(left))
        remove_state(self.plan.state_dir)
        self._closed = True

    def guest_mounts(self) -> tuple[str, ...]:
        """The mounted sockets: the only host files the guest sees."""
        return tuple(guest_socket(d) for d in socket_daemons(self.plan))

    # -- live-tier hooks ---------------------------------------------------
    def outbound_network(self) -> str:
        """``{ident}-net``: the bundle's bridge, where pipelock dials out."""
        return f"{self.ident}-net"

    def internal_endpoints(self) -> dict[str, tuple[str, ...]]:
        """The bundle's bridge addresses of the daemon that is not the first
        hop (the guest has no network, so these must fail)."""
        daemon = PIPELOCK if self.plan.routed else EGRESS
        return {daemon: container_addresses(self.runner, f"{self.ident}-bundle", PORTS[daemon])}

    def ca_certificates(self) -> list[str]:
        """The bottle's CA certificates, from its state dir (`bottle_ca_certificates`)."""
        return bottle_ca_certificates(self.plan)

    def stop_daemon(self, name: str) -> None:
        """All daemons share one bundle container whose supervisor stops the
        bundle as soon as any daemon dies (fail closed), so stopping one
        daemon means stopping the bundle container."""
        if name not in self.plan.daemons:
            raise ValueError(f"{name!r} is not a daemon of this bottle ({', '.join(self.plan.daemons)})")
        self.runner.run([DOCKER, "stop", "--time", str(STOP_TIMEOUT), f"{self.ident}-bundle"])

    def handle(self) -> dict:
        a = self.addresses
        return {
            "backend": SmolmachinesBackend.name,
            "ident": self.ident,
            "machine": self.machine,
            "socket_route": self.plan.socket_route,
            "sockets": [str(host_socket(self.plan, self.ident, d))
                        for d in socket_daemons(self.plan)],
            "proxy_url": a.proxy_url if a else None,
            "git_gate_url": a.git_gate_url if a else None,
            "supervise_url": a.supervise_url if a else None,
            "prompt_path": self.prompt_path,
        }


# -- backend ------------------------------------------------------------------


class SmolmachinesBackend(Backend):
    name: ClassVar[str] = "smolmachines"
    version: ClassVar[str] = "0.1"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"live", "tty", "git_gate", "supervise", "codex", "claude"})
    # The guest is a smolvm machine; the bundle runs on the docker engine.
    profiles: ClassVar[frozenset[str]] = frozenset({"docker-cli", "smolvm"})

    ready_timeout: float = READY_TIMEOUT
    daemon_timeout: float = DAEMON_READY_TIMEOUT

    def prepare(self, spec: BottleSpec, host: HostContext) -> SmolmachinesPlan:
        """Pure: resolves refs and addresses; never builds or packs an image
        (that is launch's job, after the operator has confirmed)."""
        route = resolve_socket_route(host.env, platform.system())
        extra: dict[str, Any] = dict(
            socket_route=route,
            socket_root=socket_root(host.env),
            # The spec's limits (issue 16); the host env knobs override them.
            # smolvm's --cpus is a whole number (u8, 1.9.3 src/cli/machine.rs
            # RunCmd.cpus): a fractional limit rounds up.
            cpus=_positive_int(host.env, CPUS_ENV, min(255, math.ceil(spec.limits.cpus))),
            mem_mib=_positive_int(host.env, MEM_ENV, spec.limits.memory_mib),
            upstream_ca_file=host.env.get(UPSTREAM_CA_ENV) or None,
            cache_dir=host.env.get(CACHE_ENV, "").strip() or None,
        )

        def build(listen: str) -> SmolmachinesPlan:
            return build_plan(spec, host, backend=self.name, plan_cls=SmolmachinesPlan,
                              pipelock_url=PIPELOCK_URL, pipelock_listen=listen, **extra)

        # pipelock binds the bundle's loopback (egress and the bundle's
        # socket relay dial it there), except where docker's port forward
        # must reach it: the host-relay route, unrouted.
        routed = first_hop_for(tuple(spec.routes) + auto_routes(spec)) == EGRESS
        published = route == ROUTE_HOST_RELAY and not routed
        plan = build(PIPELOCK_LISTEN_PUBLISHED if published else PIPELOCK_LISTEN_INTERNAL)
        if plan.routed != routed:  # planning's hop rule moved; never serve the wrong hop
            raise RuntimeError("smolmachines prepare: pipelock listen/hop mismatch")
        return plan

    def launch(self, plan: Plan, runner: Runner, *, progress: Progress = _quiet,
               journal: Callable[[Mapping], None] | None = None) -> SmolmachinesBottle:
        """``journal`` (optional, the CLI's crash-safety hook) gets the handle
        before anything is created: every object launch makes (network,
        bundle container, machine, state dir) is named from its ident, and
        close() removes each by that name, so the ident is the whole record."""
        if not isinstance(plan, SmolmachinesPlan):
            raise TypeError(f"smolmachines cannot launch a {type(plan).__name__}")
        if plan.missing_tokens:
            raise _missing_token_error(plan)
        # First, before anything exists: a smolvm without --mount-socket
        # cannot reach the bundle at all.
        progress("checking smolvm")
        problem = smolvm_version_problem(runner.run(version_argv(), check=False))
        if problem:
            raise LaunchError(problem)
        ident = runner.unique(f"bottle-{plan.bottle}")
        too_long = [str(p) for p in (host_socket(plan, ident, d) for d in socket_daemons(plan))
                    if len(str(p).encode()) > SOCKET_PATH_MAX]
        if too_long:
            raise LaunchError(f"socket path {too_long[0]} is longer than {SOCKET_PATH_MAX} bytes "
                              f"(the Unix socket limit); set {SOCKET_ROOT_ENV} to a shorter folder")
        bottle = SmolmachinesBottle(plan, runner, ident)
        if journal is not None:
            journal(bottle.handle())
        try:
            self._bring_up(bottle, progress)
        except BaseException as exc:
            try:
                bottle.close()
            except Exception as cleanup:  # never mask the launch failure
                exc.add_note(f"cleanup after failed launch also failed: {cleanup}")
            raise
        return bottle

    def _bring_up(self, bottle: SmolmachinesBottle, progress: Progress) -> None:
        plan, runner, ident = bottle.plan, bottle.runner, bottle.ident

        progress("writing bottle config and CAs")
        files = write_state(plan)
        pipelock_ca = ensure_ca(runner, files.pipelock_ca_dir, common_name="bottle-ref pipelock CA")
        egress_ca = (ensure_ca(runner, files.egress_ca_dir, common_name="bottle-ref egress CA")
                     if plan.routed else None)

        if plan.upstream_ca_file and not Path(plan.upstream_ca_file).is_file():
            raise LaunchError(f"{UPSTREAM_CA_ENV}={plan.upstream_ca_file}: no such file")
        image_ids = {}
        for role, ref in (("agent", plan.agent_image_ref), ("bundle", plan.bundle_image_ref)):
            found = runner.run([DOCKER, "image", "inspect", "--format", "{{.Id}}", ref],
                               check=False)
            if not found.ok:
                raise LaunchError(image_problem(found, ref, "in docker; build it first")
                                  .replace("image", f"{role} image", 1))
            image_ids[role] = found.stdout.strip()

        archive = artifact_path(plan, image_ids["agent"])
        if archive.is_file():
            progress(f"using cached {archive.name}")
        else:
            progress(f"saving {plan.agent_image_ref} to {archive} (first launch only)")
            archive.parent.mkdir(parents=True, exist_ok=True)
            # Save beside the cache and rename: a concurrent launch never sees
            # a half-written archive, and a failed save removes only its own.
            partial = archive.with_name(f"{archive.name}.{ident}.partial")
            try:
                runner.run(docker_save_argv(plan.agent_image_ref, partial))
                if partial.exists():  # (a recorded run writes nothing)
                    os.replace(partial, archive)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise

        progress("starting bundle")
        make_socket_dir(plan, ident)
        runner.run([DOCKER, "network", "create", "--label", f"{LABEL}={ident}", f"{ident}-net"])
        bottle.run(bundle_run_argv(plan, ident),
                   env={s: plan.secrets[s] for s in token_slots(plan)} or None)
        # The daemons start while the VM boots and is provisioned (they are
        # waited for last); the sockets, which the bundle's relay binds at
        # once, must exist before the machine (the stand-in bind-mounts them).
        if plan.socket_route == ROUTE_HOST_RELAY:
            hostports = {}
            for port in published_ports(plan):
                out = runner.run([DOCKER, "port", f"{ident}-bundle", f"{port}/tcp"]).stdout
                hostports[port] = parse_port(out, container=f"{ident}-bundle", port=port)
            progress("starting the host socket relay")
            self.start_host_relay(plan, ident, hostports)
        wait_for_sockets(runner, bottle, timeout=self.daemon_timeout)

        addresses = guest_addresses(plan)
        bottle.addresses = addresses

        progress(f"creating machine {ident}")
        bottle.run(machine_create_argv(plan, ident, archive, agent_env(plan, addresses)))
        runner.run(machine_start_argv(ident))

        progress("waiting for the machine to answer")
        # Observed readiness replaces the seeds' fixed 1.5 s sleep: the first
        # probe runs at once; a warming VM's exec failure just means "again".
        poll(runner,
             lambda: runner.run(ready_probe_argv(ident), check=False,
                                timeout=READY_PROBE_TIMEOUT, purpose=READY).ok,
             timeout=self.ready_timeout, what=f"smolvm machine {ident}")

        progress("provisioning the guest")
        ca = egress_ca if egress_ca is not None else pipelock_ca
        bottle.prompt_path = provision(plan, bottle.channel, runner, addresses,
                                       ca_pem_host_path=str(ca.cert), log=progress)

        # Provisioning only writes guest files; the relay comes last, and
        # launch returns once the guest's loopback relays answer (each
        # connect goes guest relay -> mounted socket -> bundle -> daemon).
        progress("starting the guest socket relay")
        start_guest_relay(runner, bottle.channel, plan)

        # Probed inside the bundle: a socket accepts before a daemon listens,
        # and egress answers 502 while pipelock is still starting. The
        # machine's readiness probe is marked purpose=READY, so these bundle
        # probes cannot pose as it.
        progress("waiting for bundle daemons")
        wait_for_daemons(runner, [(d, f"{ident}-bundle", PORTS[d])
                                  for d in agent_facing_daemons(plan)],
                         timeout=self.daemon_timeout)
        progress("waiting for the guest relay")
        wait_for_guest_relay(runner, bottle.channel, plan, timeout=RELAY_TIMEOUT)

    def start_host_relay(self, plan: SmolmachinesPlan, ident: str,
                         hostports: Mapping[int, int]) -> None:
        """Route host-relay: start the host relay (`start_host_relay`)."""
        start_host_relay(plan, ident, hostports)

    def attach(self, plan: Plan, runner: Runner, handle: Mapping) -> SmolmachinesBottle:
        if not isinstance(plan, SmolmachinesPlan):
            raise TypeError(f"smolmachines cannot attach a {type(plan).__name__}")
        if handle.get("backend", self.name) != self.name or not handle.get("ident"):
            raise ValueError(f"not a smolmachines bottle handle: {dict(handle)!r}")
        addresses = None
        if handle.get("socket_route", plan.socket_route) != plan.socket_route:
            plan = dataclasses.replace(plan, socket_route=handle["socket_route"])
        if handle.get("proxy_url"):
            addresses = Addresses(proxy_url=handle["proxy_url"],
                                  git_gate_url=handle.get("git_gate_url"),
                                  supervise_url=handle.get("supervise_url"))
        prompt_path = handle.get("prompt_path", plan.prompt_path if plan.prompt else None)
        return SmolmachinesBottle(plan, runner, str(handle["ident"]), addresses=addresses,
                                  prompt_path=prompt_path)

    def script(self, runner: RecordingRunner, plan: Plan) -> None:
        """``smolvm --version`` (the newest release line), ``docker port``
        answers on 127.0.0.1 (host-relay route) and the CA's ``1 added``."""
        runner.reply(SMOLVM, "--version", stdout=f"smolvm {SCRIPTED_SMOLVM}\n")
        for i, port in enumerate(published_ports(plan)):
            runner.reply(DOCKER, "port", "*-bundle", f"{port}/tcp",
                         stdout=f"127.0.0.1:{41000 + i}\n")
        runner.reply(SMOLVM, "machine", "exec", contains="update-ca-certificates",
                     stdout="Updating certificates in /etc/ssl/certs...\n"
                            "1 added, 0 removed; done.\n")

    def live_unsupported(self, runner: Runner) -> str | None:
        """Why no smolmachines guest can run on this host at all (NOT_SUPPORTED):
        smolvm's VMM, libkrun, needs KVM on Linux and Hypervisor.framework on
        macOS. A missing or broken smolvm is not this: the backend says guests
        run here, so its absence is a broken environment (`live_unavailable`,
        ERROR), exactly like a docker engine that does not answer. The CI
        stand-in (`standins`) runs machines as containers: it needs no KVM."""
        if SMOLVM in self.standins(runner):
            return None
        system = platform.system()
        if system == "Linux":
            return None if os.path.exists(KVM_DEVICE) else (
                f"no {KVM_DEVICE} on this Linux host: smolvm (libkrun) needs KVM, so no "
                "smolmachines guest can run here")
        if system == "Darwin":
            return None
        return f"smolvm (libkrun) runs guests on Linux (KVM) and macOS only, not on {system}"

    def live_unavailable(self, runner: Runner) -> str | None:
        """smolvm runs the guest and docker the bundle: both must answer
        (either missing is ERROR: the environment is broken), and smolvm must
        be >= 1.8.0 (launch refuses an older one)."""
        problem = smolvm_version_problem(runner.run(version_argv(), check=False))
        if problem:
            return problem
        for argv, what in (([DOCKER, "info", "--format", "{{.ServerVersion}}"],
                            "docker engine not reachable"),):
            result = runner.run(argv, check=False)
            if not result.ok:
                detail = (result.stderr or result.stdout).strip().splitlines()
                return f"{what}: " + (detail[-1] if detail else f"exit {result.returncode}")
        return None

    def standins(self, runner: Runner) -> dict[str, str]:
        """The bundle's pipelock stand-in (`bottle_ref.pipelock.STANDIN`), and
        ``{"smolvm": ...}`` when the ``smolvm`` on PATH is the test-only
        stand-in (it says so after its version line)."""
        from ..pipelock import STANDIN

        out = dict(STANDIN)
        result = runner.run(version_argv(), check=False)
        if result.ok and STANDIN_MARKER in result.stdout:
            lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip()]
            out[SMOLVM] = "stand-in (" + "; ".join(lines) + ")"
        return out
