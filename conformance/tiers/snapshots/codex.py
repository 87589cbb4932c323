"""Snapshot-tier checks for PROV-CODEX-PROMPT, PROV-CODEX-SKILLS, PROV-CODEX-MCP.

A codex bottle gets the prompt, skills and supervise where Codex reads them,
not where Claude Code does (issue 14 item 5; the codex-rs source of each
place is cited in `bottle_api.conventions`):

- prompt: ``~/.codex/AGENTS.md``, Codex's global instructions;
- skills: ``~/.agents/skills/<name>``, Codex's user skills root;
- supervise: ``codex mcp add <name> --url <url>`` as node, which writes
  ``[mcp_servers.<name>] url = ...`` into ``~/.codex/config.toml``.

The ``check_*`` functions read one `Recording` and are shared with the
invariant tier, which runs them over generated specs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import pytest

from bottle_api.conventions import SUPERVISE_SERVER_NAME
from bottle_api.runner import RecordingRunner
from bottle_api.spec import BottleSpec

from ...recording import Recording, is_guest_copy, is_guest_exec, reply_when
from ...scenarios import Scenario, scenario_params
from .facts import (
    _CODEX_ONLY,
    _CODEX_SUPERVISED,
    CODEX_PROMPT_PATH,
    CODEX_SKILLS_DIR,
    PROMPT_FLAG,
    SKILLS_DIR,
)
from .readers import (
    command_at,
    joined,
    launch_failed,
    launched,
    node_problem,
    prompt_on_argv,
    show,
)

CODEX_MCP_ADD = ("codex", "mcp", "add")
CLAUDE_MCP_ADD = ("claude", "mcp", "add")


def _runs(rec: Recording) -> list[tuple[int, tuple[str, ...]]]:
    return [(i, c.argv) for i, c in rec.indexed() if c.kind == "run"]


def _adds(rec: Recording, words: Sequence[str]) -> list[tuple[int, tuple[str, ...], int]]:
    out = []
    for i, argv in _runs(rec):
        at = command_at(argv, list(words))
        if at >= 0:
            out.append((i, argv, at))
    return out


def _copy_to(rec: Recording, dest: str, source: str | None = None) -> list[int]:
    """Indexes of the commands copying to ``dest``: with ``source``, any
    command naming both (a tar stream counts); without, a guest copy or a
    host-side command (not a guest exec, whose chmod also ends with it)."""
    out = []
    for i, a in _runs(rec):
        if not any(t.endswith(dest) for t in a):
            continue
        if (source in a) if source is not None else (is_guest_copy(a) or not is_guest_exec(a)):
            out.append(i)
    return out


def _after(rec: Recording, index: int, pattern: str) -> bool:
    return any(i > index and re.search(pattern, joined(a)) for i, a in _runs(rec))


def check_codex_prompt(rec: Recording,
                       again: Callable[[BottleSpec], Recording] | None = None) -> None:
    """PROV-CODEX-PROMPT over one recorded codex launch; ``again`` as in
    `prompt_on_argv` (generated prompts may be as short as ``0``)."""
    __tracebackhide__ = True
    for tty, argv in rec.agent_argvs.items():
        assert not any(PROMPT_FLAG in t for t in argv), (
            f"agent_argv(tty={tty}) of a codex bottle passes Claude's {PROMPT_FLAG}, "
            f"which codex does not read: {show(rec, argv)}")
    text = rec.spec.prompt.strip()
    if not text:
        writes = _copy_to(rec, CODEX_PROMPT_PATH)
        assert not writes, (
            f"the prompt is empty, yet {CODEX_PROMPT_PATH} is written: "
            + "; ".join(show(rec, rec.runner.calls[i].argv) for i in writes))
        return
    leaked = prompt_on_argv(rec, text, again)
    assert not leaked, ("the prompt text is on an argv; it must travel as a file: "
                        + ", ".join(rec.normalise(repr(t)) for t in leaked))
    copies = _copy_to(rec, CODEX_PROMPT_PATH)
    assert copies, (
        f"a non-empty prompt in a codex bottle must land at {CODEX_PROMPT_PATH} "
        "(Codex's global instructions, codex-rs core/src/agents_md.rs), but no command "
        "copies it there")
    f = re.escape(CODEX_PROMPT_PATH)
    for pattern, what in ((rf"chmod 0?600 {f}", "chmod 0600"),
                          (rf"chown node(:node)? {f}", "chown node")):
        assert _after(rec, copies[-1], pattern), (
            f"{CODEX_PROMPT_PATH} is copied but never `{what}` afterwards")


def check_codex_skills(rec: Recording) -> None:
    """PROV-CODEX-SKILLS over one recorded codex launch."""
    __tracebackhide__ = True
    claude = [a for _, a in _runs(rec) if any(f"{SKILLS_DIR}/" in t or t.endswith(SKILLS_DIR)
                                              for t in a)]
    assert not claude, (
        f"a codex bottle writes into Claude's {SKILLS_DIR}, which codex never reads: "
        + "; ".join(show(rec, a) for a in claude))
    if not rec.spec.skills:
        touching = [a for _, a in _runs(rec) if any(f"{CODEX_SKILLS_DIR}/" in t for t in a)]
        assert not touching, ("no skills declared, yet commands write into "
                              f"{CODEX_SKILLS_DIR}/: " + "; ".join(show(rec, a) for a in touching))
        return
    for skill in rec.spec.skills:
        dest = f"{CODEX_SKILLS_DIR}/{skill.name}"
        copies = _copy_to(rec, dest, str(skill))
        assert len(copies) == 1, (
            f"expected one copy of skill {skill.name!r} to {dest} (Codex's user skills, "
            f"codex-rs core-skills/src/loader.rs), saw {len(copies)}")
        chown = (rf"chown -R node(:node)? {re.escape(CODEX_SKILLS_DIR)}"
                 rf"(/{re.escape(skill.name)})?(\s|$)")
        assert _after(rec, copies[0], chown), (
            f"skill {skill.name!r} is copied to {dest} but never `chown -R node` afterwards")


def check_codex_mcp(rec: Recording, reachable: set[str]) -> None:
    """PROV-CODEX-MCP over one recorded codex launch; ``reachable``: the
    ``host:port`` addresses at which the agent reaches supervise."""
    __tracebackhide__ = True
    claude = _adds(rec, CLAUDE_MCP_ADD)
    assert not claude, (
        "a codex bottle registers supervise with `claude mcp add`, which codex never "
        "reads: " + "; ".join(show(rec, a) for _, a, _ in claude))
    adds = _adds(rec, CODEX_MCP_ADD)
    if not rec.spec.supervise:
        assert not adds, ("supervise is off, yet an MCP server is registered: "
                          + "; ".join(show(rec, a) for _, a, _ in adds))
        return
    assert len(adds) == 1, (
        f"supervise is on in a codex bottle: expected one `codex mcp add`, saw {len(adds)}: "
        + ("; ".join(show(rec, a) for _, a, _ in adds) or "none"))
    _, argv, at = adds[0]
    tail = list(argv[at:])
    if argv[at] != CODEX_MCP_ADD[0]:  # inside one `sh -c` token
        tail = argv[at][argv[at].index(" ".join(CODEX_MCP_ADD)):].split()
    urls = [tail[k + 1] for k, t in enumerate(tail[:-1]) if t == "--url"]
    urls += [t[len("--url="):] for t in tail if t.startswith("--url=")]
    assert len(urls) == 1, (
        f"`codex mcp add` must name the server's URL once with --url (a streamable HTTP "
        f"entry; codex-rs cli/src/mcp_cmd.rs AddMcpStreamableHttpArgs): {show(rec, argv)}")
    assert SUPERVISE_SERVER_NAME in tail[3:], (
        f"`codex mcp add` does not name the server {SUPERVISE_SERVER_NAME!r}: {show(rec, argv)}")
    url = urlsplit(urls[0])
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        port = None
    assert url.scheme in ("http", "https"), f"--url {urls[0]!r} is not an http(s) URL"
    assert reachable, "no supervise address the agent can reach was found in the launch"
    assert f"{url.hostname}:{port}" in reachable, (
        f"supervise is registered at {urls[0]!r}, not at an address the agent reaches "
        f"({sorted(reachable)}): {show(rec, argv)}")
    problem = node_problem(argv, at)
    assert problem is None, (
        f"`codex mcp add` must run as node with HOME=/home/node (else the entry lands in "
        f"/root/.codex/config.toml and node's codex sees no server), but {problem}: "
        f"{show(rec, argv)}")


class CodexSnapshots:
    """PROV-CODEX-PROMPT, PROV-CODEX-SKILLS, PROV-CODEX-MCP."""

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CODEX-PROMPT", tier="snapshot",
                                                         **_CODEX_ONLY))
    def test_codex_prompt_in_agents_md(self, backend, scenario: Scenario, bottle_recorder):
        """A non-empty prompt lands at ~/.codex/AGENTS.md (0600, node) as a
        file; never Claude's flag."""
        check_codex_prompt(launched(bottle_recorder(scenario), agent=True))

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CODEX-SKILLS", tier="snapshot",
                                                         **_CODEX_ONLY))
    def test_codex_skills_in_agents_skills(self, backend, scenario: Scenario, bottle_recorder):
        """Each skill to ~/.agents/skills/<name>, chowned -R node; nothing
        under ~/.claude/skills."""
        check_codex_skills(launched(bottle_recorder(scenario)))

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CODEX-MCP", tier="snapshot",
                                                         **_CODEX_ONLY))
    def test_codex_mcp_registered(self, backend, scenario: Scenario, bottle_recorder):
        """supervise on: one `codex mcp add supervise --url <reachable>` as
        node, no `claude mcp add`; off: no registration."""
        from .mcp import McpSnapshots

        rec = launched(bottle_recorder(scenario))
        check_codex_mcp(rec, McpSnapshots._supervise_addresses(rec) if rec.spec.supervise
                        else set())

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CODEX-MCP", tier="snapshot",
                                                         **_CODEX_SUPERVISED))
    def test_codex_mcp_failure_logged_not_fatal(self, backend, scenario: Scenario,
                                                bottle_recorder):
        """A failing `codex mcp add` is reported through progress and the
        launch still succeeds."""

        def failing_mcp(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: command_at(argv, list(CODEX_MCP_ADD)) >= 0,
                       returncode=1, stderr="error: simulated MCP registration failure")

        rec = bottle_recorder(scenario, script=failing_mcp)
        assert not launch_failed(rec), (
            f"a failed MCP registration must not fail the launch: {rec.describe_error()}")
        adds = _adds(rec, CODEX_MCP_ADD)
        assert adds and all(rec.runner.calls[i].returncode != 0 for i, _, _ in adds), (
            "the scripted MCP failure was never hit (no `codex mcp add` ran)")
        logged = [m for m in rec.progress
                  if re.search(r"fail|error", m, re.I) and re.search(r"mcp|supervise", m, re.I)]
        assert logged, (
            "the MCP registration failure is not logged: launch's progress callback "
            f"said {list(rec.progress)}")
