"""Reading any recorded argv, finding the agent exec by role, and the ONE
node-framing oracle every tier uses.

The oracle decides whether the guest command at a given argv index runs as
node with HOME=/home/node, with the tools' real semantics:

- the exec channel's user: ``docker|podman|nerdctl exec``: the LAST
  ``-u/--user`` (pflag ``StringVarP``: a later value overwrites), whose
  user part (before ':') counts, so ``node``, ``node:node``, ``--user=node``
  and ``-unode`` all mean node; no ``-u`` means the container's default
  user, which the argv does not show (treated as not node).
  ``smolvm machine exec`` has no user flag (machine.rs:2626-2675); on an
  image-based machine it runs as the image's configured user
  (machine.rs ExecCmd::run ``with_user(defaults.user)``,
  vm_common.rs:328 ``resolve_image_runtime_defaults``), root for an image
  with no USER (the bottle agent image sets none). The oracle takes the
  channel as root: a backend whose image sets USER must still frame the
  command explicitly, which this reading demands;
- the environment: the channel's ``-e/--env K=V`` (a bare ``-e K`` copies
  the HOST's value: not /home/node), then in the guest command
  ``env [-i] [-u NAME] K=V ... CMD`` (``env -i`` starts empty) and
  ``runuser -u USER [--] CMD`` (switches user, keeps the environment:
  HOME and USER stay the caller's, the seed bug "git config landed in
  /root"); ``runuser -l``/``-``/``--login`` starts a login environment
  (HOME and USER of the target). Later assignments win.
- where the channel is root and runuser switches to node, USER=node must be
  set too (EXEC-USER; DESIGN s4).

Any wrapper the oracle does not know (``sudo``, ``gosu``, ``sh -c``...)
ends the walk: what runs inside it has the framing before it.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import docker, smolvm
from .grammar import ArgvError, Invocation, UnknownTool, prog

NODE, NODE_HOME = "node", "/home/node"
AGENTS = frozenset({"claude", "codex"})
EXEC_PATHS = frozenset({("exec",), ("machine", "exec")})
KNOWN_TOOLS = docker.ENGINES | {smolvm.TOOL}

_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)


def known_tool(argv: Sequence[str]) -> bool:
    return prog(argv) in KNOWN_TOOLS


def parse(argv: Sequence[str], *, smolvm_version: str | None = None) -> Invocation:
    """Parse ``argv`` with its tool's grammar (smolvm: ``smolvm_version``,
    default the newest supported). Raises `UnknownTool` or `ArgvError`."""
    tool = prog(argv)
    if tool in docker.GRAMMARS:
        return docker.GRAMMARS[tool].parse(argv)
    if tool == smolvm.TOOL:
        return smolvm.GRAMMARS[smolvm_version or smolvm.NEWEST].parse(argv)
    raise UnknownTool(f"{tool or '(empty argv)'}: no grammar in the suite reads this tool "
                      f"(known: {', '.join(sorted(KNOWN_TOOLS))})")


# `parse_any` answers by argv: the result, or the refusal (class and args,
# raised anew each time, as `Grammar.parse` does). A pure function of the
# argv and the suite's grammars; the tiers read each recorded argv many times
# (every property, every reader), and a smolvm argv is parsed under every
# supported version.
_ANY_MEMO: dict = {}
_ANY_MEMO_SIZE = 4096


def parse_any(argv: Sequence[str]) -> tuple[Invocation, tuple[str, ...]]:
    """Parse ``argv``; for smolvm, under every supported version. Returns
    the invocation (newest grammar that accepts it) and the versions that
    accept it; raises the newest grammar's error when none does."""
    key = tuple(map(str, argv))
    hit = _ANY_MEMO.get(key)
    if hit is None:
        try:
            hit = _parse_any(key)
        except ArgvError as exc:  # UnknownTool too
            hit = (type(exc), exc.args)
        if len(_ANY_MEMO) >= _ANY_MEMO_SIZE:
            _ANY_MEMO.clear()
        _ANY_MEMO[key] = hit
    if isinstance(hit[0], Invocation):
        return hit
    cls, args = hit
    raise cls(*args)


def _parse_any(argv: tuple[str, ...]) -> tuple[Invocation, tuple[str, ...]]:
    if prog(argv) != smolvm.TOOL:
        return parse(argv), ()
    ok: list[str] = []
    first: Invocation | None = None
    error: ArgvError | None = None
    # One parse per distinct grammar shape, by its newest version (what the
    # version-by-version loop returned: the newest accepting grammar's
    # invocation, else the newest grammar's refusal); a shape's verdict is
    # every version of that shape's.
    for versions in _smolvm_shapes():
        try:
            inv = smolvm.GRAMMARS[versions[0]].parse(argv)
        except ArgvError as exc:
            error = error or exc
            continue
        ok += versions
        first = first or inv
    if first is None:
        assert error is not None
        raise error
    return first, tuple(v for v in smolvm.SUPPORTED if v in ok)


@functools.cache
def _smolvm_shapes() -> tuple[tuple[str, ...], ...]:
    """`smolvm.SUPPORTED` grouped by `Grammar.parse_shape`, each group newest
    first, groups by their newest version, newest first."""
    groups: dict[tuple, list[str]] = {}
    for version in reversed(smolvm.SUPPORTED):
        groups.setdefault(smolvm.GRAMMARS[version].parse_shape, []).append(version)
    return tuple(tuple(g) for g in groups.values())


def tool_index(argv: Sequence[str]) -> int | None:
    """Index of the first token that is a known tool: 0 for a plain
    invocation, later for a wrapper (``python /abs/pty_resize.py NAME --
    smolvm machine exec ...``)."""
    for i, tok in enumerate(argv):
        if posixpath.basename(str(tok)) in KNOWN_TOOLS:
            return i
    return None


@dataclass(frozen=True)
class Framing:
    """Who runs the guest command at one argv index, and with what
    environment (None: not set). ``channel_root``: the exec channel runs
    as root (smolvm always; an engine exec with ``-u root``)."""

    user: str | None
    home: str | None
    user_var: str | None
    via_runuser: bool
    channel_root: bool
    notes: tuple[str, ...] = field(default=())


def _exec_at(argv: Sequence[str], at: int) -> tuple[int, Invocation]:
    k = tool_index(argv[:at + 1]) if at >= 0 else None
    if k is None:
        raise UnknownTool(f"{prog(argv) or '(empty argv)'}: no known tool (docker, podman, "
                          "nerdctl, smolvm) precedes the command; the suite cannot read its framing")
    inv = parse(argv[k:])
    if inv.path not in EXEC_PATHS or inv.command_at is None:
        raise ArgvError(f"{' '.join((inv.tool, *inv.path))} is not a guest exec with a command")
    return k, inv


def _channel(inv: Invocation) -> tuple[str | None, bool, dict[str, str | None]]:
    env: dict[str, str | None] = {}
    for value in inv.values("env"):
        m = _ASSIGN.fullmatch(value)
        if m:
            env[m.group(1)] = m.group(2)
        else:
            env[value] = "<host value>"  # bare -e NAME: the host's value
    if inv.tool == smolvm.TOOL:
        return "root", True, env
    user = inv.last("user")
    name = docker.user_name(user) if user is not None else None
    return name, name in ("root", "0"), env


def walk(argv: Sequence[str], at: int) -> Framing:
    """The framing of the guest command at ``argv[at]`` (see module doc).
    Raises `UnknownTool` when no known tool runs it, `ArgvError` when the
    exec does not parse or ``at`` is not inside its command."""
    argv = [str(a) for a in argv]
    k, inv = _exec_at(argv, at)
    start = k + inv.command_at  # type: ignore[operator]
    if at < start:
        raise ArgvError(f"argv index {at} is not inside the guest command (it starts at {start})")
    user, channel_root, env = _channel(inv)
    via_runuser = False
    notes: list[str] = []
    i = start
    while i < at:
        word = posixpath.basename(argv[i])
        if word == "env":
            i += 1
            while i < at:
                tok = argv[i]
                if tok in ("-i", "--ignore-environment", "-"):
                    env = {}
                elif tok in ("-u", "--unset") and i + 1 < len(argv):
                    env.pop(argv[i + 1], None)
                    i += 1
                elif tok.startswith("--unset="):
                    env.pop(tok.split("=", 1)[1], None)
                elif tok == "--":
                    pass
                elif (m := _ASSIGN.fullmatch(tok)):
                    env[m.group(1)] = m.group(2)
                else:
                    break
                i += 1
            continue
        if word == "runuser":
            i += 1
            target, login = None, False
            while i < at:
                tok = argv[i]
                if tok in ("-u", "--user") and i + 1 < len(argv):
                    target, i = argv[i + 1], i + 2
                elif tok.startswith("--user="):
                    target, i = tok.split("=", 1)[1], i + 1
                elif tok.startswith("-u") and len(tok) > 2:
                    target, i = tok[2:], i + 1
                elif tok in ("-l", "--login", "-"):
                    login, i = True, i + 1
                elif tok in ("-g", "--group", "-G", "--supp-group", "-s", "--shell",
                             "-w", "--whitelist-environment") and i + 1 < len(argv):
                    i += 2
                elif tok in ("-m", "-p", "--preserve-environment"):
                    i += 1
                elif tok == "--":
                    i += 1
                    break
                else:
                    break
            if target is None:
                notes.append("runuser without -u (login-shell form) is not read")
                break
            user, via_runuser = target, True
            if login:
                env = {"HOME": NODE_HOME if target == NODE else f"~{target}", "USER": target}
            continue
        break
    return Framing(user, env.get("HOME"), env.get("USER"), via_runuser, channel_root, tuple(notes))


def framing_problem(argv: Sequence[str], at: int) -> str | None:
    """Why the guest command at ``argv[at]`` does not run as node with
    HOME=/home/node (and USER=node after a runuser switch), or None.
    Raises `UnknownTool` for an argv no grammar here reads (the caller
    reports NOT_SUPPORTED) and returns the parse error as the problem for
    an exec the tool itself would refuse."""
    try:
        f = walk(argv, at)
    except UnknownTool:
        raise
    except ArgvError as exc:
        return f"its argv does not parse: {exc}"
    if f.user is None:
        return ("there is no switch to node (no -u/--user node on the exec, no "
                "runuser -u node before the command)")
    if f.user != NODE:
        unread = f" ({'; '.join(f.notes)})" if f.notes else ""
        if f.user in ("root", "0"):
            return f"it runs as root (nothing after the last root switch goes to node){unread}"
        return f"it runs as {f.user!r} (the last user switch before it), not node{unread}"
    if f.home is None:
        return "it runs as node but HOME=/home/node is not set (HOME stays the channel's)"
    if f.home != NODE_HOME:
        return f"it runs as node but with HOME={f.home}"
    if f.via_runuser and f.user_var != NODE:
        seen = f"USER={f.user_var}" if f.user_var else "no USER"
        return f"it switches with runuser but sets {seen} (the channel's USER leaks; want USER=node)"
    return None


def guest_command(argv: Sequence[str]) -> tuple[int, Invocation] | None:
    """``(absolute index where the guest command starts, invocation)`` of a
    guest exec argv (possibly behind a wrapper), else None. Raises
    `UnknownTool`/`ArgvError` like `parse`."""
    k = tool_index(argv)
    if k is None:
        raise UnknownTool(f"{prog(argv) or '(empty argv)'}: no known tool in this argv")
    inv = parse(argv[k:])
    if inv.path not in EXEC_PATHS or inv.command_at is None:
        return None
    return k + inv.command_at, inv


def command_word(argv: Sequence[str], start: int) -> int:
    """Index of the program a guest command starting at ``start`` really
    runs, past ``env`` and ``runuser`` wrappers (see `walk`)."""
    i = start
    while i < len(argv):
        word = posixpath.basename(str(argv[i]))
        if word == "env":
            i += 1
            while i < len(argv) and (argv[i].startswith("-") or _ASSIGN.fullmatch(argv[i])):
                i += 2 if argv[i] in ("-u", "--unset") else 1
            continue
        if word == "runuser":
            i += 1
            while i < len(argv) and argv[i].startswith("-"):
                tok = argv[i]
                i += 2 if tok in ("-u", "--user", "-g", "--group", "-G", "--supp-group",
                                  "-s", "--shell", "-w", "--whitelist-environment") else 1
                if tok == "--":
                    break
            continue
        return i
    return i


@dataclass(frozen=True)
class AgentExec:
    argv: tuple[str, ...]
    at: int  # index of the agent binary
    invocation: Invocation


def agent_exec(argv: Sequence[str], agents: Iterable[str] = AGENTS) -> AgentExec | None:
    """The agent exec by role: ``argv`` is a guest exec whose command (past
    env/runuser wrappers) runs one of ``agents`` (by basename). None when it
    is some other command; `UnknownTool`/`ArgvError` propagate."""
    found = guest_command(argv)
    if found is None:
        return None
    start, inv = found
    i = command_word(argv, start)
    if i < len(argv) and posixpath.basename(str(argv[i])) in set(agents):
        return AgentExec(tuple(argv), i, inv)
    return None
