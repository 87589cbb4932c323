"""Small readers over a recording, shared by the snapshot-tier checks."""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from bottle_api.plan import EGRESS, PIPELOCK, PORTS
from bottle_api.runner import RecordingRunner
from bottle_api.spec import BottleSpec

from ...argv import ArgvError, UnknownTool, framing_problem
from ...argv.framing import walk
from ...outcomes import not_supported
from ...recording import (
    Recording,
    contains_seq,
    env_assignments,
    parse_publish,
    publish_values,
    subcommand,
)
from .facts import _PYTHON, _SHORT_CLUSTER, TTY_FLAGS

# -- small readers -----------------------------------------------------------------


def show(rec: Recording, argv: Sequence[str]) -> str:
    """An argv as one normalised shell line, for failure messages."""
    return rec.normalise(shlex.join(argv))


def launched(rec: Recording, *, agent: bool = False) -> Recording:
    """``rec``, after asserting its launch went through (structural tests
    need a complete recording). ``agent``: the test reads agent_argv too;
    otherwise an agent_argv failure is left to the tests that read it."""
    __tracebackhide__ = True
    tolerated = () if agent else ("agent_argv",)
    assert rec.error is None or rec.error_phase in tolerated, (
        f"recorded launch of scenario {rec.scenario!r} failed, so nothing can be "
        f"checked: {rec.describe_error()} (Backend.script must script every reply a "
        "recorded launch needs)"
    )
    return rec


def launch_failed(rec: Recording) -> bool:
    """Whether prepare or launch raised (an agent_argv or close failure is
    for the tests of those)."""
    return rec.error is not None and rec.error_phase in ("prepare", "script", "launch")


def joined(argv: Sequence[str]) -> str:
    return " ".join(argv)


PROMPT_MARKER = "bottle-conformance: a prompt of its own"


def prompt_on_argv(rec: Recording, text: str,
                   again: Callable[[BottleSpec], Recording] | None = None) -> list[str]:
    """The argv tokens that carry the prompt ``text``.

    A token holding ``text`` carries it unless it is there for reasons of its
    own: a short or common prompt (``0``, ``node``, ``e``) sits inside
    ``127.0.0.1``, ``/home/node`` and every path. ``again(spec)`` records the
    same case once more (the recording is deterministic), and the tokens
    holding ``text`` that recording also has, with the prompt swapped for
    `PROMPT_MARKER`, are not the prompt's. Without ``again`` (the snapshot
    tier's fixed, distinctive prompts) every token holding ``text`` counts.
    """
    hits = Counter(t for a in rec.all_argvs() for t in a if text in t)
    if hits and again is not None:
        marker = PROMPT_MARKER if text != PROMPT_MARKER else PROMPT_MARKER + "!"
        other = again(dataclasses.replace(rec.spec, prompt=marker))
        hits -= Counter(t for a in other.all_argvs() for t in a if text in t)
    return sorted(hits)


def is_python(token: str) -> bool:
    return token == sys.executable or bool(_PYTHON.fullmatch(PurePosixPath(token).name))


def tty_flags(argv: Sequence[str]) -> list[str]:
    return [t for t in argv if t in TTY_FLAGS or (_SHORT_CLUSTER.fullmatch(t) and "t" in t)]


def framing(rec: Recording, tty: bool) -> tuple[str, ...]:
    """The agent argv without the agent's own arguments at its end."""
    argv = rec.agent_argvs[tty]
    n = len(rec.agent_args)
    return argv[:-n] if n and argv[-n:] == rec.agent_args else argv


def port_map(rec: Recording) -> dict[int, int]:
    """Host port -> container port, from the ``<engine> port C P/tcp`` answers."""
    out: dict[int, int] = {}
    for i, call in rec.indexed():
        if call.kind != "run" or subcommand(call.argv) not in (("port",), ("container", "port")):
            continue
        cport = re.match(r"(\d+)", call.argv[-1]) if len(call.argv) > 3 else None
        for line in rec.runner.stdout_of(i).splitlines():
            host_port = line.strip().rpartition(":")[2]
            if cport and host_port.isdigit():
                out[int(host_port)] = int(cport.group(1))
    return out


def daemon_of(url: str, ports: dict[int, int]) -> str | None:
    """Which bundle daemon a proxy URL reaches: through a discovered host
    port, a network alias, or the daemon's container port."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return None
    by_port = {PORTS[EGRESS]: EGRESS, PORTS[PIPELOCK]: PIPELOCK}
    if port in ports:
        return by_port.get(ports[port])
    if host in (EGRESS, PIPELOCK):
        return host
    return by_port.get(port)


def agent_env_argvs(rec: Recording) -> list[tuple[str, ...]]:
    """argvs that set the agent's environment: the agent argvs and every
    command run with an ``HTTPS_PROXY=`` assignment (agent create/exec)."""
    out = [rec.agent_argvs[t] for t in (False, True) if t in rec.agent_argvs]
    out += [a for a in rec.runs() if any(k == "HTTPS_PROXY" for k, _ in env_assignments(a))]
    return out


def published(rec: Recording):
    images = set()
    if rec.plan is not None:
        images = {rec.plan.agent_image_ref, rec.plan.bundle_image_ref}
    for argv in rec.runs():
        for value in publish_values(argv, stop_at=images):
            yield argv, parse_publish(value)


def first_index(rec: Recording, phase: str, pred) -> int | None:
    for i, call in rec.indexed(phase):
        if call.kind == "run" and pred(call.argv):
            return i
    return None


def command_at(argv: Sequence[str], words: Sequence[str]) -> int:
    """Index of the command ``words`` in ``argv`` (as tokens, or inside one
    ``sh -c`` token), or -1."""
    at = contains_seq(argv, words)
    if at >= 0:
        return at
    text = " ".join(words)
    return next((i for i, tok in enumerate(argv) if text in tok), -1)


def node_problem(argv: Sequence[str], at: int) -> str | None:
    """The suite's one node-framing oracle (`conformance.argv.framing_problem`)
    for the guest command at ``argv[at]``; NOT_SUPPORTED for an argv whose
    tool no grammar of the suite reads."""
    try:
        return framing_problem(argv, at)
    except UnknownTool as exc:
        not_supported(f"exec framing not readable: {exc}")


def as_node(argv: Sequence[str], at: int) -> bool:
    """The guest command at ``argv[at]`` runs as node (same oracle)."""
    try:
        return walk(argv, at).user == "node"
    except UnknownTool as exc:
        not_supported(f"exec framing not readable: {exc}")
    except ArgvError:
        return False


@functools.lru_cache(maxsize=64)
def _stdlib_problem(script: str, mtime_ns: int) -> str | None:
    return _read_stdlib_problem(Path(script))


def stdlib_problem(script: Path) -> str | None:
    """Why ``script`` is not stdlib-only, or None (cached per file version)."""
    try:
        mtime = script.stat().st_mtime_ns
    except OSError as exc:
        return f"cannot be read ({exc})"
    return _stdlib_problem(str(script), mtime)


def _read_stdlib_problem(script: Path) -> str | None:
    """Why ``script`` is not stdlib-only (an import outside the standard
    library, or a relative import), or None."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        return f"cannot be read as Python ({exc})"
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                return f"line {node.lineno}: relative import (needs its package on sys.path)"
            names = [node.module or ""]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in stdlib:
                return f"line {node.lineno}: imports {name!r}, not in the standard library"
    return None


def _always_failing_ca(runner: RecordingRunner, plan) -> None:
    runner.reply(contains="update-ca-certificates", first=True,
                 stdout="Updating certificates in /etc/ssl/certs...\n0 added, 0 removed; done.\n")
