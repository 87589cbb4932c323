"""The suite's own resume-with-fallback wrap (EXEC-RESUME's oracle).

Written from the clause, not from the reference: a caller that wants the
agent to pick up its last session wraps the *agent tail* of
``agent_argv`` (from the agent binary on) in one shell,

    <prefix> sh -c '<tail with resume> || <tail>'

and leaves the prefix (the backend's exec framing, with its user switch)
alone. The agent binary is found by role: the first token that is the
bottle's agent (bare or by absolute path), never by image or position.

How each agent resumes (from the CLIs themselves, DESIGN facts): Claude Code
appends ``--continue``; Codex CLI has no ``--continue`` but a ``resume
--last`` subcommand right after the binary.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

RESUME_APPEND = {"claude": ("--continue",)}
RESUME_INSERT = {"codex": ("resume", "--last")}
AGENTS = ("claude", "codex")


class NoAgentBinary(ValueError):
    """The argv has no token that is the agent binary: it cannot be wrapped."""


def is_agent_token(token: str, agent: str) -> bool:
    return token == agent or (token.startswith("/") and posixpath.basename(token) == agent)


def agent_at(argv: Sequence[str], agent: str) -> int:
    """Index of the first token that is ``agent``'s binary; `NoAgentBinary` if none."""
    for i, token in enumerate(argv):
        if is_agent_token(str(token), agent):
            return i
    raise NoAgentBinary(f"no {agent} binary as a token of its own in {shlex.join(map(str, argv))}")


def resumed(tail: Sequence[str], agent: str) -> list[str]:
    """``tail`` (binary first) made to resume the last session."""
    binary, rest = str(tail[0]), [str(t) for t in tail[1:]]
    if agent in RESUME_INSERT:
        return [binary, *RESUME_INSERT[agent], *rest]
    return [binary, *rest, *RESUME_APPEND.get(agent, ("--continue",))]


@dataclass(frozen=True)
class Wrapped:
    """A wrapped argv: ``argv[:at]`` is the untouched prefix, then ``sh -c SCRIPT``."""

    argv: tuple[str, ...]
    at: int  # where the shell (formerly the agent binary) starts
    resume: tuple[str, ...]
    fresh: tuple[str, ...]

    @property
    def prefix(self) -> tuple[str, ...]:
        return self.argv[:self.at]


def wrap(argv: Sequence[str], agent: str) -> Wrapped:
    """Wrap ``argv``'s agent tail; raises `NoAgentBinary`."""
    argv = [str(a) for a in argv]
    at = agent_at(argv, agent)
    tail = argv[at:]
    again = resumed(tail, agent)
    script = f"{shlex.join(again)} || {shlex.join(tail)}"
    return Wrapped(tuple(argv[:at] + ["sh", "-c", script]), at, tuple(again), tuple(tail))


def unwrap(script: str) -> tuple[list[str], list[str]]:
    """The two commands of a ``'A || B'`` script, shell-split (the check
    that the wrap survived quoting: what the shell will really run)."""
    words = shlex.split(script)
    if words.count("||") != 1:
        raise ValueError(f"expected one '||' in {script!r}")
    i = words.index("||")
    return words[:i], words[i + 1:]
