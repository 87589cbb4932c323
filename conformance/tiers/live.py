"""Tier 3: live probes against running bottles, asserted from INSIDE the guest.

Traffic goes only to loopback and to the bottle's and the harness's own
containers (the "internet" is a test upstream, see `conformance.live`).
A test that cannot run because the environment lacks something (no engine,
no image) ends as ERROR via `environment_broken`; a backend without an
optional live hook (`Bottle.outbound_network`, `internal_endpoints`,
`stop_daemon`, `Backend.live_unsupported`) gets NOT_SUPPORTED. Never PASSED.

One bottle per scenario per test class (and xdist worker) is shared by the
probes that only look; LIVE-FAILCLOSED and LIVE-TEARDOWN launch their own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from pathlib import Path

import pytest

from bottle_api.runner import SubprocessRunner

from ..live import probes, upstream
from ..live.canary import Canary
from ..live.harness import (
    API_KEY_ENV,
    GIT_USER,
    PLACEHOLDER,
    SKILL_NAME,
    TOKEN_PATTERN,
    SCENARIOS,
    LiveBottle,
    LiveHarness,
    TracingRunner,
    new_token,
)
from ..live.resources import PREFIX
from ..live.tls import CA_COMMON_NAME
from ..markers import clause
from ..outcomes import environment_broken, not_supported

BOTH = pytest.mark.parametrize("live", ["unrouted", "routed"], indirect=True)
AGENT_SCENARIOS = pytest.mark.parametrize(
    "live", ["agent-claude-routed", "agent-claude-forward", "agent-codex-routed",
             "agent-codex-forward"], indirect=True)
AGENT_PROMPT = "Reply with the one line the API gives you."
# The API path each agent's request goes to (Messages; Responses).
AGENT_API_PATH = {"claude": "/v1/messages", "codex": "/responses"}
AGENT_CLIS = ("claude", "codex")
ROUTED = pytest.mark.parametrize("live", ["routed"], indirect=True)
UNROUTED = pytest.mark.parametrize("live", ["unrouted"], indirect=True)
SCAN_ROOTS = ("/home/node", "/root", "/tmp", "/var/tmp", "/etc", "/usr/local/share")
CA_ENV_NAMES = ("CODEX_CA_CERTIFICATE", "NODE_EXTRA_CA_CERTS")


def _marker(what: str) -> str:
    return f"/{what}-{secrets.token_hex(6)}"


def _unreached(results) -> list[str]:
    return [f"{r.target} ({r.seconds}s)" for r in results if r.connected]


def _call_hook(fn, what: str):
    try:
        return fn()
    except NotImplementedError:
        not_supported(f"backend does not implement {what}")


class LiveTier:
    """Live tests; mixed into `BackendConformance`. Need capability ``live``."""

    # -- fixtures ---------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def live_harness(cls, backend, tmp_path_factory, bottle_settings):
        harness = LiveHarness(backend, SubprocessRunner(), tmp_path_factory.mktemp("live"),
                              timeout=bottle_settings.live_timeout,
                              engine_cli=bottle_settings.fixture_engine)
        harness.check_environment()
        try:
            yield harness
        finally:
            harness.cleanup()

    @pytest.fixture
    def probe_log(self, request):
        log = probes.ProbeLog()
        yield log
        request.node.user_properties.extend(log.properties())

    @pytest.fixture
    def live(self, request, live_harness, probe_log) -> LiveBottle:
        """The shared bottle of the scenario named by indirect parametrization."""
        lb = live_harness.bottle(request.param)
        request.node.user_properties.extend(lb.properties)
        return lb

    @pytest.fixture(scope="class")
    @classmethod
    def canary(cls, bottle_settings):
        with Canary(lifetime=bottle_settings.live_timeout * 10) as c:
            yield c

    # -- LIVE-SMOKE ---------------------------------------------------------------
    @clause("LIVE-SMOKE")
    @UNROUTED
    def test_exec_echo_round_trips(self, live, probe_log, bottle_settings):
        result = live.bottle.exec(["echo", "bottle-conformance-smoke"],
                                  timeout=bottle_settings.live_timeout)
        assert result.returncode == 0, f"echo exited {result.returncode}: {result.stderr}"
        assert result.stdout.strip() == "bottle-conformance-smoke"
        failing = live.bottle.exec(["sh", "-c", "echo to-stderr >&2; exit 7"],
                                   timeout=bottle_settings.live_timeout)
        assert failing.returncode == 7, f"exit status lost: got {failing.returncode}"
        assert "to-stderr" in failing.stderr, "stderr of the guest command was lost"
        # Each agent CLI the backend declares runs in the guest (issue 9: docker
        # declared codex, and its image had no codex binary).
        declared = [cli for cli in AGENT_CLIS if cli in live.harness.backend.capabilities]
        for cli in declared:
            version = live.bottle.exec([cli, "--version"], timeout=bottle_settings.live_timeout)
            assert version.returncode == 0 and version.stdout.strip(), (
                f"the backend declares {cli!r} but `{cli} --version` in the guest exited "
                f"{version.returncode}: {(version.stdout + version.stderr).strip()[-300:]}")
            probe_log.add(f"{cli}-version", 0.0, version.stdout.strip()[:80])

    # -- EXEC-USER (live half) --------------------------------------------------------
    @clause("EXEC-USER", tier="live")
    @ROUTED
    def test_live_agent_and_user_state_run_as_node(self, live, live_harness, probe_log):
        framed = probes.agent_framed(live.bottle, live.plan.agent,
                                     'id -un; printf "%s\\n" "$HOME"', live_harness.runner,
                                     log=probe_log)
        assert framed.ok, f"agent-framed shell failed: {framed.stderr.strip()[-300:]}"
        assert framed.stdout.splitlines()[:2] == ["node", "/home/node"], (
            f"the agent's framing runs as {framed.stdout.splitlines()[:2]!r}, "
            "expected user node with HOME=/home/node")
        as_node = live.bottle.exec(["sh", "-c", 'id -un; printf "%s\\n" "$HOME"'])
        assert as_node.stdout.splitlines()[:2] == ["node", "/home/node"], (
            f"exec as node gave {as_node.stdout.splitlines()[:2]!r}")
        as_root = live.bottle.exec(["id", "-un"], user="root")
        assert as_root.stdout.strip() == "root", "exec(user='root') did not run as root"
        # User state written by provisioning lands in node's home, not root's.
        gitcfg = live.bottle.exec(["sh", "-c", "stat -c %U /home/node/.gitconfig && "
                                   "git config --global user.email"])
        assert gitcfg.ok and gitcfg.stdout.split() == ["node", GIT_USER.email], (
            f"node's ~/.gitconfig missing, not node's, or without git_user: "
            f"{(gitcfg.stdout + gitcfg.stderr).strip()[-300:]}")
        root_cfg = live.bottle.exec(["sh", "-c", "cat /root/.gitconfig 2>/dev/null || true"],
                                    user="root")
        assert GIT_USER.email not in root_cfg.stdout, "git_user was written to /root/.gitconfig"

    # -- LIVE-LOOPBACK ----------------------------------------------------------------
    @clause("LIVE-LOOPBACK")
    @BOTH
    def test_host_loopback_canary_unreachable(self, live, canary, probe_log):
        canary.self_test()
        before = canary.hits
        results = probes.tcp(live.bottle, [("127.0.0.1", canary.port), ("@gateway", canary.port)],
                             log=probe_log, name="canary")
        assert not _unreached(results), (
            f"the guest reached the host-loopback canary: {_unreached(results)}")
        assert canary.hits == before, (
            f"the canary on 127.0.0.1:{canary.port} counted {canary.hits - before} "
            "connection(s) during the guest probe")
        control = probes.tcp(live.bottle, [("@first-hop", 0)], log=probe_log, name="control")
        assert control[0].connected, (
            f"control failed: the guest cannot reach its own first hop ({control[0].target}: "
            f"{control[0].error}), so the canary result proves nothing")

    # -- LIVE-BYPASS --------------------------------------------------------------------
    @clause("LIVE-BYPASS")
    @BOTH
    def test_no_way_out_but_the_first_hop(self, live, live_harness, probe_log):
        sites = live.wait_ready(probe_log)
        internal = _call_hook(live.bottle.internal_endpoints, "Bottle.internal_endpoints()")
        assert internal, "internal_endpoints() named no daemon to keep from the agent"
        targets = [(ip, port) for ip in sites.all_ips() for port in (80, 443)]
        for addrs in internal.values():
            for addr in addrs:
                host, _, port = addr.rpartition(":")
                targets.append((host, int(port)))
        marker = _marker("bypass")
        results, direct_http = probes.concurrently(
            lambda: probes.tcp(live.bottle, targets + [("@first-hop", 0)], log=probe_log,
                               name="bypass"),
            lambda: probes.http(live.bottle, f"http://{sites.allowed.ips[0]}{marker}",
                                no_proxy=True, log=probe_log, name="bypass-http", timeout=3))
        *direct, control = results
        assert control.connected, (
            f"control failed: the guest cannot reach its first hop {control.target}: "
            f"{control.error}")
        assert not _unreached(direct), (
            f"the guest reached, around its first hop: {_unreached(direct)} "
            f"(internal daemons: {dict(internal)})")
        assert direct_http.echo is None, "the test upstream answered a request that bypassed the proxies"
        assert not upstream.requests_seen(live_harness.engine, sites.allowed, marker)

    # -- LIVE-PIPELOCK ------------------------------------------------------------------
    @clause("LIVE-PIPELOCK")
    @BOTH
    def test_pipelock_answers_and_denies(self, live, live_harness, probe_log):
        sites = live.wait_ready(probe_log)
        ok = probes.http(live.bottle, f"http://{upstream.UPSTREAM_HOST}{_marker('allowed')}",
                         log=probe_log, name="allowed")
        assert ok.echo is not None, f"allowed host not reached through the first hop: {ok.describe()}"
        assert ok.echo["host"] == upstream.UPSTREAM_HOST
        marker = _marker("denied")
        plain = probes.http(live.bottle, f"http://{upstream.DENIED_HOST}{marker}",
                            log=probe_log, name="denied-http")
        assert plain.status == 403, f"non-allowlisted host over http: {plain.describe()}, expected 403"
        tls = probes.http(live.bottle, f"https://{upstream.DENIED_HOST}{marker}",
                          log=probe_log, name="denied-https")
        assert tls.echo is None, f"non-allowlisted host answered over https: {tls.describe()}"
        if not live.plan.routed:  # pipelock is the hop: it refuses the CONNECT itself
            assert 403 in (tls.connect_status, tls.status), (
                f"non-allowlisted host over https: {tls.describe()}, expected 403")
        seen = upstream.requests_seen(live_harness.engine, sites.denied, marker)
        assert not seen, f"requests reached the non-allowlisted host: {seen}"

    # -- LIVE-AUTH ---------------------------------------------------------------------
    @clause("LIVE-AUTH")
    @ROUTED
    def test_real_token_only_upstream(self, live, live_harness, probe_log):
        live.wait_ready(probe_log)
        auth = {"Authorization": f"Bearer {PLACEHOLDER}"}
        routed = probes.http(live.bottle, f"https://{upstream.UPSTREAM_HOST}{_marker('auth')}",
                             headers=auth, log=probe_log, name="routed")
        assert routed.echo is not None, f"routed request failed: {routed.describe()}"
        got = routed.echo["authorization"]
        assert got == f"Bearer {live_harness.token}", (
            "the routed request did not arrive with the real token (it arrived with "
            + ("the placeholder" if got and PLACEHOLDER in got else "something else") + ")")
        plain = probes.http(live.bottle, f"https://{upstream.PLAIN_HOST}{_marker('plain')}",
                            headers=auth, log=probe_log, name="unrouted-host")
        assert plain.echo is not None, f"allowed, unrouted host failed: {plain.describe()}"
        assert plain.echo["authorization"] == f"Bearer {PLACEHOLDER}", (
            "a host without a route did not get the guest's own header unchanged")
        # The guest must hold no real token anywhere: scan files and every
        # process's environ/cmdline; a decoy of the same shape proves the scan sees.
        decoy = new_token()
        planted = live.bottle.exec(["sh", "-c", f"printf '%s' {decoy} > /home/node/.live-decoy"])
        assert planted.ok, f"could not plant the decoy: {planted.stderr}"
        result = probes.scan(live.bottle, TOKEN_PATTERN, SCAN_ROOTS, log=probe_log)

        def h(v: str) -> str:
            return hashlib.sha256(v.encode()).hexdigest()

        assert h(decoy) in result.found, (
            f"control failed: the scan ({result.files} files, {result.procs} processes) "
            "did not find the planted decoy")
        assert h(live_harness.token) not in result.found, (
            f"the real token is inside the guest: {result.found[h(live_harness.token)]}")
        extra = {k: v for k, v in result.found.items() if k != h(decoy)}
        assert not extra, f"unexpected token-shaped values in the guest: {extra}"

    # -- LIVE-CA-TRUST --------------------------------------------------------------------
    @clause("LIVE-CA-TRUST")
    @BOTH
    def test_tls_validates_with_provisioned_trust(self, live, live_harness, probe_log):
        live.wait_ready(probe_log)
        path = _marker("tls")
        system = probes.tls(live.bottle, upstream.UPSTREAM_HOST, path, trust="system",
                            log=probe_log)
        assert system.ok and system.status == 200, (
            f"TLS through the first hop ({system.proxy}) did not validate with the guest's "
            f"store: {system.error or system.status}")
        assert system.issuer and system.issuer != CA_COMMON_NAME, (
            f"the guest saw the upstream's own certificate (issuer {system.issuer!r}), not "
            "one from the bottle's CA: the first hop did not intercept")
        none = probes.tls(live.bottle, upstream.UPSTREAM_HOST, path, trust="none",
                          log=probe_log)
        assert not none.ok and "CERTIFICATE_VERIFY_FAILED" in none.error, (
            f"control failed: with no trusted CA the handshake should fail verification, got "
            f"{none.error or none.status}")
        env = probes.agent_framed(live.bottle, live.plan.agent, "env", live_harness.runner,
                                  log=probe_log, name="agent-env")
        agent_env = dict(ln.split("=", 1) for ln in env.stdout.splitlines() if "=" in ln)
        ca_vars = [v for v in CA_ENV_NAMES if v in agent_env]
        assert ca_vars, f"the agent's env names no CA bundle ({', '.join(CA_ENV_NAMES)})"
        for var in ca_vars:
            r = probes.tls(live.bottle, upstream.UPSTREAM_HOST, path, trust=agent_env[var],
                           log=probe_log, name=f"tls {var}")
            assert r.ok and r.status == 200, (
                f"TLS does not validate with {var}={agent_env[var]}: {r.error or r.status}")
        curl = probes.http(live.bottle, f"https://{upstream.UPSTREAM_HOST}{path}",
                           log=probe_log, name="curl-tls")
        assert curl.exit_code == 0 and curl.echo is not None, (
            f"curl (no -k) through the first hop failed: {curl.describe()}")
        if live.plan.routed:  # egress re-encrypts towards pipelock, which decrypts
            plain = probes.tls(live.bottle, upstream.PLAIN_HOST, path, trust="system",
                               log=probe_log, name="tls-unrouted-host")
            assert plain.ok and plain.status == 200, (
                f"TLS to an allowed, unrouted host failed behind egress: "
                f"{plain.error or plain.status}")

    # -- LIVE-FAILCLOSED ---------------------------------------------------------------------
    @clause("LIVE-FAILCLOSED")
    @pytest.mark.parametrize("scenario", ["unrouted", "routed"])
    def test_no_egress_with_pipelock_down(self, scenario, live_harness, probe_log, request):
        lb = live_harness.launch(scenario)  # its own: this test breaks it
        request.node.user_properties.extend(lb.properties)
        sites = lb.wait_ready(probe_log)
        before = probes.http(lb.bottle, f"https://{upstream.UPSTREAM_HOST}{_marker('before')}",
                             log=probe_log, name="before")
        assert before.echo is not None, f"control failed before the fault: {before.describe()}"
        _call_hook(lambda: lb.bottle.stop_daemon("pipelock"), "Bottle.stop_daemon()")
        marker = _marker("failclosed")
        urls = (f"https://{upstream.UPSTREAM_HOST}{marker}",
                f"http://{upstream.UPSTREAM_HOST}{marker}",
                f"https://{upstream.PLAIN_HOST}{marker}")
        *after, direct = probes.concurrently(
            *[lambda u=u: probes.http(lb.bottle, u, log=probe_log, name="after", timeout=8)
              for u in urls],
            lambda: probes.tcp(lb.bottle, [(ip, p) for ip in sites.all_ips() for p in (80, 443)],
                               log=probe_log, name="after-direct"))
        for url, r in zip(urls, after):
            # A timeout is fail-closed too: nothing answered.
            assert r.echo is None and not 200 <= r.status < 300, (
                f"with pipelock stopped, {url.split(marker)[0]} still answered: {r.describe()}")
        assert not _unreached(direct), f"with pipelock stopped the guest reached {_unreached(direct)}"
        seen = upstream.requests_seen(live_harness.engine, sites.allowed, marker)
        assert not seen, f"requests reached the upstream with pipelock stopped: {seen}"

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

    # -- LAUNCH-PROXY-ENV (live half) -------------------------------------------------------
    @clause("LAUNCH-PROXY-ENV", tier="live")
    @BOTH
    def test_live_proxy_env_reaches_first_hop(self, live, live_harness, probe_log):
        live.wait_ready(probe_log)
        env = probes.agent_framed(live.bottle, live.plan.agent,
                                  'printf "%s\\n" "$HTTPS_PROXY" "$HTTP_PROXY"',
                                  live_harness.runner, log=probe_log, name="agent-env")
        https_proxy, http_proxy = (env.stdout.splitlines() + ["", ""])[:2]
        assert https_proxy and https_proxy == http_proxy, (
            f"HTTPS_PROXY={https_proxy!r} HTTP_PROXY={http_proxy!r}: both must name the first hop")
        if live.plan.routed:  # the hop named must be egress: it injects the token
            r = probes.http(live.bottle, f"https://{upstream.UPSTREAM_HOST}{_marker('hop')}",
                            proxy=https_proxy, log=probe_log, name="via-env-hop",
                            headers={"Authorization": f"Bearer {PLACEHOLDER}"})
            assert r.echo is not None and r.echo["authorization"] == f"Bearer {live_harness.token}", (
                f"{https_proxy} is not egress: the route's token was not injected ({r.describe()})")
        else:  # the hop named must be pipelock: it refuses CONNECT itself
            r = probes.http(live.bottle, f"https://{upstream.DENIED_HOST}{_marker('hop')}",
                            proxy=https_proxy, log=probe_log, name="via-env-hop")
            assert r.connect_status == 403, (
                f"{https_proxy} is not pipelock: CONNECT to a denied host got {r.describe()}")

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

    # -- LIVE-TEARDOWN --------------------------------------------------------------------------
    def _sentinels(self, harness: LiveHarness, bottle_name: str, image: str) -> list[str]:
        """A container and a network that look like the bottle's own (same
        name prefix and label key) but were made by us: teardown must spare them."""
        eng, res = harness.engine, harness.res
        ident = f"bottle-{bottle_name}-sentinel"
        net = res.network(f"{ident}-agent")
        eng.run("network", "create", "--internal", "--label", res.label,
                "--label", f"bottle-ref.bottle={ident}", net)
        ctr = f"{ident}-agent"
        res.container(ctr)  # registered before create, so a failed create cannot leak it
        eng.run("create", "--name", ctr, "--label", res.label, "--label",
                f"bottle-ref.bottle={ident}", "--network", net, "--entrypoint", "true", image)
        return [o.id for o in eng.snapshot().objects if o.name in (net, ctr)]

    def _foreign(self, snapshot) -> set[str]:
        """Ids of bottle-like engine objects no live run made: what a sloppy
        teardown (by name prefix or label key) could hit. Every name the
        suite makes holds PREFIX; other transient objects (image builds)
        are none of teardown's business and not compared."""
        return {o.id for o in snapshot.objects
                if not o.mentions(PREFIX) and o.mentions("bottle-")}

    @clause("LIVE-TEARDOWN")
    @pytest.mark.parametrize("how", ["close", "failed-launch"])
    def test_teardown_leaves_nothing(self, how, live_harness, probe_log, request):
        harness, eng = live_harness, live_harness.engine
        before = eng.snapshot()
        plan = harness.prepare(SCENARIOS["teardown" if how == "close" else "broken"])
        sentinel_ids = self._sentinels(harness, plan.bottle, harness.upstream_image(plan))
        assert len(sentinel_ids) == 2, "could not create the sentinel container and network"
        recorder = TracingRunner(harness.runner)
        if how == "close":
            bottle = harness.backend.launch(plan, recorder)
            harness.res.defer(f"bottle {plan.bottle}", bottle.close)
            during = [o for o in eng.snapshot().mentioning(plan.bottle) if o.id not in sentinel_ids]
            if not during:
                environment_broken(f"cannot find this backend's engine resources: none names "
                                   f"the bottle {plan.bottle!r}")
            assert Path(plan.state_dir).is_dir(), f"state dir {plan.state_dir} absent while running"
            bottle.close()
            bottle.close()  # idempotent
        else:
            with pytest.raises(Exception) as failure:
                harness.backend.launch(plan, recorder)
            request.node.user_properties.append(("live_failed_launch", str(failure.value)[:300]))
            made = [a for a in recorder.argvs if any(plan.bottle in x for x in a)
                    and {"create", "run", "start"} & set(a)]
            assert made, (f"the launch failed before creating anything, so this proves "
                          f"nothing about cleanup after a failure midway: {failure.value}")
        after = eng.snapshot()
        left = [str(o) for o in after.mentioning(plan.bottle) if o.id not in sentinel_ids]
        assert not left, f"left behind after {how}: {left}"
        assert not Path(plan.state_dir).exists(), f"state dir {plan.state_dir} left behind"
        gone = after.missing(sentinel_ids)
        assert not gone, f"teardown removed resources it did not create (sentinels {gone})"
        touched = after.missing(self._foreign(before))
        assert not touched, f"teardown removed pre-existing engine objects: {touched}"


def _probe_errors_are_environment(fn):
    """A probe tool missing from the guest image (`probes.ProbeError`) is the
    environment's fault: ERROR, never FAILED or PASSED."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except probes.ProbeError as exc:
            environment_broken(str(exc))

    return wrapper


for _name, _fn in list(vars(LiveTier).items()):
    if _name.startswith("test_") and callable(_fn):
        setattr(LiveTier, _name, _probe_errors_are_environment(_fn))


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
