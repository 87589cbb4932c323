"""Guest provisioning shared by both backends (DESIGN §4).

A backend supplies a `GuestChannel` (how to frame exec and copy for its
guest); the steps here are the same everywhere. Order, as `provision` runs
them: CA, credentials/guest files, prompt, skills, git, supervise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .plan import Plan
from .runner import Runner

NODE = "node"
NODE_HOME = "/home/node"
PROMPT_PATH = "/home/node/.claude-bottle-prompt.txt"
SKILLS_DIR = "/home/node/.claude/skills"
WORKDIR = "/home/node/work"
CA_GUEST_PATH = "/usr/local/share/ca-certificates/bottle-egress.crt"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class ProvisionError(RuntimeError):
    """A provisioning step failed in a way the user must hear about."""


class GuestChannel(ABC):
    """How a backend frames commands for its guest."""

    @abstractmethod
    def exec_argv(
        self,
        cmd: Sequence[str],
        *,
        user: str = NODE,
        env: Mapping[str, str] | None = None,
        tty: bool = False,
    ) -> list[str]:
        """Host argv running ``cmd`` in the guest as ``user`` with HOME set
        to that user's home. Where the channel is always root (smolvm), a
        ``node`` command is framed ``-e HOME=/home/node -e USER=node --
        runuser -u node -- CMD``."""

    @abstractmethod
    def copy_argv(self, host_path: str, guest_path: str) -> list[str]:
        """Host argv copying a host file or directory into the guest."""


@dataclass(frozen=True)
class Addresses:
    """Agent-facing addresses, known only at launch (ports may be random)."""

    proxy_url: str  # the agent's first hop, e.g. http://egress:9099
    git_gate_url: str | None = None  # e.g. git://git-gate:9418
    supervise_url: str | None = None  # e.g. http://supervise:9100/mcp


def provision(
    plan: Plan,
    channel: GuestChannel,
    runner: Runner,
    addresses: Addresses,
    *,
    ca_pem_host_path: str,
    log: Callable[[str], None],
) -> str | None:
    """Run every provisioning step; return the guest prompt path iff the
    prompt is non-empty (drives ``--append-system-prompt-file``)."""
    raise NotImplementedError
