"""What a teardown ran, judged by name (TEARDOWN-OWN, TEARDOWN-IDEMPOTENT,
LIVE-TEARDOWN).

One oracle for the static tiers (a recorded launch + close) and the live
tier (the harness traces the runner it hands the backend): ``close()`` may
remove only what the launch created, each by its exact name. It must never
prune, never select what to remove by a label KEY alone (``--filter
label=bottle-ref.bottle`` matches every bottle on the engine, a user's
other ones included), and never name anything the launch did not create. A
second ``close()`` must run nothing destructive at all: a name may have been
reused by then.

Read for docker-family CLIs (docker, podman, nerdctl) and smolvm; a command
of any other program is reported as unreadable, never as fine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .recording import (
    ENGINES,
    Resource,
    created_resource,
    prog,
    read,
    removed_resources,
    subcommand,
)

# Engine subcommands that destroy or stop something.
_DESTROY = {
    ("rm",), ("container", "rm"), ("network", "rm"), ("volume", "rm"), ("rmi",),
    ("image", "rm"), ("kill",), ("container", "kill"), ("stop",), ("container", "stop"),
}
_SMOL_DESTROY = {("machine", "delete"), ("machine", "rm"), ("machine", "stop")}
# A label selector naming a key but no value: `label=KEY` (not `label=KEY=VALUE`).
_KEY_ONLY = re.compile(r"^label=[^=]+$")
_PRUNE = re.compile(r"\bprune\b")
_SHELLS = {"sh", "bash", "dash", "zsh", "ash"}


@dataclass(frozen=True)
class Problem:
    argv: tuple[str, ...]
    why: str

    def __str__(self) -> str:
        return f"{' '.join(self.argv)[:300]}: {self.why}"


def created_names(argvs: Iterable[Sequence[str]]) -> set[Resource]:
    """Every resource the commands create by name (container, network,
    volume, machine)."""
    out = set()
    for argv in argvs:
        res = created_resource(argv)
        if res:
            out.add(res)
    return out


def _filters(argv: Sequence[str]) -> list[str]:
    inv = read(argv)
    if inv is not None:
        return inv.values("filter")
    vals = []
    for i, tok in enumerate(argv):
        if tok in ("--filter", "-f") and i + 1 < len(argv):
            vals.append(argv[i + 1])
        elif tok.startswith("--filter="):
            vals.append(tok.split("=", 1)[1])
    return vals


def is_destructive(argv: Sequence[str]) -> bool:
    """Whether ``argv`` removes or stops something (or prunes)."""
    p, sub = prog(argv), subcommand(argv)
    if p in ENGINES:
        return sub in _DESTROY or "prune" in argv[1:3] or sub[-1:] == ("prune",)
    if p == "smolvm":
        return sub in _SMOL_DESTROY
    if p in _SHELLS:
        text = " ".join(argv[1:])
        return bool(_PRUNE.search(text)) or bool(re.search(r"\b(docker|podman|nerdctl)\b.*\brm\b",
                                                           text))
    return False


def problems(close_argvs: Iterable[Sequence[str]], created: set[Resource]) -> list[Problem]:
    """What is wrong with a teardown that ran ``close_argvs`` after a launch
    that created ``created``."""
    out = []
    names = {(r.kind, r.name) for r in created}
    for argv in map(tuple, close_argvs):
        p = prog(argv)
        if p in _SHELLS and is_destructive(argv):
            out.append(Problem(argv, "removes through a shell (names unreadable)"))
            continue
        if p in ENGINES and ("prune" in argv[1:3] or subcommand(argv)[-1:] == ("prune",)):
            out.append(Problem(argv, "prunes (removes whatever matches, not what it created)"))
            continue
        keyed = [f for f in _filters(argv) if _KEY_ONLY.match(f)]
        if keyed:
            out.append(Problem(argv, f"selects by label key alone ({keyed[0]}): matches "
                                     "every bottle on the engine"))
            continue
        if not is_destructive(argv):
            continue
        removed = removed_resources(argv)
        if p in ENGINES and subcommand(argv) in {("kill",), ("container", "kill"), ("stop",),
                                                 ("container", "stop")}:
            removed = [Resource("container", n) for n in _stop_targets(argv)]
        elif p == "smolvm":
            removed = [Resource("machine", n) for n in _smol_names(argv)]
        if not removed:
            out.append(Problem(argv, "destroys something it does not name"))
            continue
        foreign = [r for r in removed if (r.kind, r.name) not in names]
        if foreign:
            out.append(Problem(argv, "removes what the launch did not create: "
                                     + ", ".join(f"{r.kind} {r.name}" for r in foreign)))
    return out


def _stop_targets(argv: Sequence[str]) -> list[str]:
    inv = read(argv)
    if inv is not None:
        return list(inv.positionals)
    start = 3 if len(argv) > 1 and argv[1] == "container" else 2
    out, i = [], start
    while i < len(argv):
        tok = argv[i]
        if tok in ("-t", "--time", "-s", "--signal"):
            i += 2
            continue
        if not tok.startswith("-"):
            out.append(tok)
        i += 1
    return out


def _smol_names(argv: Sequence[str]) -> list[str]:
    """``-n/--name NAME`` of a smolvm machine command, else its positionals."""
    inv = read(argv)
    if inv is not None:
        name = inv.last("name")
        return [name] if name else list(inv.positionals)
    for i, tok in enumerate(argv):
        if tok in ("-n", "--name") and i + 1 < len(argv):
            return [argv[i + 1]]
        if tok.startswith("--name="):
            return [tok.split("=", 1)[1]]
    return [t for t in argv[3:] if not t.startswith("-")]
