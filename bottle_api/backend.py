"""The backend seam the conformance suite tests (DESIGN §3).

    BottleSpec + HostContext --prepare()--> Plan      pure: no runner, no I/O
    Plan + Runner            --launch()---> Bottle    images, bundle, guest, provisioning
    Bottle.agent_argv / exec / close                  exec framing; teardown

A third-party backend subclasses `Backend` and `Bottle`; the suite needs
nothing else from it. The live tier can do more with a few OPTIONAL hooks
(see "Live-tier hooks" on `Bottle` and `Backend.live_unsupported`); a
backend without them gets NOT_SUPPORTED, never PASSED, for the clauses that
need them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from .host import HostContext
from .plan import Plan
from .runner import Completed, RecordingRunner, Runner
from .spec import BottleSpec

Progress = Callable[[str], None]

# Host env var naming a PEM bundle the bottle's proxies (pipelock, egress)
# must trust for *upstream* TLS on top of the system store. Read by
# `prepare` from `HostContext.env` (so it stays pure). Production use: a
# corporate TLS-inspecting proxy; the live tier uses it to make the proxies
# trust its test upstream's CA. A backend implementing
# `Bottle.outbound_network` MUST honour it.
from .conventions import UPSTREAM_CA_ENV  # noqa: E402,F401

# Host env var: exact host names the bottle's pipelock may reach although they
# resolve to internal addresses (pipelock's ``trusted_domains``; its SSRF guard
# refuses them otherwise). Read by `prepare` from `HostContext.env`; unset, no
# exemption is rendered. The live tier sets it to its test upstream's names. A
# backend implementing `Bottle.outbound_network` MUST honour it.
from .conventions import PIPELOCK_TRUSTED_HOSTS_ENV  # noqa: E402,F401


def _quiet(_: str) -> None:
    pass


# Kinds of `Resource` the live tier can look for after close(): engine
# objects on the harness's fixture engine, and host paths.
RESOURCE_KINDS = ("container", "network", "volume", "directory", "file", "machine")


@dataclass(frozen=True)
class Resource:
    """One thing a launch created: ``kind`` (see `RESOURCE_KINDS`) and the
    exact ``name`` (engine object name, machine name, or absolute host path)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class GuestPrivileges:
    """What the guest's processes hold, as the backend declares it
    (`Bottle.guest_privileges`; LIVE-PRIVS checks it from inside the guest).

    ``root_caps``: the capability names (``CHOWN``, no ``CAP_`` prefix) a
    root exec holds, effective and bounding; a node exec holds none
    effective and at most these in its bounding set. ``no_new_privs``: every
    exec runs with NoNewPrivs set. ``memory_bytes``, ``pids``, ``cpus``: the
    guest cgroup's memory limit, process limit and CPU quota (in CPUs);
    None declares no limit (which LIVE-PRIVS refuses)."""

    root_caps: frozenset[str]
    no_new_privs: bool
    memory_bytes: int | None
    pids: int | None
    cpus: float | None


class Bottle(ABC):
    """A running bottle. Closing is idempotent and safe after a failed launch."""

    plan: Plan

    @abstractmethod
    def agent_argv(self, argv: Sequence[str] = (), *, tty: bool = True) -> list[str]:
        """Full host argv that runs the agent (claude or codex) with ``argv``.

        The agent runs as ``node`` with ``HOME=/home/node``. TTY framing
        appears only when ``tty`` is true.
        """

    @abstractmethod
    def exec(
        self,
        cmd: Sequence[str],
        *,
        user: str = "node",
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> Completed:
        """Run ``cmd`` in the guest as ``user`` ("node" or "root")."""

    @abstractmethod
    def close(self) -> None:
        """Remove everything launch created; never touch anything else."""

    def handle(self) -> dict:
        """JSON-able facts `Backend.attach` needs to rebuild this bottle
        (resource names, discovered addresses). Never holds a secret."""
        raise NotImplementedError

    # -- Live-tier hooks (optional) ------------------------------------------
    # The live conformance tier probes a running bottle from inside the
    # guest. These hooks let it stage what those probes need without knowing
    # the backend's topology. Each raises NotImplementedError by default,
    # which the suite reports as NOT_SUPPORTED for the clauses that need it.

    def outbound_network(self) -> str:
        """The docker network from which the bottle's last hop (pipelock)
        dials the world. The live tier attaches its test upstream there under
        a network alias, so "the internet" is a container of its own. The
        backend MUST also honour `UPSTREAM_CA_ENV` and `PIPELOCK_TRUSTED_HOSTS_ENV`."""
        raise NotImplementedError

    def internal_endpoints(self) -> Mapping[str, tuple[str, ...]]:
        """Daemon -> ``("host:port", ...)`` addresses of bundle daemons the
        agent MUST NOT reach directly: egress when it is not the first hop,
        pipelock when it sits behind egress (every address it has). The live
        tier dials each from the guest and expects failure (LIVE-BYPASS)."""
        raise NotImplementedError

    def resources(self) -> Sequence[Resource]:
        """Every resource this bottle's launch created, by exact name
        (containers, networks, machines, state dirs). LIVE-TEARDOWN checks
        that each is gone after close(), judging only these (never a diff
        of the whole engine, so other users of the engine do not matter)."""
        raise NotImplementedError

    def guest_mounts(self) -> Sequence[str]:
        """Guest paths where this bottle mounts host files or directories on
        purpose (e.g. a workspace). LIVE-CONFINE fails any other host mount
        in the guest. Default: none."""
        return ()

    def ca_certificates(self) -> Sequence[str]:
        """PEM certificates of every CA this bottle's daemons sign with (the
        proxies' TLS interception), whose private keys the guest MUST NOT
        hold: LIVE-CA-KEY looks for those keys in the guest's files. Public
        material only; never a key."""
        raise NotImplementedError

    def guest_privileges(self) -> GuestPrivileges:
        """What the guest's root and node processes hold: capabilities,
        NoNewPrivs, cgroup limits (`GuestPrivileges`). LIVE-PRIVS reads the
        guest's /proc/self/status and cgroup files and compares. Default:
        not declared (NOT_SUPPORTED)."""
        raise NotImplementedError

    def stop_daemon(self, name: str) -> None:
        """Fault injection: stop bundle daemon ``name`` (e.g. "pipelock") and
        return once it no longer serves. For LIVE-FAILCLOSED."""
        raise NotImplementedError

    def __enter__(self) -> "Bottle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(ABC):
    """A way to run bottles. Class attributes describe it to the suite."""

    name: ClassVar[str]
    version: ClassVar[str] = "0"
    # Capabilities this backend declares (see conformance.capabilities).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # Profiles of the contract this backend is in, besides core (see
    # conformance.capabilities.Profile): one per tool family it drives,
    # e.g. {"docker-cli", "container-guest"} for a docker-engine backend,
    # {"docker-cli", "smolvm"} for smolvm guests beside a docker bundle.
    # Clauses of other profiles are NOT_APPLICABLE; PROFILE-DECLARED fails a
    # backend that drives a profile's tool without declaring it.
    profiles: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def prepare(self, spec: BottleSpec, host: HostContext) -> Plan:
        """Resolve spec + host into a plan. Pure: no runner, no subprocess,
        no network, no filesystem writes; same inputs give an equal plan."""

    @abstractmethod
    def launch(self, plan: Plan, runner: Runner, *, progress: Progress = _quiet) -> Bottle:
        """Bring the bottle up. On failure, undo what was done, then raise."""

    def attach(self, plan: Plan, runner: Runner, handle: Mapping) -> Bottle:
        """Rebuild a bottle launched earlier from `Bottle.handle` (CLI exec/down)."""
        raise NotImplementedError

    def script(self, runner: RecordingRunner, plan: Plan) -> None:
        """Add the scripted replies a recorded launch of ``plan`` needs to
        succeed (e.g. ``docker port`` answers, ``1 added``). Default: none."""

    def live_unavailable(self, runner: Runner) -> str | None:
        """Why the live tier cannot run here (e.g. no engine), or None.
        The live tier reports this as ERROR: the environment is broken."""
        return None

    def live_unsupported(self, runner: Runner) -> str | None:
        """Optional live-tier hook: why this host cannot run this backend's
        guests at all (e.g. no smolvm on the host), or None. Checked before
        `live_unavailable`; reported as NOT_SUPPORTED, not ERROR."""
        return None

    def live_network_unsupported(self, runner: Runner) -> str | None:
        """Optional live-tier hook: why the guests' network cannot be probed
        on this host (e.g. a test stand-in for the VMM that does not model
        its networking), or None. The network probes report it as
        NOT_SUPPORTED; the other live clauses still run."""
        return None

    def standins(self, runner: Runner) -> Mapping[str, str]:
        """Optional live-tier hook: tools this backend drives that are
        test-only stand-ins on this host, ``{tool: description}`` (e.g.
        ``{"smolvm": "stand-in (...)"}``). Reports show them, so a run on a
        stand-in is never taken for a run on the real tool. Default: none."""
        return {}
