"""Live checks of the bottle's traffic: smoke, user, loopback, bypass,
pipelock, auth, CA trust, fail-closed, the proxy env."""

from __future__ import annotations

import hashlib

import pytest

from ...live import probes, upstream
from ...live.harness import GIT_USER, PLACEHOLDER, TOKEN_BODY, TOKEN_PREFIX, new_token
from ...live.tls import CA_COMMON_NAME
from ...markers import clause
from .agents import AGENT_CLIS
from .support import BOTH, CA_ENV_NAMES, ROUTED, UNROUTED, _call_hook, _marker, _unreached

FAILCLOSED_MIN_S, FAILCLOSED_MAX_S = 2.0, 8.0


class LiveTraffic:
    """LIVE-SMOKE, EXEC-USER, LIVE-LOOPBACK, LIVE-BYPASS, LIVE-PIPELOCK,
    LIVE-AUTH, LIVE-CA-TRUST, LIVE-FAILCLOSED, LAUNCH-PROXY-ENV (live halves)."""

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
        live.need_network()
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
        # Cleartext: egress must not inject (the real token would travel in the clear).
        clear = probes.http(live.bottle, f"http://{upstream.UPSTREAM_HOST}{_marker('cleartext')}",
                            headers=auth, log=probe_log, name="routed-cleartext")
        assert clear.echo is not None, f"cleartext request to the route host failed: {clear.describe()}"
        assert clear.echo["authorization"] == f"Bearer {PLACEHOLDER}", (
            "a cleartext http:// request to the route host did not arrive with the placeholder "
            "unchanged (" + ("the real token was injected in the clear" if live_harness.token
                             in (clear.echo["authorization"] or "") else "it was altered") + ")")
        # The guest must hold no real token anywhere, in any common encoding:
        # every file but /proc, /sys, /dev, and every process's environ and
        # cmdline. Decoys of the same shape, each in one encoding and outside
        # the usual directories, prove the scan sees everywhere it claims to.
        decoys = {enc: new_token() for enc in ("raw", "hex", "base64", "base64url", "percent")}
        places = {"raw": "/home/node/.live-decoy", "hex": "/run/bottle-live-decoy/hex",
                  "base64": "/srv/bottle-live-decoy.b64", "base64url": "/var/lib/bottle-live-decoy",
                  "percent": "/opt/bottle-live-decoy/percent.txt"}
        plant = " && ".join(
            f"mkdir -p $(dirname {places[enc]}) && printf 'k=%s\\n' '{probes.encodings(d)[enc]}'"
            f" > {places[enc]}" for enc, d in decoys.items())
        planted = live.bottle.exec(["sh", "-c", plant], user="root")
        assert planted.ok, f"could not plant the decoys: {planted.stderr}"
        # Issue 20: a helper process of node's with a token in its
        # environment only (root without CAP_SYS_PTRACE cannot read it), so
        # the processes are scanned as node too.
        decoys["environ"] = new_token()
        places["environ"] = "the environment of a helper process of node's"
        helper = live.bottle.exec(
            ["sh", "-c", "nohup sleep 300 >/dev/null 2>&1 </dev/null & echo $!"],
            env={"BOTTLE_LIVE_HELPER_DECOY": decoys["environ"]})
        assert helper.ok and helper.stdout.strip().isdigit(), (
            f"could not start the helper decoy: {helper.stderr}")
        try:
            as_root, as_node = probes.concurrently(
                lambda: probes.scan(live.bottle, TOKEN_PREFIX, TOKEN_BODY, log=probe_log,
                                    changed_within=live_harness.token_age()),
                lambda: probes.scan(live.bottle, TOKEN_PREFIX, TOKEN_BODY, (), log=probe_log,
                                    user="node"))
        finally:
            live.bottle.exec(["kill", helper.stdout.strip()])
        found: dict[str, dict[str, tuple[str, ...]]] = {}
        for result in (as_root, as_node):
            for k, encs in result.found.items():
                for enc, where in encs.items():
                    found.setdefault(k, {})[enc] = tuple(sorted(set(found.get(k, {}).get(enc, ())) | set(where)))

        def h(v: str) -> str:
            return hashlib.sha256(v.encode()).hexdigest()

        missed = [f"{enc} at {places[enc]}" for enc, d in decoys.items() if h(d) not in found]
        assert not missed, (
            f"control failed: the scan ({as_root.files} files read, {as_root.older} unchanged, "
            f"{as_root.procs} processes as root ({as_root.unreadable} environ unreadable), "
            f"{as_node.procs} as node ({as_node.unreadable} unreadable)) did not find the "
            f"planted decoys {missed}")
        assert h(live_harness.token) not in found, (
            f"the real token is inside the guest: {found[h(live_harness.token)]}")
        extra = {k: v for k, v in found.items() if k not in {h(d) for d in decoys.values()}}
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
        live_harness.need_network()  # before waiting for a launch
        lb = live_harness.fresh(scenario)  # its own: this test breaks it
        request.node.user_properties.extend(lb.properties)
        sites = lb.wait_ready(probe_log)
        before = probes.http(lb.bottle, f"https://{upstream.UPSTREAM_HOST}{_marker('before')}",
                             log=probe_log, name="before")
        assert before.echo is not None, f"control failed before the fault: {before.describe()}"
        _call_hook(lambda: lb.bottle.stop_daemon("pipelock"), "Bottle.stop_daemon()")
        # A refusal comes at once; only silence costs the timeout, and a
        # request that still got through would take about as long as the
        # control did: ten times that (2..8 s) is the bound.
        wait = min(FAILCLOSED_MAX_S, max(FAILCLOSED_MIN_S, 10 * before.seconds))
        request.node.user_properties.append(("live_failclosed_wait", f"{wait:.1f}s"))
        marker = _marker("failclosed")
        urls = (f"https://{upstream.UPSTREAM_HOST}{marker}",
                f"http://{upstream.UPSTREAM_HOST}{marker}",
                f"https://{upstream.PLAIN_HOST}{marker}")
        *after, direct = probes.concurrently(
            *[lambda u=u: probes.http(lb.bottle, u, log=probe_log, name="after", timeout=wait)
              for u in urls],
            lambda: probes.tcp(lb.bottle, [(ip, p) for ip in sites.all_ips() for p in (80, 443)],
                               log=probe_log, name="after-direct", timeout=wait))
        for url, r in zip(urls, after):
            # A timeout is fail-closed too: nothing answered.
            assert r.echo is None and not 200 <= r.status < 300, (
                f"with pipelock stopped, {url.split(marker)[0]} still answered: {r.describe()}")
        assert not _unreached(direct), f"with pipelock stopped the guest reached {_unreached(direct)}"
        seen = upstream.requests_seen(live_harness.engine, sites.allowed, marker)
        assert not seen, f"requests reached the upstream with pipelock stopped: {seen}"

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

