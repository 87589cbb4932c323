"""Live checks that the real agent CLIs work inside the bottle: LIVE-AGENT
(a request completes through egress and pipelock) and LIVE-INTERACTIVE
(interactive claude opens at its input prompt, not onboarding or trust)."""

from __future__ import annotations

import json

import pytest

from ...live import probes, upstream
from ...live.harness import API_KEY_ENV, PLACEHOLDER, LiveBottle
from ...markers import clause
from ...outcomes import environment_broken, not_supported
from .support import UNROUTED

AGENT_SCENARIOS = pytest.mark.parametrize(
    "live", ["agent-claude-routed", "agent-claude-forward", "agent-codex-routed",
             "agent-codex-forward"], indirect=True)
AGENT_PROMPT = "Reply with the one line the API gives you."
# The API path each agent's request goes to (Messages; Responses).
AGENT_API_PATH = {"claude": "/v1/messages", "codex": "/responses"}
AGENT_CLIS = ("claude", "codex")


class LiveAgents:
    """LIVE-AGENT, LIVE-INTERACTIVE."""

    # -- LIVE-AGENT ------------------------------------------------------------------------
    @clause("LIVE-AGENT")
    @AGENT_SCENARIOS
    def test_real_agent_completes_a_request(self, live, live_harness, probe_log, bottle_settings):
        """The real CLI, in the guest, through egress and pipelock to the API
        stand-in that answers for the real API host names on the bottle's
        outbound network only."""
        agent = live.scenario.agent
        if agent not in live_harness.backend.capabilities:
            not_supported(f"the backend does not declare {agent!r}")
        sites = live.wait_ready(probe_log)
        # Never run a CLI whose API name could resolve anywhere but our site.
        problem = upstream.api_aliases_problem(live_harness.engine, sites)
        if problem:
            environment_broken(f"not running {agent}: {problem}")
        env = {API_KEY_ENV[agent]: PLACEHOLDER} if live.scenario.api_route else {}
        cmd = (["claude", "-p", AGENT_PROMPT] if agent == "claude"
               else ["codex", "exec", "--skip-git-repo-check", AGENT_PROMPT])
        result = live.bottle.exec(cmd, env=env, timeout=bottle_settings.live_timeout * 4)
        output = (result.stdout + result.stderr).strip()
        seen = upstream.api_credentials_seen(live_harness.engine, sites.allowed,
                                             AGENT_API_PATH[agent])
        assert seen, (f"`{' '.join(cmd[:2])}` never reached the API stand-in (exit "
                      f"{result.returncode}): {output[-600:]}")
        real = upstream.fingerprint(live_harness.real_api_token(live.scenario))
        placeholder = upstream.fingerprint(_guest_api_credential(live))
        assert placeholder not in seen, "the API saw the guest's placeholder credential"
        assert set(seen) == {real}, (
            f"the API did not see the host's real token on every request ({len(seen)} "
            f"requests; fingerprints {sorted(set(seen))}, real {real})")
        assert result.returncode == 0 and live_harness.answer in result.stdout, (
            f"`{' '.join(cmd[:2])}` exited {result.returncode} without printing the API's "
            f"answer {live_harness.answer!r}: {output[-600:]}")

    # -- LIVE-INTERACTIVE -------------------------------------------------------------------
    @clause("LIVE-INTERACTIVE")
    @UNROUTED
    def test_interactive_claude_opens_at_its_prompt(self, live, live_harness, probe_log,
                                                    bottle_settings):
        for cap in ("claude", "tty"):
            if cap not in live_harness.backend.capabilities:
                not_supported(f"the backend does not declare {cap!r}")
        sites = live.wait_ready(probe_log)
        problem = upstream.api_aliases_problem(live_harness.engine, sites)
        if problem:
            environment_broken(f"not running claude: {problem}")
        argv = live.bottle.agent_argv([], tty=True)
        screen = probes.pty_screen(argv, until=probes.CLAUDE_INPUT_PROMPT,
                                   stop=probes.CLAUDE_DIALOGS,
                                   timeout=bottle_settings.live_timeout * 2)
        probe_log.add("interactive-claude", screen.seconds,
                      "prompt" if screen.reached else f"stopped: {screen.stopped_by}")
        dialog = screen.stopped_by
        assert dialog is None, (
            f"interactive claude stopped at {dialog!r} instead of its input prompt: "
            f"{screen.tail(600)}")
        assert screen.reached, (
            f"interactive claude showed no input prompt within {screen.seconds:.0f}s: "
            f"{screen.tail(600)}")


def _guest_api_credential(live: LiveBottle) -> str:
    """What the guest's CLI holds and sends: the API key placeholder, or the
    access token of the sign-in placeholder provisioned."""
    if live.scenario.api_route:
        return PLACEHOLDER
    for gf in live.plan.guest_files:
        data = json.loads(gf.content)
        if "tokens" in data:
            return data["tokens"]["access_token"]
        if "claudeAiOauth" in data:
            return data["claudeAiOauth"]["accessToken"]
    raise AssertionError("the plan provisions no sign-in placeholder for a forwarding bottle")
