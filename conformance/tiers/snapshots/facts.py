"""Guest paths of DESIGN §4 and in-container paths of the bundle interface, as the snapshot tier checks them."""

from __future__ import annotations

import re

from bottle_api.plan import EGRESS, PIPELOCK

from ...capabilities import Capability

# Guest paths of DESIGN §4 and in-container paths of the bundle interface.
PROMPT_PATH = "/home/node/.claude-bottle-prompt.txt"
PROMPT_FLAG = "--append-system-prompt-file"
SKILLS_DIR = "/home/node/.claude/skills"
WORKDIR = "/home/node/work"
CA_GUEST_DIR = "/usr/local/share/ca-certificates/"
EGRESS_CA_MOUNTS = ("/etc/egress/ca.pem", "/etc/egress/ca-key.pem")
FIRST_HOP_CA_MOUNT = {EGRESS: "/etc/egress/ca.pem", PIPELOCK: "/etc/pipelock/ca.pem"}

READY_FAILURES = 3  # failed readiness probes a launch must survive
READY_BOUND_S = 600.0  # a readiness wait longer than this is not "bounded"

TTY_FLAGS = frozenset({"-t", "--tty", "--tty=true", "-it", "-ti"})
_SHORT_CLUSTER = re.compile(r"-[a-zA-Z]{2,3}")
_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")

# Claude's supervise registration (PROV-MCP*): claude scenarios with supervise.
_SUPERVISED = {"where": lambda s: Capability.SUPERVISE in s.needs and Capability.CLAUDE in s.needs}
# Claude's own places (PROV-PROMPT, PROV-SKILLS, PROV-MCP): claude scenarios.
_CLAUDE_ONLY = {"where": lambda s: Capability.CLAUDE in s.needs}
# Codex's own places (PROV-CODEX-*): codex scenarios, and those with supervise.
_CODEX_ONLY = {"where": lambda s: Capability.CODEX in s.needs}
_CODEX_SUPERVISED = {"where": lambda s: Capability.SUPERVISE in s.needs
                     and Capability.CODEX in s.needs}
# Where Codex 0.169.0 reads each (codex-rs source in bottle_api.conventions).
CODEX_PROMPT_PATH = "/home/node/.codex/AGENTS.md"
CODEX_SKILLS_DIR = "/home/node/.agents/skills"
CODEX_CONFIG = "/home/node/.codex/config.toml"
