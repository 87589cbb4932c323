"""The suite's one argv library: grammars as data, one parser, one node-framing oracle.

- `grammar`: the model (`Flag`, `Command`, `Grammar`, `Invocation`) and
  the parser (pflag and clap option syntax).
- `docker_table` / `docker`: the docker-family vocabulary (docker, podman,
  nerdctl), generated from docker/cli's flag definitions, and its value
  semantics (last ``-u`` wins, ``node:GROUP``, ``--network`` forms,
  pinned images).
- `smolvm`: the smolvm grammar per supported version (>= 1.8), from
  smolvm's clap definitions.
- `framing`: parse any recorded argv (`parse`), find the agent exec by role
  and decide "runs as node with HOME=/home/node" (`framing_problem`) for
  every tier.
- `checks`: the static clauses over a launch's argvs (SMOLVM-*, DOCKER-ARGV,
  GUEST-*), as pure functions the tiers and the unit tests call.

A tool no grammar here knows raises `UnknownTool`; clauses that need to read
such an argv are NOT_SUPPORTED with that reason, never PASSED.
"""

from .grammar import ArgvError, Flag, Command, Grammar, Invocation, Option, UnknownTool, prog
from .framing import (
    AGENTS,
    NODE,
    NODE_HOME,
    Framing,
    agent_exec,
    framing_problem,
    known_tool,
    parse,
    parse_any,
)

__all__ = [
    "AGENTS", "NODE", "NODE_HOME", "ArgvError", "Command", "Flag", "Framing", "Grammar",
    "Invocation", "Option", "UnknownTool", "agent_exec", "framing_problem", "known_tool",
    "parse", "parse_any", "prog",
]
