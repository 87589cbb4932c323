"""Guest provisioning shared by both backends (DESIGN §4).

A backend supplies a `GuestChannel` (how to frame exec and copy for its
guest); the steps here are the same everywhere. Order, as `provision` runs
them: CA, credentials/guest files, prompt, skills, git, supervise, and
(for Claude) onboarding and workdir trust in ~/.claude.json.

Prompt, skills and supervise land where the bottle's agent reads them:
Claude Code's prompt file (``--append-system-prompt-file``), ~/.claude/skills
and ``claude mcp add``; Codex's global ~/.codex/AGENTS.md, ~/.agents/skills
and ``codex mcp add --url`` (see `bottle_api.conventions` for the codex-rs
source of each).

Every step goes through ``runner.run(channel.exec_argv(...))`` or
``channel.copy_argv(...)``, so a recorded run shows the whole guest
conversation. Content (prompt, credential placeholders) travels as files
copied in, never on argv.
"""

from __future__ import annotations

import os
import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bottle_api.plan import GuestFile, Plan
from bottle_api.runner import Completed, Runner

from bottle_api.conventions import (  # noqa: E402,F401 - one place per fact
    CA_BUNDLE, CA_GUEST_PATH, CODEX_PROMPT_PATH, CODEX_SKILLS_DIR, NODE, NODE_HOME,
    PROMPT_PATH, ROOT, SKILLS_DIR, WORKDIR, skills_dir_for,
)

# What update-ca-certificates prints when our one certificate went in. Its
# absence is how the seeds' silent SIGKILL (Docker Desktop) went unnoticed.
CA_ADDED_MARKER = "1 added"
# Exactly one certificate added: "11 added" means something else changed too.
_CA_ADDED = re.compile(r"(?<!\d)1 added\b")


class ProvisionError(RuntimeError):
    """A provisioning step failed in a way the user must hear about."""


def home_of(user: str) -> str:
    """The home directory a guest exec for ``user`` gets as ``HOME``."""
    if user == ROOT:
        return "/root"
    if user == NODE:
        return NODE_HOME
    return f"/home/{user}"


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


# -- small helpers backends may reuse -------------------------------------


def guest_exec(
    runner: Runner,
    channel: GuestChannel,
    cmd: Sequence[str],
    *,
    user: str = NODE,
    check: bool = True,
) -> Completed:
    """Run ``cmd`` in the guest through ``channel`` (the one place provisioning
    turns a guest command into a host command)."""
    return runner.run(channel.exec_argv(list(cmd), user=user), check=check)


def guest_copy(runner: Runner, channel: GuestChannel, host_path: str | Path,
               guest_path: str) -> Completed:
    return runner.run(channel.copy_argv(str(host_path), guest_path))


def root_sh(*commands: str) -> list[str]:
    """``sh -c 'a && b && c'``: several root steps in one exec round trip
    (each exec is a round trip, and on smolvm an early one can be killed)."""
    return ["sh", "-c", " && ".join(commands)]


def write_file(path: Path, text: str, *, mode: int = 0o600) -> Path:
    """Write ``text`` to ``path``, created with ``mode`` (never wider while
    being written), parents made as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600."""
    return write_file(path, text, mode=0o600)


def _tail(result: Completed) -> str:
    lines = (result.stdout + "\n" + result.stderr).strip().splitlines()
    return "; ".join(lines[-3:]) if lines else "no output"


def _q(path: str) -> str:
    return shlex.quote(path)


# -- the steps --------------------------------------------------------------


def check_host_inputs(plan: Plan) -> None:
    """Fail before touching the guest if a host-side input is missing, with
    a message naming it (a missing skill dir is user input, not a bug)."""
    for host_dir, name in plan.skills:
        if not Path(host_dir).is_dir():
            raise ProvisionError(f"skill {name!r}: directory not found: {host_dir}")


def provision_ca(runner: Runner, channel: GuestChannel, ca_pem_host_path: str,
                 log: Callable[[str], None]) -> None:
    """One copy, then ONE root ``sh -c`` (chown, chmod, update-ca-certificates);
    fail unless it reports ``1 added``."""
    guest_copy(runner, channel, ca_pem_host_path, CA_GUEST_PATH)
    f = _q(CA_GUEST_PATH)
    result = guest_exec(
        runner, channel,
        root_sh(f"chown root:root {f}", f"chmod 0644 {f}", "update-ca-certificates"),
        user=ROOT, check=False,
    )
    if not result.ok or not _CA_ADDED.search(result.stdout):
        raise ProvisionError(
            f"CA provisioning failed: update-ca-certificates did not report "
            f"{CA_ADDED_MARKER!r} for {CA_GUEST_PATH} (exit {result.returncode}: "
            f"{_tail(result)}); the guest would not trust the bottle's proxy CA"
        )
    log(f"ca: guest trusts {CA_GUEST_PATH}")


def provision_guest_files(runner: Runner, channel: GuestChannel, plan: Plan,
                          files: Sequence[GuestFile]) -> None:
    """Credential placeholders: parent dir made as the owner (so e.g.
    ``~/.codex`` stays writable by node), copy, then one root chown+chmod."""
    staging = plan.state_path("guest-files")
    for i, gf in enumerate(files):
        parent = str(PurePosixPath(gf.path).parent)
        local = write_private(staging / f"{i}-{PurePosixPath(gf.path).name}", gf.content)
        try:
            guest_exec(runner, channel, ["mkdir", "-p", parent], user=gf.owner)
            guest_copy(runner, channel, local, gf.path)
        finally:
            local.unlink(missing_ok=True)
        f = _q(gf.path)
        guest_exec(
            runner, channel,
            root_sh(f"chown {gf.owner}:{gf.owner} {f}", f"chmod {gf.mode:04o} {f}"),
            user=ROOT,
        )


def provision_prompt(runner: Runner, channel: GuestChannel, plan: Plan) -> str | None:
    """Claude: the prompt file is always copied (0600, node); the return
    value is the guest path iff the prompt is non-empty (drives the agent
    flag). Codex: a non-empty prompt becomes node's global
    ``~/.codex/AGENTS.md`` (0600, node), which Codex itself reads at every
    start (an empty one is skipped by Codex, so none is written)."""
    if plan.agent == "codex":
        return provision_codex_prompt(runner, channel, plan)
    guest_path = plan.prompt_path or PROMPT_PATH
    local = write_private(plan.state_path("prompt.txt"), plan.prompt)
    guest_copy(runner, channel, local, guest_path)
    f = _q(guest_path)
    guest_exec(runner, channel, root_sh(f"chown {NODE}:{NODE} {f}", f"chmod 0600 {f}"),
               user=ROOT)
    return guest_path if plan.prompt else None


def provision_codex_prompt(runner: Runner, channel: GuestChannel, plan: Plan) -> str | None:
    """``~/.codex/AGENTS.md``: Codex sends its text with every session as
    the global instructions (codex-rs core/src/agents_md.rs
    ``AgentsMdManager::load_global_instructions``: ``AGENTS.override.md``,
    else ``AGENTS.md``, in CODEX_HOME, first non-empty one). The directory
    is made as node so ``~/.codex`` stays node's. A prompt of white space
    only is no prompt (Codex skips an AGENTS.md that trims to nothing)."""
    if not (plan.prompt or "").strip():
        return None
    guest_path = plan.prompt_path if plan.prompt_path != PROMPT_PATH else CODEX_PROMPT_PATH
    local = write_private(plan.state_path("AGENTS.md"), plan.prompt)
    guest_exec(runner, channel, ["mkdir", "-p", str(PurePosixPath(guest_path).parent)],
               user=NODE)
    guest_copy(runner, channel, local, guest_path)
    f = _q(guest_path)
    guest_exec(runner, channel, root_sh(f"chown {NODE}:{NODE} {f}", f"chmod 0600 {f}"),
               user=ROOT)
    return guest_path


def provision_skills(runner: Runner, channel: GuestChannel,
                     skills: Sequence[tuple[str, str]], *,
                     skills_dir: str = SKILLS_DIR) -> None:
    """Each skill dir to ``skills_dir/<name>`` (the agent's own skills
    directory: `bottle_api.conventions.skills_dir_for`), chowned to node."""
    for host_dir, name in skills:
        if not Path(host_dir).is_dir():
            raise ProvisionError(f"skill {name!r}: directory not found: {host_dir}")
        dest = f"{skills_dir}/{name}"
        guest_exec(runner, channel, ["mkdir", "-p", skills_dir], user=NODE)
        guest_copy(runner, channel, host_dir, dest)
        guest_exec(runner, channel, ["chown", "-R", f"{NODE}:{NODE}", dest], user=ROOT)


def git_config_argv(key: str, value: str) -> list[str]:
    return ["git", "config", "--global", key, value]


def provision_git(runner: Runner, channel: GuestChannel, plan: Plan,
                  addresses: Addresses, log: Callable[[str], None]) -> None:
    """insteadOf per upstream (to this backend's gate address), user.<x> per
    set git_user field, then the host's ``.git`` when a cwd was given. All
    config writes run as node so they land in /home/node/.gitconfig."""
    upstreams = plan.git_gate.upstreams if plan.git_gate else ()
    if addresses.git_gate_url and upstreams:
        from .git_gate import insteadof_pairs

        for gate_repo_url, upstream_url in insteadof_pairs(upstreams, addresses.git_gate_url):
            guest_exec(runner, channel,
                       git_config_argv(f"url.{gate_repo_url}.insteadOf", upstream_url),
                       user=NODE)
    for field_name, value in plan.git_user.fields():
        guest_exec(runner, channel, git_config_argv(f"user.{field_name}", value), user=NODE)
    if plan.cwd:
        git_dir = Path(plan.cwd) / ".git"
        if not git_dir.exists():
            log(f"git: {plan.cwd} has no .git; nothing copied to {WORKDIR}")
            return
        guest_exec(runner, channel, ["mkdir", "-p", WORKDIR], user=NODE)
        guest_copy(runner, channel, git_dir, f"{WORKDIR}/.git")
        guest_exec(runner, channel, ["chown", "-R", f"{NODE}:{NODE}", WORKDIR], user=ROOT)


def provision_supervise(runner: Runner, channel: GuestChannel, plan: Plan,
                        addresses: Addresses, log: Callable[[str], None]) -> None:
    """Register the supervise MCP server in node's user config, with the
    bottle's agent's own CLI (claude: ~/.claude.json; codex:
    ~/.codex/config.toml). A failure is logged, never raised: the bottle is
    still useful without it."""
    if not (plan.supervise and addresses.supervise_url):
        return
    from .supervise import mcp_add_argv_for

    argv = channel.exec_argv(
        mcp_add_argv_for(plan.agent, addresses.supervise_url, name=plan.supervise.server_name),
        user=NODE)
    try:
        result = runner.run(argv, check=False)
    except OSError as exc:  # the runner could not start the command at all
        log(f"supervise: MCP registration failed: {exc}")
        return
    if not result.ok:
        log(f"supervise: MCP registration failed (exit {result.returncode}): {_tail(result)}")
    else:
        log(f"supervise: registered MCP server at {addresses.supervise_url}")


# Interactive Claude Code stops at onboarding, then at "Quick safety check:
# Is this a project you created or one you trust?", unless ~/.claude.json
# says otherwise (facts/real-tools.md; re-checked by running Claude Code
# 2.1.330 offline in a pty: accepting the dialog writes
# projects["<abs dir>"].hasTrustDialogAccepted = true, and pre-seeding that
# plus hasCompletedOnboarding lands on the input prompt).
CLAUDE_CONFIG = f"{NODE_HOME}/.claude.json"
_CLAUDE_CONFIG_MERGE = """\
import json, os, sys
path, workdirs = sys.argv[1], sys.argv[2:]
try:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
except FileNotFoundError:
    data = {}
except ValueError as exc:
    sys.exit(f"{path} is not JSON ({exc}); left as it is")
if not isinstance(data, dict):
    sys.exit(f"{path} is not a JSON object; left as it is")
data["hasCompletedOnboarding"] = True
projects = data.get("projects")
if not isinstance(projects, dict):
    projects = data["projects"] = {}
for workdir in workdirs:
    entry = projects.get(workdir)
    if not isinstance(entry, dict):
        entry = projects[workdir] = {}
    entry["hasTrustDialogAccepted"] = True
tmp = path + ".bottle-tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w", encoding="utf-8") as fh:
    json.dump(data, fh, indent=2)
os.replace(tmp, path)
"""


# The directories the agent starts in: the reference backends run it in
# node's home (agent_argv's workdir), and the host cwd's .git lands in
# WORKDIR. A pre-seeded trust for the home folder is honoured (checked
# offline: only accepting the dialog there is session-only).
TRUSTED_DIRS = (NODE_HOME, WORKDIR)


def claude_config_argv(workdirs=TRUSTED_DIRS) -> list[str]:
    """The guest command merging onboarding-complete and trust for
    ``workdirs`` into node's ``~/.claude.json``: every other key
    (``mcpServers`` from ``claude mcp add``, the CLI's own state) is kept."""
    return ["python3", "-c", _CLAUDE_CONFIG_MERGE, CLAUDE_CONFIG, *workdirs]


def provision_claude_config(runner: Runner, channel: GuestChannel, plan: Plan) -> None:
    """Ready for interactive use: runs as node, after the MCP registration,
    so it merges into what ``claude mcp add`` wrote. A failure is fatal (the
    bottle would open on a dialog the user cannot see past in a pane)."""
    if plan.agent != "claude":
        return
    result = guest_exec(runner, channel, claude_config_argv(), user=NODE, check=False)
    if not result.ok:
        raise ProvisionError(f"claude config: could not update {CLAUDE_CONFIG}: {_tail(result)}")


def provision(
    plan: Plan,
    channel: GuestChannel,
    runner: Runner,
    addresses: Addresses,
    *,
    ca_pem_host_path: str,
    log: Callable[[str], None],
    background: Callable[[Callable[[], object]], None] | None = None,
) -> str | None:
    """Run every provisioning step; return the guest prompt path iff the
    prompt is non-empty (drives ``--append-system-prompt-file``).
    ``background`` (optional) takes the CA step, the slow one
    (update-ca-certificates rebuilds the whole bundle), to run beside the
    others, which touch none of its files; the caller waits for it before
    the bottle is used. Without it every step runs here, in this order."""
    check_host_inputs(plan)
    ca_step = lambda: provision_ca(runner, channel, ca_pem_host_path, log)  # noqa: E731
    if background is None:
        ca_step()
    else:
        background(ca_step)
    provision_guest_files(runner, channel, plan, plan.guest_files)
    prompt_path = provision_prompt(runner, channel, plan)
    provision_skills(runner, channel, plan.skills, skills_dir=skills_dir_for(plan.agent))
    provision_git(runner, channel, plan, addresses, log)
    provision_supervise(runner, channel, plan, addresses, log)
    provision_claude_config(runner, channel, plan)
    return prompt_path
