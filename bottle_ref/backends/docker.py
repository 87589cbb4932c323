"""The reference ``docker`` backend (BRIEF "Docker backend topology").

Three networks per bottle: ``{ident}-agent`` and ``{ident}-bundle`` are
``--internal`` (no route out); only ``{ident}-out`` reaches the world, and
only pipelock sits on it. The agent container sits on the agent network
alone, so its one way out is its first hop (egress when routed, else
pipelock), reached by network alias. Nothing is published to the host.

The host itself is out of the guest's reach too (LIVE-HOST, LIVE-ROUTES):
an ``--internal`` bridge still gives the host an address on it (the
gateway), through which a container connects to any host service bound to
0.0.0.0. So both internal networks are created with
``com.docker.network.bridge.inhibit_ipv4=true`` (no host address on the
bridge: "No route to host", checked on engine 20.10), and once the agent
container runs, a short-lived helper in its network namespace (with
NET_ADMIN, which the agent never gets) deletes the default routes docker
still installs, so the guest's routes cover only its own subnet.

The agent container is hardened (issue 16, `agent_hardening_args`):
``--cap-drop ALL`` with only `GUEST_CAPS` added back (CHOWN and FOWNER for
provisioning's chown/chmod, DAC_OVERRIDE for root execs that read node's
0600 files; no NET_RAW, so no raw frame reaches the host past the routes),
``--security-opt no-new-privileges``, the spec's memory/pids/CPU limits,
and IPv6 off in its network namespace (``--sysctl
net.ipv6.conf.{all,default}.disable_ipv6=1``: the host end of the agent
bridge keeps an IPv6 link-local address docker does not let us remove, so
the guest gets no IPv6 at all). Root execs start in ``/`` (never node's
workdir, whence ``python3 -c`` would import a module node planted).

Docker API 1.41 takes one ``--network`` at create, so each container is
``docker create``-d on one network, ``docker network connect``-ed to the
rest, then ``docker start``-ed. Every resource is named ``{ident}-<role>``
and labelled ``bottle-ref.bottle={ident}``; teardown removes exactly the
names this launch created.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .. import egress, pipelock
from ..ca import CaFiles, bottle_ca_certificates, ensure_ca
from bottle_api.host import HostContext
from bottle_api.plan import EGRESS, GIT_GATE, PIPELOCK, PORTS, SUPERVISE, Plan
from ..provision import (
    NODE,
    NODE_HOME,
    Addresses,
    GuestChannel,
    check_host_inputs,
    home_of,
    provision,
)
from bottle_api.runner import READY, Completed, RecordingRunner, Runner, poll
from bottle_api.spec import BottleSpec, SpecError
from ..state import remove_state, write_state
from ..supervise import mcp_url
from bottle_api.backend import (UPSTREAM_CA_ENV, Backend, Bottle, GuestPrivileges, Progress,
                                Resource, _quiet)

from bottle_api.conventions import (  # noqa: E402
    BUNDLE_ENTRY,
    EGRESS_UPSTREAM_CA_ENV,
    GUEST_CAPS,
    LABEL_KEY,
    PIPELOCK_UPSTREAM_CA_ENV,
    ROOT,
    ROOT_EXEC_WORKDIR,
)
READY_TIMEOUT = 30.0
Journal = Callable[[Mapping], None]  # gets the bottle's handle before each create

# Agent-facing addresses are fixed network aliases on docker.
PIPELOCK_URL = "http://pipelock:8888"
PIPELOCK_LISTEN = "0.0.0.0:8888"
EGRESS_URL = "http://egress:9099"
GIT_GATE_URL = "git://git-gate:9418"
SUPERVISE_URL = mcp_url("supervise")

# In-container paths of the bind-mounted config (bundle image interface).
PIPELOCK_MOUNTS = ("/etc/pipelock/pipelock.yaml", "/etc/pipelock/ca.pem",
                   "/etc/pipelock/ca-key.pem")
EGRESS_MOUNTS = (egress.ROUTES_PATH, egress.CA_CERT, egress.CA_KEY)
# An extra CA bundle both proxies trust for upstream TLS (UPSTREAM_CA_ENV),
# and the env vars through which the bundle's proxies read it.
UPSTREAM_CA_MOUNT = "/etc/bottle/upstream-ca.pem"
UPSTREAM_CA_VARS = {PIPELOCK: PIPELOCK_UPSTREAM_CA_ENV, EGRESS: EGRESS_UPSTREAM_CA_ENV}
STOP_TIMEOUT = 5  # seconds docker stop waits before SIGKILL (stop_daemon)

AGENT_BINARIES = {"claude": "claude", "codex": "codex"}

# Options of the two internal networks: no host address on their bridge.
INTERNAL_NET_OPTS = ("--internal", "-o", "com.docker.network.bridge.inhibit_ipv4=true")

# Run in the agent's network namespace by a helper container (bundle image,
# its python3) that alone holds NET_ADMIN: delete every IPv4 and IPv6
# default route over rtnetlink (RTM_DELROUTE, dst_len 0, main table, scope
# NOWHERE as `ip route del default` sends it) until the kernel answers
# ESRCH/ENOENT, then fail unless none is left. Stdlib only: the bundle image has no iproute2.
DROP_DEFAULT_ROUTES = r"""
import errno, os, socket, struct, sys
def drop(family):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        while True:
            rtm = struct.pack("BBBBBBBBI", family, 0, 0, 0, 254, 0, 255, 0, 0)
            s.send(struct.pack("=IHHII", 16 + len(rtm), 25, 1 | 4, 1, 0) + rtm)
            err = struct.unpack("=i", s.recv(4096)[16:20])[0]
            if err in (-errno.ESRCH, -errno.ENOENT):  # none left (v4, v6)
                return
            if err:
                raise OSError(-err, os.strerror(-err))
    finally:
        s.close()
drop(socket.AF_INET)
try:
    drop(socket.AF_INET6)
except OSError as e:
    if e.errno not in (errno.EAFNOSUPPORT, errno.EOPNOTSUPP):
        raise
left = [l for l in open("/proc/net/route").read().splitlines()[1:] if l.split()[1] == "00000000"]
try:
    left += [l for l in open("/proc/net/ipv6_route") if l.split()[1] == "00"
             and not int(l.split()[8], 16) & 0x200]
except OSError:
    pass
if left:
    sys.exit("default route(s) left: %r" % left)
"""


# The agent's namespace gets no IPv6 (issue 16): "all" for the interfaces
# already there, "default" for any added later.
NO_IPV6_SYSCTLS = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")


def agent_hardening_args(plan: Plan) -> list[str]:
    """``docker create`` flags that harden the agent container (issue 16):
    every capability dropped but `GUEST_CAPS` (what root execs need:
    provisioning's chown/chmod and reading node's 0600 files; docker exec
    -u node switches user itself, so no SETUID/SETGID), no-new-privileges
    (no setuid binary elevates node), the spec's limits (swap capped at the
    memory limit, so the limit is the limit), and no IPv6."""
    limits = plan.limits
    argv = ["--cap-drop", "ALL"]
    for cap in GUEST_CAPS:
        argv += ["--cap-add", cap]
    argv += ["--security-opt", "no-new-privileges",
             "--memory", f"{limits.memory_mib}m", "--memory-swap", f"{limits.memory_mib}m",
             "--pids-limit", str(limits.pids), "--cpus", f"{limits.cpus:g}"]
    for sysctl in NO_IPV6_SYSCTLS:
        argv += ["--sysctl", sysctl]
    return argv


class DockerError(RuntimeError):
    """The engine is missing something launch needs (e.g. an image)."""


class DaemonNotReady(RuntimeError):
    """A bundle daemon never accepted connections within its bound."""


DAEMON_READY_TIMEOUT = 30.0  # seconds a bundle daemon may take to listen
DAEMON_PROBE_TIMEOUT = 10.0  # one probe exec may hang on a busy engine


def container_addresses(runner: Runner, container: str, port: int) -> tuple[str, ...]:
    """``ip:port`` of ``container`` on every network it is attached to."""
    out = runner.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}",
                      container])
    networks = json.loads(out.stdout or "{}") or {}
    return tuple(f"{n['IPAddress']}:{port}" for n in networks.values() if n.get("IPAddress"))


def daemon_probe_argv(container: str, port: int) -> list[str]:
    """``docker exec C python3 -c ...``: does anything accept TCP on
    ``127.0.0.1:PORT`` inside ``C``? Probed in the daemon's own netns, not
    through a published port or an alias: docker's port forward accepts TCP
    before the daemon listens. Every bundle daemon binds 0.0.0.0 or
    127.0.0.1, so loopback reaches each."""
    code = f"import socket; socket.create_connection(('127.0.0.1', {int(port)}), 1).close()"
    return ["docker", "exec", container, "python3", "-c", code]


def agent_facing_daemons(plan: Plan) -> list[str]:
    """Daemons the guest's traffic meets, in dial order: the first hop,
    pipelock behind it when egress forwards there, then git-gate and
    supervise when present."""
    out = [EGRESS, PIPELOCK] if plan.routed else [PIPELOCK]
    return out + [d for d in (GIT_GATE, SUPERVISE) if d in plan.daemons]


CONTAINER_NOT_RUNNING = "is not running"  # docker exec into an exited container


def last_words(runner: Runner, container: str, daemon: str) -> str:
    """The line an exited daemon left in ``docker logs`` (its own
    ``DAEMON: ...`` line if there is one, else the last line)."""
    logs = runner.run(["docker", "logs", "--tail", "20", container], check=False,
                      timeout=DAEMON_PROBE_TIMEOUT)
    lines = [ln.strip() for ln in (logs.stdout + "\n" + logs.stderr).splitlines() if ln.strip()]
    own = [ln for ln in lines if ln.startswith(f"{daemon}: ")]
    return (own or lines or [f"no output; see `docker logs {container}`"])[-1][-400:]


def wait_for_daemons(runner: Runner, targets: Sequence[tuple[str, str, int]], *,
                     timeout: float = DAEMON_READY_TIMEOUT,
                     overlap: "Overlap | None" = None) -> None:
    """Poll each ``(daemon, container, port)`` until it accepts TCP, each
    with its own bound: one after another, or all at once through
    ``overlap`` (joined here). Observed, never a fixed sleep: a proxy still
    starting answers the guest's first request with a refusal or a 502.
    Raises `DaemonNotReady` naming the daemon; at once, with the daemon's
    own last words from ``docker logs``, when its container has exited (a
    daemon that refused to start, e.g. pipelock on a CA its LoadCA refuses,
    never comes back: no point polling out the bound)."""

    def wait(daemon: str, container: str, port: int) -> None:
        argv = daemon_probe_argv(container, port)
        exited: list[bool] = []

        def ready() -> bool:
            probe = runner.run(argv, check=False, timeout=DAEMON_PROBE_TIMEOUT)
            if not probe.ok and CONTAINER_NOT_RUNNING in probe.stderr:
                exited.append(True)
                return True
            return probe.ok

        try:
            poll(runner, ready, timeout=timeout, what=f"bundle daemon {daemon}")
        except TimeoutError:
            raise DaemonNotReady(
                f"bundle daemon {daemon} is not accepting connections on port {port} "
                f"inside {container} after {timeout:g}s; see `docker logs {container}`"
            ) from None
        if exited:
            raise DaemonNotReady(
                f"bundle daemon {daemon} exited before accepting connections on port {port} "
                f"inside {container}: {last_words(runner, container, daemon)}")

    for target in targets:
        if overlap is None:
            wait(*target)
        else:
            overlap.after(lambda target=target: wait(*target))
    if overlap is not None:
        overlap.join()


@dataclass(frozen=True, kw_only=True)
class DockerPlan(Plan):
    """Every agent-facing address is a fixed network alias, known before
    launch, so docker adds only the optional upstream CA (`UPSTREAM_CA_ENV`)."""

    upstream_ca_file: str | None = None  # host PEM both proxies trust upstream


def docker_exec_argv(
    container: str,
    cmd: Sequence[str],
    *,
    user: str = NODE,
    env: Mapping[str, str] | None = None,
    env_names: Iterable[str] = (),
    tty: bool = False,
    interactive: bool | None = None,
    workdir: str | None = None,
) -> list[str]:
    """``docker exec`` framing: ``-u USER -e HOME=<home>`` always (docker exec
    keeps the image's HOME otherwise). ``env`` values go on argv as
    ``-e K=V`` (non-secret only); ``env_names`` become bare ``-e NAME`` whose
    values the caller passes through the runner's ``env=``. A root exec
    starts in ``/`` unless told otherwise: the image's WORKDIR is node's
    workdir, and ``python3 -c`` there would import what node planted."""
    interactive = tty if interactive is None else interactive
    if user == ROOT and workdir is None:
        workdir = ROOT_EXEC_WORKDIR
    argv = ["docker", "exec"]
    if interactive:
        argv.append("-i")
    if tty:
        argv.append("-t")
    argv += ["-u", user, "-e", f"HOME={home_of(user)}"]
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    for name in env_names:
        argv += ["-e", name]
    if workdir:
        argv += ["-w", workdir]
    return argv + [container, *cmd]


@dataclass(frozen=True)
class DockerChannel(GuestChannel):
    """Exec and copy for a docker guest. docker exec can switch user itself,
    so no runuser is needed; HOME is still forced."""

    container: str

    def exec_argv(self, cmd, *, user=NODE, env=None, tty=False) -> list[str]:
        return docker_exec_argv(self.container, cmd, user=user, env=env, tty=tty)

    def copy_argv(self, host_path: str, guest_path: str) -> list[str]:
        return ["docker", "cp", str(host_path), f"{self.container}:{guest_path}"]


def docker_addresses(plan: Plan) -> Addresses:
    """The agent's view of the bundle: aliases on the agent network."""
    return Addresses(
        proxy_url=EGRESS_URL if plan.routed else PIPELOCK_URL,
        git_gate_url=GIT_GATE_URL if GIT_GATE in plan.daemons else None,
        supervise_url=SUPERVISE_URL if SUPERVISE in plan.daemons else None,
    )


def agent_env(plan: Plan) -> dict[str, str]:
    """The agent container's environment: the proxy variables (launch owns
    the hop; guest_env cannot override them), then the plan's guest_env.
    Lower-case twins too, since curl honours only ``http_proxy`` for http."""
    hop = docker_addresses(plan).proxy_url
    no_proxy = "git-gate,supervise"
    proxy = {"HTTPS_PROXY": hop, "HTTP_PROXY": hop, "NO_PROXY": no_proxy}
    proxy.update({k.lower(): v for k, v in proxy.items()})
    env = {k: v for k, v in plan.guest_env.items() if k not in proxy}
    return {**proxy, **env}


def missing_token_message(plan: Plan, key: str) -> str:
    """Why launch refuses: name the unset host env var when the key says which route."""
    match = re.fullmatch(r"egress\.routes\[(\d+)\]\.token_env", key)
    if match and int(match.group(1)) < len(plan.egress.routes):
        var = plan.egress.routes[int(match.group(1))].token_env
        return f"environment variable {var} is not set (or empty) on the host"
    if key == "forward_host_credentials":
        return f"no {plan.agent} credential file on the host to forward"
    return "token not available on the host"


def git_gate_env_args(plan: Plan) -> list[str]:
    """``-e GIT_GATE_REPOS=a,b``: the repos git-gate must serve (it creates
    each missing bare repo at start; without the list it serves nothing and
    every rewritten clone fails "repository not exported")."""
    names = [u.name for u in plan.git_gate.upstreams] if plan.git_gate else []
    return ["-e", f"GIT_GATE_REPOS={','.join(names)}"] if names else []


def _mount(source: Path | str, target: str) -> list[str]:
    return ["--mount", f"type=bind,source={source},target={target},readonly"]


# How docker says an object does not exist (20.10: ``docker inspect`` "Error:
# No such object: X", ``docker rm`` "No such container: X", ``docker network
# inspect/rm`` "network X not found"); each names the object.
_ABSENT = re.compile(r"No such [a-z ]+: ?(\S+)|\b(?:network|container) (\S+) not found")
# `docker network rm` ends its stderr with this line whenever a name failed:
# docker/cli cli/command/network/remove.go prints each error, then returns
# cli.StatusError{Status: "exit status " + strconv.Itoa(status)} (seen with
# CLI 20.10 here). The reason is the line before it.
_EXIT_STATUS = re.compile(r"exit status \d+$")


def absent_names(text: str) -> set[str]:
    """Names the engine's output says do not exist."""
    return {a or b for a, b in _ABSENT.findall(text or "")}


def image_problem(result: Completed, ref: str, hint: str) -> str:
    """Why ``docker image inspect REF`` failed: the image is missing only
    when the engine says so ("No such image"); otherwise the engine did not
    answer (unreachable, refusing) and that is what the user must hear."""
    if "no such image" in (result.stderr + result.stdout).lower():
        return f"image {ref!r} not found {hint}"
    lines = (result.stderr or result.stdout).strip().splitlines()
    return ("docker engine unreachable or failing while checking image "
            f"{ref!r}: {lines[-1].strip() if lines else f'exit {result.returncode}'}")


def remaining(runner: Runner, kind: str, names: Sequence[str], failed: Completed
              ) -> tuple[list[str], str]:
    """After a removal that failed: which of ``names`` may still exist, and
    the engine's last word on why. A name counts as gone only on proof (the
    engine says it does not exist, or a successful inspect omits it); an inspect that fails any other way
    (engine unreachable, hanging, refusing) leaves every unproven name in."""
    argv = ["docker", "network", "inspect"] if kind == "network" else ["docker", "inspect"]
    probe = runner.run([*argv, "--format", "{{.Name}}", *names], check=False)
    gone = absent_names(failed.stderr) | absent_names(probe.stderr)
    have = {n.strip().lstrip("/") for n in probe.stdout.splitlines()}
    if probe.ok:  # the engine answered for every name: what it did not list is gone
        gone |= set(names) - have
    still = [n for n in names if n in have or n not in gone]
    detail = [line for line in (failed.stderr or failed.stdout or probe.stderr).strip().splitlines()
              if not absent_names(line) and not _EXIT_STATUS.match(line.strip())]
    return still, (detail[-1].strip() if detail else "")


RETRY_PAUSE = 0.5  # seconds before a failed network removal is tried once more


def remove_networks(runner: Runner, names: Sequence[str], own: Sequence[str],
                    docker: str = "docker") -> tuple[list[str], str]:
    """``docker network rm`` of ``names``: which may remain, and the engine's
    last word on why (`remaining`). A network that stays is removed once
    more, after `RETRY_PAUSE`: under load docker 20.10 can fail a removal
    (its iptables steps race) or keep a removed container's endpoint, and
    the network then stays "in use" by nothing that exists. Before that
    retry, an endpoint named after one of ``own`` (the bottle's containers,
    just removed) is dropped with ``docker network disconnect -f``; an
    endpoint of anything else is left alone (not ours). An engine that
    does not answer the one ``network inspect`` this takes gets no retry."""
    result = runner.run([docker, "network", "rm", *names], check=False)
    if result.ok:
        return [], ""
    still, why = remaining(runner, "network", names, result)
    if not still:
        return [], ""
    listed = runner.run([docker, "network", "inspect", "--format",
                         "{{.Name}}{{range .Containers}} {{.Name}}{{end}}", *still], check=False)
    if not listed.ok:
        return still, why
    for line in listed.stdout.splitlines():  # "<network> <endpoint> <endpoint> ..."
        net, *endpoints = line.split() or [""]
        for name in dict.fromkeys(endpoints):
            if net in still and name in own:
                runner.run([docker, "network", "disconnect", "-f", net, name], check=False)
    runner.sleep(RETRY_PAUSE)
    again = runner.run([docker, "network", "rm", *still], check=False)
    return ([], "") if again.ok else remaining(runner, "network", still, again)


class DockerBottle(Bottle):
    """A docker bottle: the names it created, and how to reach the agent."""

    def __init__(self, plan: Plan, runner: Runner, ident: str, *,
                 containers: Sequence[str] = (), networks: Sequence[str] = (),
                 prompt_path: str | None = None, journal: Journal | None = None):
        self.plan = plan
        self.journal = journal
        self.runner = runner
        self.ident = ident
        self.containers: list[str] = list(containers)
        self.networks: list[str] = list(networks)
        self.prompt_path = prompt_path
        self._closed = False
        self._lock = threading.Lock()

    @property
    def agent(self) -> str:
        return f"{self.ident}-agent"

    @property
    def channel(self) -> DockerChannel:
        return DockerChannel(self.agent)

    def run(self, argv: Sequence[str], **kw) -> Completed:
        """``runner.run`` with a last-line check that no token value is on argv."""
        secrets = [v for v in self.plan.secrets.values() if v]
        if any(s in a for s in secrets for a in argv):
            raise RuntimeError("refusing to run a command with a token value on its argv")
        return self.runner.run(argv, **kw)

    def agent_argv(self, argv: Sequence[str] = (), *, tty: bool = True) -> list[str]:
        binary = AGENT_BINARIES[self.plan.agent]
        cmd = [binary]
        if binary == "claude" and self.prompt_path:
            cmd += ["--append-system-prompt-file", self.prompt_path]
        cmd += list(argv)
        return docker_exec_argv(self.agent, cmd, user=NODE, tty=tty, interactive=True,
                                workdir=NODE_HOME)

    def exec(self, cmd, *, user=NODE, env=None, timeout=None, check=False) -> Completed:
        env = dict(env or {})
        argv = docker_exec_argv(self.agent, cmd, user=user, env_names=env)
        return self.run(argv, env=env or None, timeout=timeout, check=check)

    def close(self) -> None:
        """Remove this bottle's containers, networks and state dir, by the
        names this launch created (never a prune, never a label filter).
        Missing ones are fine (a failed launch, a second close), but only on
        proof: the engine saying "No such ..."/"... not found" for that name.
        One the engine refuses to remove, or an engine that cannot answer
        (unreachable, a failed ``docker inspect``), is an error naming each
        object that may remain; the state dir is kept, so `bottle-ref down`
        can retry."""
        if self._closed:
            return
        left = []
        if self.containers:
            result = self.runner.run(["docker", "rm", "-f", *reversed(self.containers)],
                                     check=False)
            if not result.ok:
                still, why = remaining(self.runner, "container", self.containers, result)
                if still:
                    left.append(f"container(s) {', '.join(still)}" + (f" ({why})" if why else ""))
        if self.networks:
            still, why = remove_networks(self.runner, list(reversed(self.networks)),
                                         self.containers)
            if still:
                left.append(f"network(s) {', '.join(still)}" + (f" ({why})" if why else ""))
        if left:
            raise DockerError(f"bottle {self.ident}: cannot prove docker removed "
                              + "; ".join(left))
        remove_state(self.plan.state_dir)
        self._closed = True

    def resources(self) -> list[Resource]:
        """What this launch created: containers, networks, the state dir."""
        return ([Resource("container", c) for c in self.containers]
                + [Resource("network", n) for n in self.networks]
                + [Resource("directory", str(self.plan.state_dir))])

    def handle(self) -> dict:
        return {"ident": self.ident, "containers": list(self.containers),
                "networks": list(self.networks)}

    def will_create(self, kind: str, name: str) -> None:
        """Note ``name`` (a container or network) BEFORE creating it, and
        journal the handle, so a kill at any later point leaves a record
        close() can act on (removing a missing one is fine)."""
        with self._lock:  # launch may create several at once (`Overlap`)
            (self.containers if kind == "container" else self.networks).append(name)
            if self.journal is not None:
                self.journal(self.handle())

    # -- live-tier hooks ---------------------------------------------------
    def outbound_network(self) -> str:
        """``{ident}-out``: the only network with a route out; pipelock's."""
        return f"{self.ident}-out"

    def internal_endpoints(self) -> dict[str, tuple[str, ...]]:
        """Every address of the daemon that is not the agent's first hop:
        pipelock behind egress when routed, else egress."""
        daemon = PIPELOCK if self.plan.routed else EGRESS
        port = self.plan.pipelock.port if daemon == PIPELOCK else self.plan.egress.port
        return {daemon: container_addresses(self.runner, f"{self.ident}-{daemon}", port)}

    def ca_certificates(self) -> list[str]:
        """The bottle's CA certificates, from its state dir (`bottle_ca_certificates`)."""
        return bottle_ca_certificates(self.plan)

    def guest_privileges(self) -> GuestPrivileges:
        """What `agent_hardening_args` gives the agent container."""
        limits = self.plan.limits
        return GuestPrivileges(root_caps=frozenset(GUEST_CAPS), no_new_privs=True,
                               memory_bytes=limits.memory_mib << 20, pids=limits.pids,
                               cpus=float(limits.cpus))

    def stop_daemon(self, name: str) -> None:
        """``docker stop`` the daemon's container (returns once it exited)."""
        if name not in self.plan.daemons:
            raise ValueError(f"{name!r} is not a daemon of this bottle ({', '.join(self.plan.daemons)})")
        self.runner.run(["docker", "stop", "--time", str(STOP_TIMEOUT), f"{self.ident}-{name}"])


class DockerBackend(Backend):
    name: ClassVar[str] = "docker"
    version: ClassVar[str] = "1"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"live", "tty", "git_gate", "supervise", "codex", "claude"})
    profiles: ClassVar[frozenset[str]] = frozenset({"docker-cli", "container-guest"})

    # -- prepare: pure --------------------------------------------------
    def prepare(self, spec: BottleSpec, host: HostContext) -> DockerPlan:
        from ..planning import build_plan

        return build_plan(spec, host, backend=self.name, plan_cls=DockerPlan,
                          pipelock_url=PIPELOCK_URL, pipelock_listen=PIPELOCK_LISTEN,
                          upstream_ca_file=host.env.get(UPSTREAM_CA_ENV) or None)

    # -- launch -----------------------------------------------------------
    def launch(self, plan: Plan, runner: Runner, *, progress: Progress = _quiet,
               journal: Journal | None = None) -> DockerBottle:
        """``journal`` (optional, the CLI's crash-safety hook) gets the
        bottle's handle before each engine object is created."""
        if plan.missing_tokens:
            key = plan.missing_tokens[0]
            raise SpecError(missing_token_message(plan, key), file=plan.spec_source,
                            key=key, line=plan.spec_lines.get(key))
        check_host_inputs(plan)  # a missing skill dir fails before anything is created
        ident = runner.unique(f"bottle-{plan.bottle}")
        bottle = DockerBottle(plan, runner, ident, journal=journal)
        try:
            if journal is not None:
                journal(bottle.handle())  # the ident, before the state dir exists
            _bring_up(bottle, progress)
        except BaseException as exc:
            try:
                bottle.close()
            except Exception as cleanup:  # never mask the launch failure
                exc.add_note(f"cleanup after failed launch also failed: {cleanup}")
            raise
        return bottle

    def attach(self, plan: Plan, runner: Runner, handle: Mapping) -> DockerBottle:
        return DockerBottle(
            plan, runner, str(handle["ident"]),
            containers=[str(c) for c in handle.get("containers", ())],
            networks=[str(n) for n in handle.get("networks", ())],
            prompt_path=(plan.prompt_path if plan.prompt else None))

    def script(self, runner: RecordingRunner, plan: Plan) -> None:
        runner.reply("docker", "exec", "-u", "root", "-e", "HOME=/root", "-w", ROOT_EXEC_WORKDIR,
                     "*-agent",
                     "sh", "-c", "*update-ca-certificates*",
                     stdout="Updating certificates in /etc/ssl/certs...\n"
                            "1 added, 0 removed; done.\n")

    def standins(self, runner: Runner) -> dict[str, str]:
        """The reference bundle runs the pipelock stand-in (`bottle_ref.pipelock.STANDIN`)."""
        from ..pipelock import STANDIN

        return dict(STANDIN)

    def live_unavailable(self, runner: Runner) -> str | None:
        result = runner.run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False)
        if result.ok:
            return None
        detail = (result.stderr or result.stdout).strip().splitlines()
        return "docker engine not reachable: " + (detail[-1] if detail else
                                                  f"exit {result.returncode}")


class Overlap:
    """Steps of a launch that depend on nothing the others do, overlapped
    when the runner allows it (`Runner.concurrent`: a real engine) and run
    at once, in the order given, otherwise (a recording runner: the argv
    snapshots stay the serial order). ``after(step)`` starts a step;
    ``join()`` waits for every one started and raises the first failure.
    Used as a context manager, it always waits for every step before it
    returns or raises: nothing a launch started is still running when its
    failure triggers ``close()``."""

    def __init__(self, runner: Runner, workers: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="bottle-launch") \
            if runner.concurrent else None
        self._futures: list[Future] = []

    def after(self, step: Callable[[], object]) -> None:
        if self._pool is None:
            step()
        else:
            self._futures.append(self._pool.submit(step))

    def join(self) -> None:
        futures, self._futures = self._futures, []
        errors = [f.exception() for f in futures]  # waits for each
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def __enter__(self) -> "Overlap":
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.join()
            else:
                for f in self._futures:  # the launch failed already: just wait
                    f.exception()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


def _bring_up(bottle: DockerBottle, progress: Progress) -> None:
    with Overlap(bottle.runner) as overlap:
        _bring_up_steps(bottle, progress, overlap)


def _bring_up_steps(bottle: DockerBottle, progress: Progress, overlap: Overlap) -> None:
    plan, runner, ident = bottle.plan, bottle.runner, bottle.ident
    label = f"{LABEL_KEY}={ident}"

    progress("writing bottle config")
    files = write_state(plan)
    progress("generating CAs")  # both keys at once, beside the image checks and networks
    cas: dict[str, CaFiles] = {}
    overlap.after(lambda: cas.setdefault(PIPELOCK, ensure_ca(
        runner, files.pipelock_ca_dir, common_name="bottle-ref pipelock CA")))
    if plan.routed:
        overlap.after(lambda: cas.setdefault(EGRESS, ensure_ca(
            runner, files.egress_ca_dir, common_name="bottle-ref egress CA")))

    upstream_ca = getattr(plan, "upstream_ca_file", None)
    if upstream_ca and not Path(upstream_ca).is_file():
        raise DockerError(f"{UPSTREAM_CA_ENV}={upstream_ca}: no such file")

    def upstream_trust(daemon: str) -> list[str]:
        if not upstream_ca:
            return []
        return [*_mount(upstream_ca, UPSTREAM_CA_MOUNT),
                "-e", f"{UPSTREAM_CA_VARS[daemon]}={UPSTREAM_CA_MOUNT}"]

    progress("checking images")
    for ref in dict.fromkeys((plan.agent_image_ref, plan.bundle_image_ref)):
        found = runner.run(["docker", "image", "inspect", ref], check=False)
        if not found.ok:
            raise DockerError(image_problem(found, ref, "in the docker engine; build or load "
                                                        "it first"))

    progress("creating networks")
    net = {role: f"{ident}-{role}" for role in ("agent", "bundle", "out")}
    for role, internal in (("agent", True), ("bundle", True), ("out", False)):
        bottle.will_create("network", net[role])
        overlap.after(lambda role=role, internal=internal: runner.run(
            ["docker", "network", "create", *(INTERNAL_NET_OPTS if internal else ()),
             "--label", label, net[role]]))
    overlap.join()  # the containers mount the CAs and sit on the networks
    pipelock_ca, egress_ca = cas[PIPELOCK], cas.get(EGRESS)

    def container(role: str, network: str, alias: str | None, args: Sequence[str],
                  image: str, cmd: Sequence[str], *, connect: Sequence[str] = (),
                  env: Mapping[str, str] | None = None, background: bool = False) -> str:
        """Create, connect, start. With ``background`` the three run as one
        `Overlap` step (a bundle daemon: nothing else in the launch needs it
        before `wait_for_daemons`, which comes after ``join``)."""
        name = f"{ident}-{role}"
        if background:
            overlap.after(lambda: container(role, network, alias, args, image, cmd,
                                            connect=connect, env=env))
            return name
        progress(f"starting {role}")
        argv = ["docker", "create", "--name", name, "--label", label, "--network", network]
        if alias:
            argv += ["--network-alias", alias]
        bottle.will_create("container", name)
        bottle.run([*argv, *args, image, *cmd], env=env or None)
        for extra in connect:
            runner.run(["docker", "network", "connect", *(["--alias", alias] if alias else []),
                        extra, name])
        runner.run(["docker", "start", name])
        return name

    bundle = plan.bundle_image_ref
    container(
        PIPELOCK, net["bundle"], PIPELOCK,
        [*_mount(files.pipelock_yaml, PIPELOCK_MOUNTS[0]),
         *_mount(pipelock_ca.cert, PIPELOCK_MOUNTS[1]),
         *_mount(pipelock_ca.key, PIPELOCK_MOUNTS[2]),
         *upstream_trust(PIPELOCK)],
        bundle, [BUNDLE_ENTRY, PIPELOCK],
        connect=[net["out"]] + ([] if plan.routed else [net["agent"]]), background=True)

    slots = [s for s in plan.egress.token_slots if s in plan.secrets]
    egress_args = ["-e", f"EGRESS_UPSTREAM_PROXY={plan.egress.upstream_proxy}"]
    for slot in slots:
        egress_args += ["-e", slot]
    egress_args += _mount(files.egress_routes_yaml, EGRESS_MOUNTS[0])
    if egress_ca is not None:
        # pipelock decrypts every non-passthrough host with its CA, so egress
        # (which re-encrypts upstream) must trust pipelock's CA certificate
        # (never its key), or HTTPS to an allowed, unrouted host fails.
        egress_args += [*_mount(egress_ca.cert, EGRESS_MOUNTS[1]),
                        *_mount(egress_ca.key, EGRESS_MOUNTS[2]),
                        *_mount(pipelock_ca.cert, pipelock.CA_CERT)]
    egress_args += upstream_trust(EGRESS)
    container(EGRESS, net["bundle"], EGRESS, egress_args, bundle, [BUNDLE_ENTRY, EGRESS],
              connect=[net["agent"]] if plan.routed else [],
              env={s: plan.secrets[s] for s in slots}, background=True)

    if GIT_GATE in plan.daemons:
        container(GIT_GATE, net["agent"], GIT_GATE, git_gate_env_args(plan), bundle,
                  [BUNDLE_ENTRY, GIT_GATE], background=True)
    if SUPERVISE in plan.daemons:
        container(SUPERVISE, net["agent"], SUPERVISE, [], bundle, [BUNDLE_ENTRY, SUPERVISE],
                  background=True)

    env_args: list[str] = []
    for key, value in agent_env(plan).items():
        env_args += ["-e", f"{key}={value}"]
    agent = container("agent", net["agent"], None,
                      [*env_args, *agent_hardening_args(plan), "--entrypoint", "sleep"],
                      plan.agent_image_ref, ["infinity"])

    progress("waiting for the agent container")
    poll(runner, lambda: runner.run(["docker", "exec", agent, "true"], check=False,
                                    purpose=READY).ok,
         timeout=READY_TIMEOUT, what=f"agent container {agent}")

    progress("dropping the agent's default routes")
    routes = f"{ident}-routes"  # exits at once; close() removes it with the rest
    bottle.will_create("container", routes)
    # Beside provisioning (a helper container of its own; provisioning only
    # writes guest files): joined below, before launch returns.
    overlap.after(lambda: runner.run(
        ["docker", "run", "--name", routes, "--label", label,
         "--network", f"container:{agent}", "--cap-add", "NET_ADMIN",
         "--entrypoint", "python3", bundle, "-c", DROP_DEFAULT_ROUTES]))

    progress("provisioning the agent")
    ca = egress_ca if egress_ca is not None else pipelock_ca
    bottle.prompt_path = provision(plan, bottle.channel, runner, docker_addresses(plan),
                                   ca_pem_host_path=str(ca.cert), log=progress,
                                   background=overlap.after)

    # Last, before launch returns: provisioning only writes guest files, so
    # the guest's first request through a daemon comes after this. (The
    # agent's readiness probe above is marked purpose=READY, so these
    # `docker exec` probes of bundle containers cannot pose as it.) The
    # daemons' containers were started alongside the agent's provisioning.
    overlap.join()
    progress("waiting for bundle daemons")
    wait_for_daemons(runner, [(d, f"{ident}-{d}", PORTS[d]) for d in agent_facing_daemons(plan)],
                     overlap=overlap)
