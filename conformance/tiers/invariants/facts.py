"""Contract facts the invariant properties check against, written out here."""

from __future__ import annotations


import yaml

# -- contract facts (DESIGN §4, §8 and the team brief), written out here ---------

NODE, NODE_HOME = "node", "/home/node"
AGENT_BINARIES = frozenset({"claude", "codex"})
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # what update-ca-certificates writes
CA_ENV = {"codex": "CODEX_CA_CERTIFICATE", "claude": "NODE_EXTRA_CA_CERTS"}
CA_GUEST_FILE = "/usr/local/share/ca-certificates/bottle-egress.crt"
EGRESS_CA_MOUNT, PIPELOCK_CA_MOUNT = "/etc/egress/ca.pem", "/etc/pipelock/ca.pem"
BUNDLE_ENTRY = "bottle-bundle"  # the bundle image's daemon launcher
PIPELOCK_PORT, EGRESS_PORT, GIT_GATE_PORT = 8888, 9099, 9418
CODEX_API_HOSTS = ("chatgpt.com", "api.openai.com")
CODEX_PIPELOCK_HOSTS = CODEX_API_HOSTS + ("*.chatgpt.com",)
CLAUDE_API_HOSTS = ("api.anthropic.com",)
CODEX_AUTH_GUEST = "/home/node/.codex/auth.json"
CLAUDE_CREDENTIALS_GUEST = "/home/node/.claude/.credentials.json"

# pipelock's keys and rules: conformance.oracles.pipelock (from pipelock's source).

# Commands that make or start something; none may run before a launch refusal.
_STARTING_WORDS = frozenset({"create", "run", "start", "build", "pack", "cp", "exec",
                             "connect", "push", "save", "load", "pull"})

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
