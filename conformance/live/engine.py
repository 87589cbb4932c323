"""The docker CLI, as the live harness uses it for its own fixtures.

The live tier stages its test upstream, sentinels and leftover checks with
plain ``docker`` commands (every reference backend, and any backend that
implements `Bottle.outbound_network`, runs its bundle on a docker engine).
Every call goes through a `Runner` and has a bounded timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bottle_api.runner import Completed, Runner

DOCKER_TIMEOUT = 60.0


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
    out = {}
    for part in (text or "").split(","):
        if part:
            key, _, value = part.partition("=")
            out[key] = value
    return out


class Engine:
    """Small, bounded wrappers around the docker CLI."""

    def __init__(self, runner: Runner):
        self.runner = runner

    def run(self, *argv: str, check: bool = True, timeout: float = DOCKER_TIMEOUT,
            input: str | None = None) -> Completed:
        return self.runner.run(["docker", *argv], check=check, timeout=timeout, input=input)

    def answers(self) -> str | None:
        """None when the engine answers, else why not."""
        r = self.run("info", "--format", "{{.ServerVersion}}", check=False, timeout=20)
        if r.ok:
            return None
        tail = (r.stderr or r.stdout).strip().splitlines()
        return "docker engine not reachable: " + (tail[-1] if tail else f"exit {r.returncode}")

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", "--format", "{{.Id}}", ref, check=False).ok

    def snapshot(self) -> EngineSnapshot:
        """All containers (running or not) and networks, with labels."""
        objs = set()
        fmt = "{{.ID}}\t{{.Names}}\t{{.Labels}}"
        for line in self.run("ps", "-a", "--no-trunc", "--format", fmt).stdout.splitlines():
            cid, name, labels = (line.split("\t") + ["", ""])[:3]
            if cid:
                objs.add(EngineObject("container", cid, name, _labels(labels)))
        fmt = "{{.ID}}\t{{.Name}}\t{{.Labels}}"
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

    def exists(self, kind: str, ident: str) -> bool:
        argv = ("container", "inspect") if kind == "container" else ("network", "inspect")
        return self.run(*argv, "--format", "{{.Id}}", ident, check=False).ok
