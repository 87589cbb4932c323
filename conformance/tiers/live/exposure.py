"""Live checks of what the guest is exposed to (issue 20): the resolvers it
can ask, every port of every address it names, the CAs' private keys, and
the other bottles beside it."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import pytest

from ...live import dns_canary, exposure
from ...markers import clause
from ...outcomes import not_supported
from .support import BOTH, UNROUTED, _call_hook

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


def _host_loopback_resolvers() -> list[str]:
    """Loopback name servers in the harness host's resolv.conf. docker's
    embedded DNS (libnetwork resolver.go, ServeDNS, 20.10: `if
    extDNS.HostLoopback { extConnect() } else { r.backend.ExecFunc(extConnect) }`)
    forwards to a host loopback resolver from the HOST's namespace, where
    the guest's own routes do not apply: a lookup sent to the guest's
    loopback resolver could then leave this machine."""
    out = []
    try:
        for line in HOST_RESOLV_CONF.read_text().splitlines():
            f = line.split()
            if len(f) >= 2 and f[0] == "nameserver":
                try:
                    if ipaddress.ip_address(f[1].split("%")[0]).is_loopback:
                        out.append(f[1])
                except ValueError:
                    continue
    except OSError:
        pass
    return out


class LiveExposure:
    """LIVE-DNS, LIVE-ENDPOINTS, LIVE-CA-KEY, LIVE-APART."""

    # -- LIVE-DNS -------------------------------------------------------------------
    @clause("LIVE-DNS")
    @BOTH
    def test_dns_answers_nothing_outside(self, live, live_harness, probe_log, request):
        live.need_network()
        sites = live.need_sites()  # the canary sits where the test upstream does
        loopback = _host_loopback_resolvers()
        if loopback:
            not_supported(
                f"this host's resolver is on loopback ({', '.join(loopback)}): a resolver on "
                "the guest's loopback (docker's embedded DNS) would forward from the host's "
                "namespace, so the live tier sends it no lookup")
        canary = dns_canary.start_canary(live_harness.need_engine(), live_harness.res,
                                         sites.network, live_harness.upstream_image(live.plan),
                                         timeout=live_harness.timeout)
        canary.self_test()
        label = "l" + secrets.token_hex(6)
        result = exposure.dns(live.bottle, dns_canary.ZONE, label, log=probe_log,
                              ask_loopback=True)
        request.node.user_properties.append(
            ("live_dns", f"{len(result.asked)} asked, not asked: {dict(result.not_asked)}"))
        assert not result.routes_out, (
            f"the guest has a route off its own subnets ({list(result.routes_out)}): any "
            "resolver could forward its lookups out (no lookup was sent)")
        seen = canary.seen(label)
        answered = result.answered()
        assert not seen and not answered, (
            f"a lookup left the guest: the harness's resolver canary was asked {seen}; "
            f"answers came back on {answered}")

    # -- LIVE-ENDPOINTS -------------------------------------------------------------
    @clause("LIVE-ENDPOINTS")
    @BOTH
    @pytest.mark.bottle_run_last  # the class's launches are done by then: no wait
    def test_guest_reaches_exactly_declared_endpoints(self, live, probe_log, request):
        # Over the ~10 s budget where several addresses answer: every TCP port
        # of each is dialled, and that is the kernel's work (per address of
        # 65535 ports, in the guest: ~0.2 s user, ~2.2 s sys). Beside
        # background launches a sweep took 5-8 times longer (20 s unrouted,
        # 32 s routed at load 3-7), and a SYN lost there would be a silent
        # port, so the sweep holds `exclusive`: it first waits for the
        # launches in flight (up to a launch, 4-10 s), then sweeps alone
        # (measured at load 5-8: 2.8 s for one address; 11.5 s for the
        # routed three, egress, git-gate, supervise, two at a time). It runs
        # last in its class (bottle_run_last), when no launch is left to wait
        # for, only the closes of bottles no other test needs. A
        # narrower port list would miss an admin port on an unusual number;
        # the sweep's bounds are in `exposure`.
        live.need_network()
        with live.harness.exclusive():  # no bottle launches beside the sweep
            s = exposure.surface(live.bottle, log=probe_log)
        request.node.user_properties.append(
            ("live_endpoints", f"{len(s.swept)} address(es) x {s.ports} ports in {s.seconds}s"))
        assert s.endpoints, "control failed: the guest declares no endpoint (HTTPS_PROXY unset?)"
        down = [f"{e.host}:{e.port} ({e.where}): {e.error}" for e in s.endpoints if not e.ok]
        assert not down, f"declared endpoint(s) the guest cannot reach: {down}"
        unswept = [f"{e.host}:{e.port}" for e in s.endpoints
                   if not any(a in s.swept for a in e.addrs)]
        assert not unswept, (
            f"control failed: declared endpoint(s) whose addresses were not swept: {unswept} "
            f"(skipped: {dict(s.skipped)})")
        extra = s.undeclared_open()
        assert not extra, (
            f"the guest reaches port(s) nothing declares: "
            + "; ".join(f"{a} ({', '.join(s.found.get(a, ()))}): {ports}"
                        for a, ports in extra.items())
            + f" (declared: { {a: sorted(p) for a, p in s.declared_ports().items()} })")

    # -- LIVE-CA-KEY ----------------------------------------------------------------
    @clause("LIVE-CA-KEY")
    @BOTH
    def test_no_ca_private_key_in_guest(self, live, live_harness, probe_log):
        certs = _call_hook(live.bottle.ca_certificates, "Bottle.ca_certificates()")
        assert certs, "Bottle.ca_certificates() names no CA (every bottle's proxies sign with one)"
        ca_hashes = {}
        for i, pem in enumerate(certs):
            hashes = exposure.cert_key_hashes(pem)
            assert hashes, f"Bottle.ca_certificates()[{i}] holds no certificate public key"
            ca_hashes[i] = hashes
        # Control: the harness's own test CA key (a throwaway EC key),
        # planted where nothing looks, must be found and matched.
        pki = live_harness.pki
        decoy = "/var/tmp/bottle-live-key/decoy.pem"
        plant = live.bottle.exec(
            ["sh", "-c", f'mkdir -p {Path(decoy).parent} && printf %s "$K" > {decoy}'],
            user="root", env={"K": (pki.dir / "ca-key.pem").read_text()})
        assert plant.ok, f"could not plant the decoy key: {plant.stderr}"
        try:
            walk = exposure.private_keys(live.bottle, log=probe_log,
                                         changed_within=live_harness.token_age())
        finally:
            live.bottle.exec(["rm", "-rf", str(Path(decoy).parent)], user="root")
        found = [k.path for k in walk.matching(exposure.cert_key_hashes(pki.ca_cert.read_text()))]
        assert decoy in found, (
            f"control failed: the walk ({walk.files} files read, {walk.older} unchanged) did "
            f"not match the planted decoy key (found {[k.path for k in walk.keys]})")
        leaked = sorted({f"{k.path} ({k.kind}) is the key of CA #{i}"
                         for i, h in ca_hashes.items() for k in walk.matching(h)})
        assert not leaked, f"a private key of the bottle's CA is in the guest: {leaked}"

    # -- LIVE-APART -----------------------------------------------------------------
    @clause("LIVE-APART")
    @UNROUTED
    @pytest.mark.parametrize("scenario", ["unrouted"])
    def test_bottles_cannot_reach_each_other(self, live, scenario, live_harness, probe_log,
                                             request):
        live.need_network()
        other = live_harness.fresh(scenario)  # a second bottle, launched beside the first
        request.node.user_properties.extend(other.properties)
        pair = {"first": live.bottle, "second": other.bottle}
        # A guest with no address of its own (no network at all) is reached by
        # nothing; the other direction is still swept.
        addrs = {k: exposure.own_addresses(b, log=probe_log) for k, b in pair.items()}
        request.node.user_properties.append(("live_apart", str(addrs)))
        reached = []
        for me, peer in (("first", "second"), ("second", "first")):
            # The guest's own address (or loopback) is the control: the sweeper
            # must see its RSTs, or a silent sweep proves nothing.
            mine = (addrs[me] or ["127.0.0.1"])[0]
            swept = exposure.sweep(pair[me], addrs[peer], control=mine, log=probe_log,
                                   name=f"sweep {me}->{peer}")
            assert swept[mine].reachable, (
                f"control failed: the {me} guest's sweep saw nothing answer on its own address "
                f"{mine} ({swept[mine].other})")
            reached += [f"{me} -> {peer} {a}: open {list(s.open)}, {s.refused} ports reset"
                        for a, s in swept.items() if a in addrs[peer] and s.reachable]
        assert not reached, f"the two bottles reach each other: {reached}"
