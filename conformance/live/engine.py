"""The container CLI the live harness uses for its OWN fixtures.

The live tier stages its test upstream, sentinels and leftover checks with
a docker-compatible CLI: ``docker`` by default, or whatever
``--bottle-fixture-engine`` / ``BOTTLE_FIXTURE_ENGINE`` names (``podman``,
``nerdctl``, a path, or a command with arguments such as
``docker --context other``). ``DOCKER_HOST`` (``CONTAINER_HOST`` for
podman) reaches the CLI through the inherited environment. The backend
under test may drive any engine it likes; only the fixtures need this one,
and only for the clauses CONTRACT.md lists as needing it. Every call goes
through a `Runner` and has a bounded timeout.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bottle_api.runner import Completed, Runner, poll

DOCKER_TIMEOUT = 60.0
FIXTURE_ENGINE_ENV = "BOTTLE_FIXTURE_ENGINE"
DEFAULT_FIXTURE_ENGINE = "docker"


class FixtureEngineError(ValueError):
    """A fixture-engine setting that is not a command."""


def fixture_engine_cli(value: str | None = None,
                       env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The argv prefix of the fixture engine: ``value`` (the resolved
    setting), else ``$BOTTLE_FIXTURE_ENGINE``, else ``docker``; shell-split,
    so ``"podman --remote"`` is two tokens."""
    env = os.environ if env is None else env
    text = value if value is not None else (env.get(FIXTURE_ENGINE_ENV) or DEFAULT_FIXTURE_ENGINE)
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise FixtureEngineError(f"fixture engine {text!r}: {exc}") from None
    if not argv or not argv[0].strip():
        raise FixtureEngineError(f"fixture engine {text!r}: expected a command such as "
                                 "docker or podman")
    return argv

# Engine errors that are the environment's state, not a backend's doing:
# the address pools are exhausted (often by leaked networks of other runs),
# the daemon is gone, the disk is full. A live test that meets one ends as
# ERROR (with the engine's line), never FAILED.
ENVIRONMENT_ERRORS = re.compile(
    r"could not find an available, non-overlapping IPv\d address pool"
    r"|Cannot connect to the Docker daemon"
    r"|Is the docker daemon running\?"
    r"|no space left on device"
    r"|error during connect:", re.I)


def environment_error(text: str) -> str | None:
    """The line of ``text`` that says the engine (not the backend) failed, or None."""
    for line in str(text).splitlines():
        if ENVIRONMENT_ERRORS.search(line):
            return line.strip()[-400:]
    return None


@dataclass(frozen=True)
class EngineObject:
    """One container or network as ``docker ps -a`` / ``network ls`` list it."""

    kind: str  # "container" | "network"
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)

    def mentions(self, needle: str) -> bool:
        """Whether ``needle`` is in the name or in any label key or value."""
        return (needle in self.name
                or any(needle in k or needle in v for k, v in self.labels.items()))

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.id[:12]})"


@dataclass(frozen=True)
class EngineSnapshot:
    """Every container and network the engine has, at one moment."""

    objects: frozenset[EngineObject]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(o.id for o in self.objects)

    def mentioning(self, needle: str) -> list[EngineObject]:
        return sorted((o for o in self.objects if o.mentions(needle)), key=lambda o: o.name)

    def missing(self, ids: Iterable[str]) -> list[str]:
        have = self.ids
        return [i for i in ids if i not in have]


def _labels(text: str) -> dict[str, str]:
    """Labels as ``{{json .Labels}}`` prints them: docker's ``ps`` gives one
    string ``"k=v,k2=v2"``, podman (and docker's inspect-style fields) an
    object; a bare ``k=v,...`` string (no JSON) is read too."""
    text = (text or "").strip()
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        data = text
    if isinstance(data, Mapping):
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for part in (data or "").split(",") if isinstance(data, str) else ():
        if part:
            key, _, value = part.partition("=")
            out[key] = value
    return out


class Engine:
    """Small, bounded wrappers around a docker-compatible CLI (``cli``)."""

    def __init__(self, runner: Runner, cli: Sequence[str] = (DEFAULT_FIXTURE_ENGINE,)):
        self.runner = runner
        self.cli = tuple(cli) or (DEFAULT_FIXTURE_ENGINE,)

    @property
    def label(self) -> str:
        """How messages name this engine (``docker``, ``podman``...)."""
        return " ".join(self.cli)

    def run(self, *argv: str, check: bool = True, timeout: float = DOCKER_TIMEOUT,
            input: str | None = None) -> Completed:
        return self.runner.run([*self.cli, *argv], check=check, timeout=timeout, input=input)

    def answers(self) -> str | None:
        """None when the engine answers, else why not. (``info`` with no
        format: docker's ``.ServerVersion`` does not exist in podman.)"""
        r = self.run("info", check=False, timeout=20)
        if r.ok:
            return None
        tail = (r.stderr or r.stdout).strip().splitlines()
        return (f"fixture engine `{self.label}` not reachable: "
                + (tail[-1] if tail else f"exit {r.returncode}"))

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", "--format", "{{.Id}}", ref, check=False).ok

    def snapshot(self) -> EngineSnapshot:
        """All containers (running or not) and networks, with labels."""
        objs = set()
        fmt = "{{.ID}}\t{{.Names}}\t{{json .Labels}}"
        for line in self.run("ps", "-a", "--no-trunc", "--format", fmt).stdout.splitlines():
            cid, name, labels = (line.split("\t") + ["", ""])[:3]
            if cid:
                objs.add(EngineObject("container", cid, name, _labels(labels)))
        fmt = "{{.ID}}\t{{.Name}}\t{{json .Labels}}"
        for line in self.run("network", "ls", "--no-trunc", "--format", fmt).stdout.splitlines():
            nid, name, labels = (line.split("\t") + ["", ""])[:3]
            if nid:
                objs.add(EngineObject("network", nid, name, _labels(labels)))
        return EngineSnapshot(frozenset(objs))

    def container_ips(self, name: str) -> dict[str, str]:
        """network name -> IPv4 address of container ``name``."""
        out = self.run("inspect", "--format", "{{json .NetworkSettings.Networks}}", name).stdout
        nets = json.loads(out or "{}") or {}
        return {net: info["IPAddress"] for net, info in nets.items() if info.get("IPAddress")}

    def logs(self, name: str) -> str:
        r = self.run("logs", name, check=False)
        return r.stdout + r.stderr

    def wait_for_log(self, name: str, mark: str, *, what: str, timeout: float) -> None:
        """Poll (bounded, no fixed sleep) until container ``name`` logs
        ``mark``; a container that exits first is an error quoting its log."""

        def ready() -> bool:
            logs = self.logs(name)
            if mark in logs:
                return True
            state = self.run("inspect", "--format", "{{.State.Running}}", name, check=False)
            if state.stdout.strip() == "false":
                raise RuntimeError(f"{what} exited before serving:\n{logs[-2000:]}")
            return False

        poll(self.runner, ready, timeout=timeout, what=what)

    def exists(self, kind: str, ident: str) -> bool:
        argv = {"container": ("container", "inspect"), "volume": ("volume", "inspect")}.get(
            kind, ("network", "inspect"))
        return self.run(*argv, "--format", "{{.Id}}", ident, check=False).ok
