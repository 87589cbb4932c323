"""The reference ``smolmachines`` backend: the agent in a smolvm microVM.

Topology (BRIEF "smolmachines topology"): one bundle container runs every
daemon on the bridge ``{ident}-net``; only the agent-facing ports are
published, on a dedicated host loopback address (``publish_host``):
egress 9099 iff routed else pipelock 8888, git-gate 9418 iff upstreams,
supervise 9100 iff enabled. The guest reaches them through TSI (its sockets
open on the host), allowed only to ``<publish_host>/32``.

WHY loopback, not the bundle's bridge IP: on Docker Desktop the bridge lives
in the daemon's VM and is unreachable from the host, but loopback is what
Docker Desktop forwards. WHY a per-bottle loopback address: ``--allow-cidr``
has no port filter, so a /32 on 127.0.0.1 would let the guest dial every
loopback service on the host; 127.77.x.y carries only this bottle's ports.

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
import ipaddress
import math
import os
import platform
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .. import egress, pipelock, pty_resize, tar_pipe
from ..ca import CaFiles, bottle_ca_certificates, ensure_ca
from bottle_api.host import HostContext
from bottle_api.plan import EGRESS, GIT_GATE, PIPELOCK, PORTS, SUPERVISE, Plan
from ..planning import auto_routes, build_plan, first_hop_for
from ..provision import NODE, NODE_HOME, ROOT, Addresses, GuestChannel, provision
from bottle_api.runner import READY, Completed, RecordingRunner, Runner, poll
from bottle_api.spec import BottleSpec, SpecError
from ..state import remove_state, state_files, write_state
from ..supervise import MCP_PATH
from bottle_api.backend import UPSTREAM_CA_ENV, Backend, Bottle, Progress, _quiet
from .docker import (
    DAEMON_READY_TIMEOUT,
    agent_facing_daemons,
    container_addresses,
    image_problem,
    remaining,
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

# The oldest smolvm whose `machine create` keeps --allow-cidr on every path
# (f8a6fa62, v1.8.0) and that has every flag used here (-n/--name on
# create/delete: v1.0.2; -I <archive>: v1.1.0).
MIN_SMOLVM = (1, 8, 0)
MIN_SMOLVM_TEXT = "1.8.0"
SCRIPTED_SMOLVM = "1.9.3"  # what a recorded launch's `smolvm --version` answers
# clap's `#[command(version)]` on `smolvm` prints "smolvm X.Y.Z" (1.9.3 src/main.rs).
_VERSION_RE = re.compile(r"\bsmolvm\s+v?(\d+)\.(\d+)\.(\d+)")
# What the test-only stand-in prints after its version line (tests/standins/smolvm).
STANDIN_MARKER = "bottle-conformance stand-in"

PUBLISH_HOST_ENV = "BOTTLE_SMOL_PUBLISH_HOST"
CPUS_ENV = "BOTTLE_SMOL_CPUS"
# Where the agent image's `docker save` archive is cached (default: beside
# the state root); a cache dir that outlives the run saves one `docker save`.
CACHE_ENV = "BOTTLE_SMOL_CACHE"
MEM_ENV = "BOTTLE_SMOL_MEM_MIB"
DEFAULT_CPUS = 2
DEFAULT_MEM_MIB = 2048

# pipelock is reached by egress on the bundle's own loopback (same netns).
PIPELOCK_URL = "http://127.0.0.1:8888"
PIPELOCK_LISTEN_INTERNAL = "127.0.0.1:8888"  # routed: only egress may dial it
PIPELOCK_LISTEN_PUBLISHED = "0.0.0.0:8888"  # unrouted: docker's port forward dials it

# An extra CA bundle both proxies trust for upstream TLS (UPSTREAM_CA_ENV).
UPSTREAM_CA_MOUNT = "/etc/bottle/upstream-ca.pem"
UPSTREAM_CA_VARS = (PIPELOCK_UPSTREAM_CA_ENV, EGRESS_UPSTREAM_CA_ENV)
STOP_TIMEOUT = 5  # seconds docker stop waits before SIGKILL (stop_daemon)

READY_TIMEOUT = 60.0  # seconds to wait for the first successful exec
READY_PROBE_TIMEOUT = 10.0  # one probe exec may hang on a warming VM
GUEST_WORKDIR = NODE_HOME


def _last_line(result: Completed) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1].strip() if lines else f"exit {result.returncode}"


class LaunchError(RuntimeError):
    """Launch could not proceed; the message says what to do about it."""


# -- plan ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SmolmachinesPlan(Plan):
    """`Plan` plus where the bundle's ports are published and the VM's size."""

    publish_host: str  # dedicated host loopback address for this bottle
    allow_cidr: str  # the guest's only TSI destination: <publish_host>/32
    cpus: int = DEFAULT_CPUS
    mem_mib: int = DEFAULT_MEM_MIB
    upstream_ca_file: str | None = None  # host PEM both proxies trust upstream
    cache_dir: str | None = None  # where the agent image archive is cached


def default_publish_host(bottle: str) -> str:
    """127.77.X.Y with X, Y in 1..254 from a stable hash of the bottle name."""
    digest = hashlib.sha256(bottle.encode("utf-8")).digest()
    return f"127.77.{digest[0] % 254 + 1}.{digest[1] % 254 + 1}"


def resolve_publish_host(bottle: str, env: Mapping[str, str]) -> str:
    """The env override (e.g. 127.0.0.1 on macOS, where only that loopback
    address exists by default) or the derived address. Must be IPv4 loopback:
    the bundle's ports may never be published anywhere else."""
    raw = env.get(PUBLISH_HOST_ENV, "").strip()
    if not raw:
        return default_publish_host(bottle)
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        raise ValueError(f"{PUBLISH_HOST_ENV}={raw!r} is not an IP address") from None
    if addr.version != 4 or not addr.is_loopback:
        raise ValueError(
            f"{PUBLISH_HOST_ENV}={raw!r} must be an IPv4 loopback address (127.x.y.z): "
            "bundle ports are published on host loopback only"
        )
    return str(addr)


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
        return (f"smolvm {have} is too old: before {MIN_SMOLVM_TEXT}, `machine create --from` "
                "drops --allow-cidr, so the guest gets unrestricted outbound network "
                f"(fixed in smolvm {MIN_SMOLVM_TEXT}, f8a6fa62); upgrade to smolvm >= "
                f"{MIN_SMOLVM_TEXT}")
    return None


def loopback_alias_problem(publish_host: str, uname: str, ifconfig: str) -> str | None:
    """On macOS only 127.0.0.1 is configured on lo0 by default (Linux routes
    all of 127/8 to lo): a dedicated 127.77.x.y must be added by hand. One
    line saying so, the command that adds it, and what the fallback costs."""
    if uname.strip() != "Darwin" or publish_host == "127.0.0.1":
        return None
    if re.search(rf"\binet {re.escape(publish_host)}\b", ifconfig):
        return None
    return (f"the bottle's loopback address {publish_host} is not configured on lo0 "
            f"(macOS has only 127.0.0.1 by default): add it with "
            f"`sudo ifconfig lo0 alias {publish_host} up`, or set "
            f"{PUBLISH_HOST_ENV}=127.0.0.1 to publish on 127.0.0.1 instead, which lets the "
            "guest reach every service listening on the host's 127.0.0.1 "
            "(--allow-cidr has no port filter)")


def published_ports(plan: Plan) -> tuple[int, ...]:
    """Agent-facing container ports, in publish order. Egress iff routed,
    else pipelock (never both: the agent has exactly one first hop)."""
    ports = [PORTS[EGRESS] if plan.routed else PORTS[PIPELOCK]]
    if GIT_GATE in plan.daemons:
        ports.append(PORTS[GIT_GATE])
    if SUPERVISE in plan.daemons:
        ports.append(PORTS[SUPERVISE])
    return tuple(ports)


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
    registry). ``-w`` is honoured on this path (it is ignored only with
    ``--from``, 0.8.2 machine.rs ~1545). No ``--``: the image's CMD is the
    workload."""
    return [
        SMOLVM, "machine", "create", "--name", machine,
        "-I", str(archive),
        "--cpus", str(plan.cpus),
        "--mem", str(plan.mem_mib),
        "--net",
        "--allow-cidr", plan.allow_cidr,
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
    """One container, every daemon; only agent-facing ports published, and
    only on ``publish_host``. Token slots are bare ``-e NAME``: their values
    come from the runner's ``env=``, never argv."""
    argv = [DOCKER, "run", "-d", "--name", f"{ident}-bundle",
            "--network", f"{ident}-net", "--label", f"{LABEL}={ident}"]
    for port in published_ports(plan):
        argv += ["-p", f"{plan.publish_host}::{port}"]
    for source, target in bundle_mounts(plan):
        argv += _mount(source, target)
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
    variables (launch owns the hop; its port is known only after `docker
    port`). Lower-case twins too, since curl honours only ``http_proxy`` for
    plain http. git-gate and supervise share ``publish_host`` and are
    dialled directly, hence NO_PROXY."""
    env = dict(plan.guest_env)
    if addresses is None:
        return env
    for key, value in (("HTTPS_PROXY", addresses.proxy_url),
                       ("HTTP_PROXY", addresses.proxy_url),
                       ("NO_PROXY", plan.publish_host)):
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
        for kind, name, argv in (
                ("container", f"{self.ident}-bundle", [DOCKER, "rm", "-f"]),
                ("network", f"{self.ident}-net", [DOCKER, "network", "rm"])):
            result = self.runner.run([*argv, name], check=False)
            if not result.ok:
                still, why = remaining(self.runner, kind, [name], result)
                left += [f"{kind} {n}" + (f" ({why})" if why else "") for n in still]
        if left:
            raise LaunchError(f"bottle {self.ident}: cannot prove teardown removed "
                              + "; ".join(left))
        remove_state(self.plan.state_dir)
        self._closed = True

    # -- live-tier hooks ---------------------------------------------------
    def outbound_network(self) -> str:
        """``{ident}-net``: the bundle's bridge, where pipelock dials out."""
        return f"{self.ident}-net"

    def internal_endpoints(self) -> dict[str, tuple[str, ...]]:
        """The bundle's bridge addresses of the daemon that is not the first
        hop (the guest may reach only ``publish_host``, so these must fail)."""
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
            "publish_host": self.plan.publish_host,
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
        publish_host = resolve_publish_host(spec.name, host.env)
        extra: dict[str, Any] = dict(
            publish_host=publish_host,
            allow_cidr=f"{publish_host}/32",
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

        # Routed: only egress (same netns) dials pipelock, so it binds the
        # bundle's loopback. Unrouted: docker's port forward must reach it.
        routed = first_hop_for(tuple(spec.routes) + auto_routes(spec)) == EGRESS
        plan = build(PIPELOCK_LISTEN_INTERNAL if routed else PIPELOCK_LISTEN_PUBLISHED)
        if plan.routed != routed:  # planning's hop rule moved; never publish the wrong hop
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
        # First, before anything exists: an old smolvm would run the guest
        # with open egress, a macOS host without the alias cannot publish.
        progress("checking smolvm")
        problem = smolvm_version_problem(runner.run(version_argv(), check=False))
        if problem:
            raise LaunchError(problem)
        uname = runner.run(["uname", "-s"], check=False).stdout
        if uname.strip() == "Darwin" and plan.publish_host != "127.0.0.1":
            lo0 = runner.run(["ifconfig", "lo0"], check=False).stdout
            problem = loopback_alias_problem(plan.publish_host, uname, lo0)
            if problem:
                raise LaunchError(problem)
        ident = runner.unique(f"bottle-{plan.bottle}")
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
        runner.run([DOCKER, "network", "create", "--label", f"{LABEL}={ident}", f"{ident}-net"])
        bottle.run(bundle_run_argv(plan, ident),
                   env={s: plan.secrets[s] for s in token_slots(plan)} or None)
        hostports = {}
        for port in published_ports(plan):
            out = runner.run([DOCKER, "port", f"{ident}-bundle", f"{port}/tcp"]).stdout
            hostports[port] = parse_port(out, container=f"{ident}-bundle", port=port)

        h = plan.publish_host
        first = PORTS[EGRESS] if plan.routed else PORTS[PIPELOCK]
        addresses = Addresses(
            proxy_url=f"http://{h}:{hostports[first]}",
            git_gate_url=(f"git://{h}:{hostports[PORTS[GIT_GATE]]}"
                          if PORTS[GIT_GATE] in hostports else None),
            supervise_url=(f"http://{h}:{hostports[PORTS[SUPERVISE]]}{MCP_PATH}"
                           if PORTS[SUPERVISE] in hostports else None),
        )
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

        # Probed inside the bundle: docker's port forward accepts TCP before
        # a daemon listens, and egress answers 502 while pipelock is still
        # starting. Last, before launch returns (provisioning only writes
        # guest files, so the guest's first request comes after this). The
        # machine's readiness probe is marked purpose=READY, so these bundle
        # probes cannot pose as it. The daemons start while the VM boots.
        progress("waiting for bundle daemons")
        wait_for_daemons(runner, [(d, f"{ident}-bundle", PORTS[d])
                                  for d in agent_facing_daemons(plan)],
                         timeout=self.daemon_timeout)

    def attach(self, plan: Plan, runner: Runner, handle: Mapping) -> SmolmachinesBottle:
        if not isinstance(plan, SmolmachinesPlan):
            raise TypeError(f"smolmachines cannot attach a {type(plan).__name__}")
        if handle.get("backend", self.name) != self.name or not handle.get("ident"):
            raise ValueError(f"not a smolmachines bottle handle: {dict(handle)!r}")
        addresses = None
        if handle.get("proxy_url"):
            addresses = Addresses(proxy_url=handle["proxy_url"],
                                  git_gate_url=handle.get("git_gate_url"),
                                  supervise_url=handle.get("supervise_url"))
        prompt_path = handle.get("prompt_path", plan.prompt_path if plan.prompt else None)
        return SmolmachinesBottle(plan, runner, str(handle["ident"]), addresses=addresses,
                                  prompt_path=prompt_path)

    def script(self, runner: RecordingRunner, plan: Plan) -> None:
        """``smolvm --version`` (the newest release line), ``docker port``
        answers on ``publish_host`` and the CA's ``1 added``."""
        runner.reply(SMOLVM, "--version", stdout=f"smolvm {SCRIPTED_SMOLVM}\n")
        host = getattr(plan, "publish_host", "127.0.0.1")
        for i, port in enumerate(published_ports(plan)):
            runner.reply(DOCKER, "port", "*-bundle", f"{port}/tcp",
                         stdout=f"{host}:{41000 + i}\n")
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

    def live_network_unsupported(self, runner: Runner) -> str | None:
        """On the stand-in, machines are containers with no network: TSI
        (``--net``/``--allow-cidr``) is not modelled, so a network probe there
        would say nothing about smolvm's confinement."""
        if SMOLVM in self.standins(runner):
            return ("smolvm here is the test-only stand-in, which does not model TSI "
                    "networking (--net, --allow-cidr): its machines have no network, so "
                    "the guest's network confinement can only be probed on real smolvm")
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
