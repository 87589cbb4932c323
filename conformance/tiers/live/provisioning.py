"""Live halves of PROV-PROMPT, PROV-SKILLS and PROV-MCP."""

from __future__ import annotations

import json

from ...live import probes
from ...live.harness import SKILL_NAME
from ...markers import clause
from ...outcomes import environment_broken
from .support import BOTH, ROUTED


class LiveProvisioning:
    """What provisioning left in the guest."""

    # -- PROV-PROMPT / PROV-SKILLS / PROV-MCP (live halves) ---------------------------------
    @clause("PROV-PROMPT", tier="live")
    @BOTH
    def test_prompt_file_in_guest(self, live, probe_log):
        path = live.plan.prompt_path
        argv = live.bottle.agent_argv([], tty=False)
        flagged = "--append-system-prompt-file" in argv
        if not live.plan.prompt:
            assert not flagged, f"empty prompt, yet agent_argv passes the prompt flag: {argv!r}"
            return
        assert flagged and path in argv, f"non-empty prompt, yet agent_argv lacks the flag: {argv!r}"
        st = live.bottle.exec(["stat", "-c", "%U %a", path], user="root")
        assert st.ok, f"prompt file {path} missing in the guest: {st.stderr.strip()}"
        assert st.stdout.split() == ["node", "600"], (
            f"prompt file {path} is {st.stdout.strip()!r}, expected owner node, mode 600")
        text = live.bottle.exec(["cat", path])
        assert text.ok and text.stdout == live.plan.prompt, "prompt file content differs (read as node)"

    @clause("PROV-SKILLS", tier="live")
    @ROUTED
    def test_skills_in_guest(self, live, live_harness, probe_log):
        dest = f"/home/node/.claude/skills/{SKILL_NAME}"
        source = live_harness.skill_dir()
        listing = live.bottle.exec(["sh", "-c", f"cd {dest} && find . -type f | sort"])
        assert listing.ok, f"skill dir {dest} missing: {listing.stderr.strip()}"
        expected = sorted("./" + str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
        assert listing.stdout.split() == expected, f"skill files differ: {listing.stdout.split()}"
        foreign = live.bottle.exec(["find", dest, "!", "-user", "node"], user="root")
        assert foreign.ok and not foreign.stdout.strip(), (
            f"not owned by node: {foreign.stdout.strip() or foreign.stderr.strip()}")
        text = live.bottle.exec(["cat", f"{dest}/SKILL.md"])
        assert text.stdout == (source / "SKILL.md").read_text(), "SKILL.md content differs"

    @clause("PROV-MCP", tier="live")
    @ROUTED
    def test_mcp_registered_for_node_only(self, live, live_harness, probe_log):
        agent = live.plan.agent
        which = live.bottle.exec(["sh", "-c", f"command -v {agent}"])
        if not which.ok:
            environment_broken(f"the agent image has no {agent} CLI (command -v {agent} failed), "
                               "so MCP registration cannot be checked")
        node_cfg = live.bottle.exec(["cat", "/home/node/.claude.json"])
        assert node_cfg.ok, f"/home/node/.claude.json missing: {node_cfg.stderr.strip()}"
        servers = json.loads(node_cfg.stdout).get("mcpServers", {})
        assert "supervise" in servers, f"supervise not in node's user MCP config: {sorted(servers)}"
        root_cfg = live.bottle.exec(["sh", "-c", "cat /root/.claude.json 2>/dev/null || echo {}"],
                                    user="root")
        assert "supervise" not in json.loads(root_cfg.stdout or "{}").get("mcpServers", {}), (
            "supervise was registered in root's ~/.claude.json")
        seen = probes.agent_framed(live.bottle, agent, f"{agent} mcp get supervise",
                                   live_harness.runner, log=probe_log, name="mcp-get", timeout=60)
        assert seen.ok and servers["supervise"].get("url", "") in seen.stdout, (
            f"the agent itself does not see the supervise server: "
            f"{(seen.stdout + seen.stderr).strip()[-300:]}")

