"""Resume the agent's last session, or start fresh if there is none.

WHY: a relaunched pane should pick up where the agent left off, but the
resume flag fails when there is no session yet. So the agent invocation is
wrapped in ``sh -c 'RESUME || FRESH'``. Only the tail starting at the agent
binary is wrapped: the prefix keeps the backend's exec framing, including the
``runuser -u node --`` user switch (wrapping the whole argv would run the
shell, and so the agent, as root on smolvm). Backend-neutral: it works on any
argv whose agent binary appears as its own token (docker or smolvm).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence

# How each agent resumes its most recent session. Claude takes a flag
# appended after its arguments; Codex CLI has a ``resume --last`` subcommand
# (it has no ``--continue``), inserted right after the binary.
RESUME_APPEND: Mapping[str, tuple[str, ...]] = {"claude": ("--continue",)}
RESUME_INSERT: Mapping[str, tuple[str, ...]] = {"codex": ("resume", "--last")}


def agent_index(argv: Sequence[str], agents: Sequence[str] = ("claude", "codex")) -> int:
    """Index of the first token that is an agent binary (bare or by path)."""
    for i, token in enumerate(argv):
        if token in agents or (token.startswith("/") and posixpath.basename(token) in agents):
            return i
    raise ValueError(
        f"no agent binary ({', '.join(agents)}) in argv; cannot wrap it for resume: "
        + shlex.join(argv)
    )


def resume_argv(tail: Sequence[str]) -> list[str]:
    """The agent tail (binary first) rewritten to resume the last session."""
    binary, rest = tail[0], list(tail[1:])
    name = posixpath.basename(binary)
    if name in RESUME_INSERT:
        return [binary, *RESUME_INSERT[name], *rest]
    return [binary, *rest, *RESUME_APPEND.get(name, ("--continue",))]


def resume_with_fallback(argv: Sequence[str], agents: Sequence[str] = ("claude", "codex")) -> list[str]:
    """``prefix + ["sh", "-c", "<resume tail> || <tail>"]``.

    For claude this is exactly ``shlex.join(tail + ["--continue"]) || shlex.join(tail)``.
    Raises ValueError naming the argv when it holds no agent binary.
    """
    argv = [str(a) for a in argv]
    i = agent_index(argv, agents)
    prefix, tail = argv[:i], argv[i:]
    return prefix + ["sh", "-c", f"{shlex.join(resume_argv(tail))} || {shlex.join(tail)}"]
