"""The argv model and the one parser every table feeds.

A `Grammar` is data: global flags, and per subcommand path a `Command`
(its flags, how many positionals it takes, where the trailing command
starts). `Grammar.parse` turns an argv into an `Invocation` or raises
`ArgvError` naming what is wrong (unknown subcommand, unknown flag, missing
value, too many or too few positionals), the way the real tool would
refuse it. Two option syntaxes are modelled, because the tools differ:

- ``pflag`` (docker, podman, nerdctl: Go's spf13/pflag): a flag that takes
  a value takes the NEXT token whatever it looks like (``-e -u`` sets the
  env entry ``-u``); ``-uVALUE``, ``-u=VALUE`` and ``--user=VALUE`` are
  the same; short bool flags cluster (``-it``), and a value flag may end a
  cluster (``-itu node``); ``--`` ends the options.
- ``clap`` (smolvm: Rust clap 4): the same spellings, except that a value
  flag followed by a token that looks like a flag is a missing value
  (clap does not take ``--name -x`` as the name ``-x``).

The trailing command (the guest command of ``docker exec``, ``smolvm
machine exec -- ...``) is kept apart from the positionals, with its index
in the argv, so callers never re-derive where it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import functools
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

Syntax = Literal["pflag", "clap"]
# How the trailing command starts:
#   "none"       no trailing command;
#   "rest"       after the command's `head` positionals, every token is the
#                command (pflag SetInterspersed(false); clap trailing_var_arg);
#   "dashdash"   only what follows `--` is the command (clap `last = true`).
Trailing = Literal["none", "rest", "dashdash"]


class ArgvError(ValueError):
    """An argv the tool would refuse (one line, names the token)."""


class UnknownTool(ArgvError):
    """An argv whose program no grammar here describes."""


@dataclass(frozen=True)
class Flag:
    """One option. ``long`` without dashes (``"user"``); ``short`` one
    character or ''. ``takes_value``: the flag consumes a value.
    ``repeatable``: giving it twice accumulates (else the last one wins).
    ``source``: where the row was read (file:line, version)."""

    long: str
    short: str = ""
    takes_value: bool = False
    repeatable: bool = False
    source: str = ""


@dataclass(frozen=True)
class Command:
    """One subcommand. ``positionals``: (min, max) before any trailing
    command (max None: unbounded); ``head``: for ``trailing="rest"``, how
    many positionals come before the command (``docker exec``: 1, the
    container; ``smolvm machine exec``: 0)."""

    path: tuple[str, ...]
    flags: tuple[Flag, ...]
    positionals: tuple[int, int | None] = (0, None)
    trailing: Trailing = "none"
    head: int = 0
    trailing_required: bool = False
    required_flags: tuple[str, ...] = ()
    source: str = ""

    def flag(self, spelled: str) -> Flag | None:
        """The flag spelled ``--long`` or ``-s``, or None (the first of
        ``flags`` so spelled)."""
        return self._spellings.get(spelled)

    @functools.cached_property
    def _spellings(self) -> dict[str, Flag]:
        # Built once per command: parsing looks up every option token.
        out: dict[str, Flag] = {}
        for f in self.flags:
            out.setdefault("--" + f.long, f)
        for f in self.flags:
            if len(f.short) == 1:
                out.setdefault("-" + f.short, f)
        return out


@dataclass(frozen=True)
class Option:
    """One option as given: canonical ``name`` (the long name), its
    ``value`` (None for a bool flag without ``=``), and the argv index of
    the token that named it."""

    name: str
    value: str | None
    index: int


@dataclass(frozen=True)
class Invocation:
    """A parsed argv. ``path``: the subcommand path (``("machine", "exec")``);
    ``command``: the trailing command, starting at argv index
    ``command_at`` (None when there is none)."""

    argv: tuple[str, ...]
    tool: str
    path: tuple[str, ...]
    options: tuple[Option, ...]
    positionals: tuple[str, ...]
    command: tuple[str, ...] = ()
    command_at: int | None = None
    grammar: str = ""

    def values(self, *names: str) -> list[str]:
        """Every value given to any of ``names`` (long names), in order."""
        return [o.value for o in self.options if o.name in names and o.value is not None]

    def last(self, *names: str) -> str | None:
        vals = self.values(*names)
        return vals[-1] if vals else None

    def has(self, *names: str) -> bool:
        """A bool flag given (and not ``=false``), or a value flag given."""
        for o in self.options:
            if o.name in names and (o.value is None or o.value.lower() not in ("false", "0")):
                return True
        return False

    def options_named(self, *names: str) -> list[Option]:
        return [o for o in self.options if o.name in names]


def prog(argv: Sequence[str]) -> str:
    """The program's basename (``/usr/bin/docker`` -> ``docker``)."""
    return _basename(str(argv[0])) if argv else ""


@functools.lru_cache(maxsize=256)
def _basename(path: str) -> str:
    # Memoised: the tiers ask for the same few programs hundreds of
    # thousands of times per run, and PurePosixPath is costly to build.
    return PurePosixPath(path).name


# How many parsed argvs each grammar remembers (`Grammar.parse`).
_MEMO_SIZE = 4096


@dataclass(frozen=True)
class Grammar:
    """A tool's vocabulary: ``commands`` by path, ``aliases`` mapping an
    alternative path to its canonical one, ``global_flags`` accepted before
    the subcommand, and ``bare``: flags valid with no subcommand at all
    (``smolvm --version``)."""

    tool: str
    name: str
    syntax: Syntax
    commands: Mapping[tuple[str, ...], Command]
    global_flags: tuple[Flag, ...] = ()
    aliases: Mapping[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    bare: tuple[Flag, ...] = ()
    # Parsed argvs: the result (an immutable `Invocation`) or the refusal
    # (its class and message). The tiers read the same recorded argvs many
    # times over (every property, every oracle); parsing is a pure function
    # of the grammar and the argv, so each argv is parsed once.
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def parse(self, argv: Sequence[str]) -> Invocation:
        argv = tuple(map(str, argv))
        hit = self._memo.get(argv)
        if hit is None:
            try:
                hit = self._parse(argv)
            except ArgvError as exc:
                hit = (type(exc), exc.args)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[argv] = hit
        if isinstance(hit, Invocation):
            return hit
        cls, args = hit
        raise cls(*args)

    def _parse(self, argv: tuple[str, ...]) -> Invocation:
        tool = prog(argv)
        i, options = 1, []
        globals_cmd = self._globals_cmd
        # global flags before the subcommand
        while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
            if argv[i] == "--":
                raise ArgvError(f"{tool}: '--' before any subcommand")
            i = self._option(globals_cmd, argv, i, options)
        if i >= len(argv):
            if any(o.name in {f.long for f in self.bare} for o in options):
                return Invocation(argv, tool, (), tuple(options), (), grammar=self.name)
            raise ArgvError(f"{tool}: no subcommand")
        path, cmd = self._subcommand(argv, i)
        if cmd is None:
            raise ArgvError(f"{tool}: unknown subcommand {' '.join(argv[i:i + 2])!r} "
                            f"(not in the {self.name} grammar)")
        i += len(path)
        canonical = self.aliases.get(path, path)
        positionals: list[str] = []
        command: tuple[str, ...] = ()
        command_at: int | None = None
        while i < len(argv):
            tok = argv[i]
            if tok == "--":
                rest = argv[i + 1:]
                if cmd.trailing == "dashdash":
                    command, command_at = rest, i + 1
                elif cmd.trailing == "rest":
                    need = cmd.head - len(positionals)
                    positionals += rest[:max(need, 0)]
                    command, command_at = rest[max(need, 0):], i + 1 + max(need, 0)
                else:
                    positionals += rest
                break
            if tok.startswith("-") and tok != "-":
                i = self._option(cmd, argv, i, options)
                continue
            if cmd.trailing == "rest" and len(positionals) >= cmd.head:
                command, command_at = argv[i:], i
                break
            positionals.append(tok)
            i += 1
            if cmd.trailing == "rest" and len(positionals) == cmd.head and self.syntax == "pflag":
                # pflag SetInterspersed(false): options end at the head positional
                command, command_at = argv[i:], i if i < len(argv) else None
                break
        if command_at is not None and not command:
            command_at = None
        lo, hi = cmd.positionals
        shown = " ".join((tool, *path))
        if len(positionals) < lo:
            raise ArgvError(f"{shown}: expects at least {lo} positional argument(s), got "
                            f"{len(positionals)} ({' '.join(positionals) or 'none'})")
        if hi is not None and len(positionals) > hi:
            extra = positionals[hi:]
            raise ArgvError(f"{shown}: unexpected positional argument {extra[0]!r}"
                            + (" (the trailing command needs '--' first)"
                               if cmd.trailing == "dashdash" else ""))
        if cmd.trailing_required and not command:
            raise ArgvError(f"{shown}: no command given")
        given = {o.name for o in options}
        missing = [f"--{n}" for n in cmd.required_flags if n not in given]
        if missing:
            raise ArgvError(f"{shown}: required flag {missing[0]} is missing")
        return Invocation(argv, tool, canonical, tuple(options), tuple(positionals),
                          command, command_at, self.name)

    @functools.cached_property
    def parse_shape(self) -> tuple:
        """Everything `parse` reads but the grammar's name: two grammars with
        one shape accept and refuse the same argvs with the same
        invocations, bar ``Invocation.grammar`` and the name in a refusal.
        (Flag sources and ``repeatable`` are documentation to `parse`.)"""
        def flags(fs: Iterable[Flag]) -> tuple:
            return tuple((f.long, f.short, f.takes_value) for f in fs)
        commands = tuple((path, flags(c.flags), c.positionals, c.trailing, c.head,
                          c.trailing_required, c.required_flags)
                         for path, c in self.commands.items())
        return (self.tool, self.syntax, flags(self.global_flags), flags(self.bare),
                tuple(self.aliases.items()), commands)

    @functools.cached_property
    def _globals_cmd(self) -> Command:
        return Command((), self.global_flags + self.bare)

    def _subcommand(self, argv: Sequence[str], i: int) -> tuple[tuple[str, ...], Command | None]:
        for n in (3, 2, 1):
            path = tuple(argv[i:i + n])
            if len(path) < n:
                continue
            canonical = self.aliases.get(path, path)
            if canonical in self.commands:
                return path, self.commands[canonical]
        return (), None

    def _option(self, cmd: Command, argv: Sequence[str], i: int, out: list[Option]) -> int:
        """Parse the option token at ``argv[i]``; return the next index."""
        tok = argv[i]
        if tok.startswith("--"):
            name, eq, value = tok[2:].partition("=")
            flag = cmd.flag("--" + name)
            if flag is None:
                raise ArgvError(f"{_shown(argv, cmd)}: unknown flag --{name} "
                                f"(not in the {self.name} grammar)")
            if not flag.takes_value:
                out.append(Option(flag.long, value if eq else None, i))
                return i + 1
            if eq:
                out.append(Option(flag.long, value, i))
                return i + 1
            return self._value(flag, f"--{name}", argv, i, out, cmd)
        # a short cluster: -it, -unode, -u=node, -itu node
        body = tok[1:]
        for j, ch in enumerate(body):
            flag = cmd.flag("-" + ch)
            if flag is None:
                raise ArgvError(f"{_shown(argv, cmd)}: unknown flag -{ch}"
                                + (f" (in {tok!r})" if len(body) > 1 else "")
                                + f" (not in the {self.name} grammar)")
            if not flag.takes_value:
                out.append(Option(flag.long, None, i))
                continue
            rest = body[j + 1:]
            if rest:
                out.append(Option(flag.long, rest[1:] if rest.startswith("=") else rest, i))
                return i + 1
            return self._value(flag, f"-{ch}", argv, i, out, cmd)
        return i + 1

    def _value(self, flag: Flag, spelled: str, argv: Sequence[str], i: int,
               out: list[Option], cmd: Command) -> int:
        if i + 1 >= len(argv):
            raise ArgvError(f"{_shown(argv, cmd)}: flag {spelled} needs a value and none follows")
        nxt = argv[i + 1]
        if self.syntax == "clap" and nxt.startswith("-") and len(nxt) > 1 and not _negative(nxt):
            raise ArgvError(f"{_shown(argv, cmd)}: flag {spelled} needs a value, but {nxt!r} follows "
                            "(clap reads that as a flag)")
        out.append(Option(flag.long, nxt, i))
        return i + 2


def _shown(argv: Sequence[str], cmd: Command) -> str:
    """How an error names the command: ``tool sub...`` (only on a refusal)."""
    return " ".join((prog(argv), *cmd.path)) if cmd.path else prog(argv)


def _negative(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def flags_from_rows(rows: Iterable[tuple[str, str, bool, str]], *,
                    repeatable: Iterable[str] = ()) -> tuple[Flag, ...]:
    rep = set(repeatable)
    return tuple(Flag(long, short, takes, long in rep, src) for long, short, takes, src in rows)
