"""Live halves of PROV-CODEX-PROMPT, PROV-CODEX-SKILLS and PROV-CODEX-MCP.

A codex bottle with a prompt, a skill and supervise (scenario
``codex-provisioned``). Per clause, one test reads what provisioning left
where Codex reads it (owner, mode, content, as node; node's ``codex mcp list
--json``), and one shows Codex using it over the bottle's network: the real
``codex exec`` in the guest, against the API stand-in, which reports the
``bottle-mark-*`` strings of each request body (the prompt's, the skill's
description; nothing else of the body is logged); and an MCP handshake from
the guest, as node, at the URL Codex has, which must list supervise's tools.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from ...live import upstream
from ...live.harness import API_KEY_ENV, PLACEHOLDER, PROMPT_MARK, SKILL_MARK, SKILL_NAME, LiveBottle
from ...markers import clause
from ...outcomes import environment_broken, not_supported

CODEX_PROVISIONED = pytest.mark.parametrize("live", ["codex-provisioned"], indirect=True)
CODEX_PROMPT = "/home/node/.codex/AGENTS.md"
CODEX_SKILLS = "/home/node/.agents/skills"
CODEX_CONFIG = "/home/node/.codex/config.toml"
# supervise's tools (bottle_bundle/supervise_server.py).
SUPERVISE_TOOLS = ("status", "request_approval")
_CODEX_PROMPT_ARG = "Reply with the one line the API gives you."

# An MCP client over streamable HTTP in the guest (stdlib only): initialize,
# initialized, tools/list; prints the tool names as JSON. urllib honours the
# guest's HTTP(S)_PROXY / NO_PROXY as the agent's own client does.
MCP_TOOLS_PROBE = r"""
import json, sys, urllib.request
url = sys.argv[1]
session = None
def call(method, params=None, ident=None):
    global session
    msg = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    if ident is not None:
        msg["id"] = ident
    headers = {"Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
    req = urllib.request.Request(url, json.dumps(msg).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=15) as resp:
        session = resp.headers.get("Mcp-Session-Id") or session
        body = resp.read().decode()
    if ident is None:
        return None
    for line in body.splitlines():
        if line.startswith("data:"):
            body = line[5:]
    return json.loads(body)
call("initialize", {"protocolVersion": "2025-03-26", "capabilities": {},
                    "clientInfo": {"name": "bottle-live-probe", "version": "1"}}, 1)
call("notifications/initialized")
print(json.dumps(sorted(t["name"] for t in call("tools/list", {}, 2)["result"]["tools"])))
"""


def _codex_session(live: LiveBottle, live_harness, probe_log, timeout: float) -> list:
    """Run `codex exec` once per bottle; the API bodies it sent (cached)."""
    cached = live.__dict__.get("_codex_bodies")
    if cached is not None:
        return cached
    if "codex" not in live_harness.backend.capabilities:
        not_supported("the backend does not declare 'codex'")
    sites = live.wait_ready(probe_log)
    problem = upstream.api_aliases_problem(live_harness.engine, sites)
    if problem:
        environment_broken(f"not running codex: {problem}")
    cmd = ["codex", "exec", "--skip-git-repo-check", _CODEX_PROMPT_ARG]
    result = live.bottle.exec(cmd, env={API_KEY_ENV["codex"]: PLACEHOLDER}, timeout=timeout)
    bodies = upstream.api_bodies_seen(live_harness.engine, sites.allowed, "/responses")
    output = (result.stdout + result.stderr).strip()
    assert bodies, (f"`codex exec` never reached the API stand-in (exit {result.returncode}): "
                    f"{output[-600:]}")
    live.__dict__["_codex_bodies"] = bodies
    live.__dict__["_codex_output"] = output
    return bodies


def _stat(live: LiveBottle, path: str) -> list[str]:
    st = live.bottle.exec(["stat", "-c", "%U %a", path], user="root")
    assert st.ok, f"{path} is missing in the guest: {st.stderr.strip()}"
    return st.stdout.split()


class LiveCodexProvisioning:
    """PROV-CODEX-PROMPT, PROV-CODEX-SKILLS, PROV-CODEX-MCP (live halves).

    Each clause has a test of what lies in the guest (no network needed) and
    one of Codex using it over the bottle's network (NOT_SUPPORTED where the
    backend offers no outbound network to stage the API stand-in on, as on
    the smolvm stand-in)."""

    # -- PROV-CODEX-PROMPT -------------------------------------------------------------
    @clause("PROV-CODEX-PROMPT", tier="live")
    @CODEX_PROVISIONED
    def test_codex_prompt_file(self, live, probe_log):
        argv = live.bottle.agent_argv([], tty=False)
        assert "--append-system-prompt-file" not in argv, (
            f"a codex bottle's agent_argv passes Claude's prompt flag: {argv!r}")
        seen = _stat(live, CODEX_PROMPT)
        assert seen == ["node", "600"], (
            f"{CODEX_PROMPT} is {' '.join(seen)!r}, expected owner node, mode 600")
        text = live.bottle.exec(["cat", CODEX_PROMPT])
        assert text.ok and text.stdout == live.plan.prompt, (
            f"{CODEX_PROMPT} (read as node) differs from the bottle's prompt")

    @clause("PROV-CODEX-PROMPT", tier="live")
    @CODEX_PROVISIONED
    def test_codex_sends_the_prompt(self, live, live_harness, probe_log, bottle_settings):
        live.wait_ready(probe_log)  # the API stand-in staged (NOT_SUPPORTED without)
        bodies = _codex_session(live, live_harness, probe_log, bottle_settings.live_timeout * 4)
        assert all(PROMPT_MARK in b.marks for b in bodies), (
            f"codex did not send the prompt ({PROMPT_MARK}) with every request: marks seen "
            f"{[sorted(b.marks) for b in bodies]}")

    # -- PROV-CODEX-SKILLS -------------------------------------------------------------
    @clause("PROV-CODEX-SKILLS", tier="live")
    @CODEX_PROVISIONED
    def test_codex_skill_files(self, live, live_harness, probe_log):
        dest = f"{CODEX_SKILLS}/{SKILL_NAME}"
        source = live_harness.skill_dir()
        listing = live.bottle.exec(["sh", "-c", f"cd {dest} && find . -type f | sort"])
        assert listing.ok, f"skill dir {dest} missing: {listing.stderr.strip()}"
        expected = sorted("./" + str(p.relative_to(source)) for p in source.rglob("*")
                          if p.is_file())
        assert listing.stdout.split() == expected, f"skill files differ: {listing.stdout.split()}"
        foreign = live.bottle.exec(["find", dest, "!", "-user", "node"], user="root")
        assert foreign.ok and not foreign.stdout.strip(), (
            f"not owned by node: {foreign.stdout.strip() or foreign.stderr.strip()}")
        text = live.bottle.exec(["cat", f"{dest}/SKILL.md"])
        assert text.stdout == (source / "SKILL.md").read_text(), "SKILL.md content differs"
        claude = live.bottle.exec(["sh", "-c", "ls -A /home/node/.claude/skills 2>/dev/null"],
                                  user="root")
        assert not claude.stdout.strip(), (
            f"a codex bottle put skills in ~/.claude/skills: {claude.stdout.strip()}")

    @clause("PROV-CODEX-SKILLS", tier="live")
    @CODEX_PROVISIONED
    def test_codex_lists_the_skill(self, live, live_harness, probe_log, bottle_settings):
        live.wait_ready(probe_log)  # the API stand-in staged (NOT_SUPPORTED without)
        bodies = _codex_session(live, live_harness, probe_log, bottle_settings.live_timeout * 4)
        assert all(SKILL_MARK in b.marks for b in bodies), (
            f"codex did not list the skill ({SKILL_MARK} in its description) in its requests: "
            f"marks seen {[sorted(b.marks) for b in bodies]}")

    # -- PROV-CODEX-MCP ----------------------------------------------------------------
    @clause("PROV-CODEX-MCP", tier="live")
    @CODEX_PROVISIONED
    def test_codex_supervise_registered(self, live, live_harness, probe_log):
        url = _registered_supervise_url(live, live_harness)
        listed = live.bottle.exec(["codex", "mcp", "list", "--json"])
        assert listed.ok, f"`codex mcp list --json` failed as node: {listed.stderr.strip()[-300:]}"
        by_name = {s.get("name"): s for s in json.loads(listed.stdout or "[]")}
        seen = (by_name.get("supervise") or {}).get("transport") or {}
        assert seen.get("type") == "streamable_http" and seen.get("url") == url, (
            f"node's codex does not list supervise at {url}: {listed.stdout.strip()[-300:]}")

    @clause("PROV-CODEX-MCP", tier="live")
    @CODEX_PROVISIONED
    def test_codex_reaches_supervise(self, live, live_harness, probe_log, bottle_settings):
        url = _registered_supervise_url(live, live_harness)
        live.wait_ready(probe_log)  # the bottle's network is up (NOT_SUPPORTED without one)
        # The registered URL, dialled from the guest as node with the agent's
        # environment (its proxy variables too), answers as supervise.
        probe = live.bottle.exec(["python3", "-c", MCP_TOOLS_PROBE, url],
                                 timeout=bottle_settings.live_timeout)
        assert probe.ok, (f"no MCP server answers at {url} from the guest: "
                          f"{(probe.stdout + probe.stderr).strip()[-400:]}")
        tools = json.loads(probe.stdout.strip().splitlines()[-1])
        assert set(SUPERVISE_TOOLS) <= set(tools), (
            f"the server at {url} lists tools {tools}, not supervise's {list(SUPERVISE_TOOLS)}")


def _registered_supervise_url(live: LiveBottle, live_harness) -> str:
    """The url of [mcp_servers.supervise] in node's ~/.codex/config.toml,
    after checking the file is node's and root's config has no entry."""
    if "supervise" not in live_harness.backend.capabilities:
        not_supported("the backend does not declare 'supervise'")
    owner = _stat(live, CODEX_CONFIG)[0]
    assert owner == "node", f"{CODEX_CONFIG} is owned by {owner}, not node"
    raw = live.bottle.exec(["cat", CODEX_CONFIG])
    assert raw.ok, f"{CODEX_CONFIG} unreadable as node: {raw.stderr.strip()}"
    try:
        servers = tomllib.loads(raw.stdout).get("mcp_servers", {})
    except tomllib.TOMLDecodeError as exc:
        raise AssertionError(f"{CODEX_CONFIG} is not TOML: {exc}") from None
    entry = servers.get("supervise")
    assert isinstance(entry, dict) and str(entry.get("url", "")).startswith("http"), (
        f"{CODEX_CONFIG} has no [mcp_servers.supervise] with a url: {sorted(servers)}")
    root_cfg = live.bottle.exec(["sh", "-c", "cat /root/.codex/config.toml 2>/dev/null"],
                                user="root")
    assert "supervise" not in root_cfg.stdout, "supervise was registered in root's codex config"
    return entry["url"]
