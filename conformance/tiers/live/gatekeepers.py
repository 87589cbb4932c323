"""Live checks that egress and pipelock are gatekeepers (issue 15): one host
name per connection, no domain fronting, one spelling of a route host, and
no host outside the allowlist answers.

Every probe runs inside the guest (`probes.front`: raw sockets, python3
stdlib) against the harness's own sites on the bottle's outbound network;
each request carries a unique path marker, and the verdict is read from the
sites' own logs (`upstream.requests_seen`), not only from what the guest saw.
"""

from __future__ import annotations

from ...live import probes, upstream
from ...live.harness import PLACEHOLDER
from ...markers import clause
from .support import BOTH, ROUTED, _marker

# A name no site answers to, on the harness's own reserved TLD.
NOWHERE_HOST = "nowhere.bottle-live.test"
# mitmproxy's onboarding host: a mitmproxy-based proxy answers it itself
# (before any allowlist) unless its onboarding app is off. The name is never
# resolved: a correct hop refuses it at the allowlist, before any lookup.
ONBOARDING_HOST = "mitm.it"
# Shaped like an Anthropic API key, and nobody's: a DLP tripwire.
TRIPWIRE = "sk-ant-api03-bottleLiveTripwire0000000000000000"


def _site_logs(live_harness, sites) -> list[str]:
    """Both sites' logs, read once for any number of markers."""
    return [live_harness.engine.logs(site.container) for site in (sites.allowed, sites.denied)]


def _requests(logs: list[str], marker: str) -> list[str]:
    return [ln for log in logs for ln in upstream.requests_in(log, marker)]


def _seen(live_harness, sites, marker) -> list[str]:
    return _requests(_site_logs(live_harness, sites), marker)


# Attacks sent together (each a guest exec): on 2 cores four at a time kept
# each well inside its own timeout; one after another they took 4 s.
ATTACK_WORKERS = 4


def _attack_all(live, live_harness, sites, attacks, prefix: str, probe_log, **common
                ) -> list[tuple[str, probes.FrontResult, list[str]]]:
    """``(what, result, site log lines)`` of each ``(what, front kwargs)``
    in ``attacks``: sent at once, each with its own marker, and the sites'
    logs read once, after every probe returned (as each probe used to be
    followed by its own read)."""
    markers = [_marker(prefix) for _ in attacks]
    results = probes.concurrently(*(
        (lambda what=what, kw=kw, m=m: probes.front(
            live.bottle, path=m, log=probe_log, name=f"{prefix} {what}", **common, **kw))
        for (what, kw), m in zip(attacks, markers)), workers=ATTACK_WORKERS)
    logs = _site_logs(live_harness, sites)
    return [(what, r, _requests(logs, m)) for (what, _), r, m in zip(attacks, results, markers)]


def _leaks(result: probes.FrontResult, token: str) -> bool:
    return token in result.body


class LiveGatekeepers:
    """LIVE-EGRESS-ONE-NAME, LIVE-NO-FRONTING, LIVE-HOST-CANON, LIVE-ALLOWLIST-ONLY,
    LIVE-SSRF."""

    # -- LIVE-EGRESS-ONE-NAME ---------------------------------------------------------
    @clause("LIVE-EGRESS-ONE-NAME")
    @ROUTED
    def test_token_only_to_the_route_host_whatever_the_names(self, live, live_harness, probe_log):
        sites = live.wait_ready(probe_log)
        route, denied = upstream.UPSTREAM_HOST, upstream.DENIED_HOST
        auth = f"Bearer {PLACEHOLDER}"
        token = live_harness.token
        control_marker = _marker("one-name-control")
        control = probes.front(live.bottle, mode="tls", target=route, sni=route, host=route,
                               path=control_marker, auth=auth, log=probe_log, name="control")
        assert control.echo is not None and control.echo.get("authorization") == f"Bearer {token}", (
            f"control failed: a request naming the route host three times did not arrive with "
            f"the real token ({control.describe()}), so the attacks below prove nothing")
        attacks = [
            ("SNI and Host of another host", dict(target=route, sni=denied, host=denied)),
            ("Host of another host", dict(target=route, sni=route, host=denied)),
            ("SNI of another host", dict(target=route, sni=denied, host=route)),
            ("no SNI", dict(target=route, sni=None, host=route)),
            ("CONNECT elsewhere, SNI and Host of the route", dict(target=denied, sni=route, host=route)),
            ("Host of the route on another port", dict(target=route, sni=route, host=f"{route}:8443")),
            # root in the guest holds no more than node: the same hop, the same names
            ("as root, SNI and Host of another host", dict(target=route, sni=denied, host=denied,
                                                           user="root")),
            ("as root, Host of another host", dict(target=route, sni=route, host=denied,
                                                   user="root")),
        ]
        bad, blind = [], []
        for what, r, seen in _attack_all(live, live_harness, sites, attacks, "one-name",
                                         probe_log, mode="tls", auth=auth):
            if _leaks(r, token) or seen:
                bad.append(f"{what}: {r.describe()}; sites logged {len(seen)} request(s)")
            elif not r.connect_status:
                blind.append(f"{what}: {r.describe()}")
        assert not blind, ("control failed: these probes never got an answer from the first "
                           "hop, so they prove nothing: " + "; ".join(blind))
        assert not bad, ("egress let a request through (and injected the route's token) "
                         "although the CONNECT target, TLS SNI and Host did not all name the "
                         "route host: " + "; ".join(bad))

    # -- LIVE-NO-FRONTING -------------------------------------------------------------
    @clause("LIVE-NO-FRONTING")
    @BOTH
    def test_no_fronting_through_an_allowed_host(self, live, live_harness, probe_log):
        sites = live.wait_ready(probe_log)
        allowed, denied = upstream.PLAIN_HOST, upstream.DENIED_HOST
        control_marker = _marker("fronting-control")
        control = probes.front(live.bottle, mode="plain", target=allowed, host=allowed,
                               path=control_marker, log=probe_log, name="control")
        assert control.echo is not None, (
            f"control failed: a plain request to the allowed host {allowed} did not arrive "
            f"({control.describe()}), so the attacks below prove nothing")
        attacks = [
            ("CONNECT allowed, SNI and Host denied", dict(mode="tls", target=f"{allowed}:443",
                                                          sni=denied, host=denied)),
            ("CONNECT allowed, Host denied", dict(mode="tls", target=f"{allowed}:443",
                                                  sni=allowed, host=denied)),
            ("plain GET http://allowed/ with Host denied", dict(mode="plain", target=allowed,
                                                                host=denied)),
            ("CONNECT allowed:80, cleartext Host denied", dict(mode="tunnel", target=f"{allowed}:80",
                                                               host=denied)),
        ]
        bad = []
        for what, r, seen in _attack_all(live, live_harness, sites, attacks, "fronting",
                                         probe_log):
            if seen or r.echo is not None:
                bad.append(f"{what}: {r.describe()}; sites logged {len(seen)} request(s)")
        assert not bad, ("a request naming a non-allowlisted host inside a connection to an "
                         "allowed one was forwarded (domain fronting): " + "; ".join(bad))

    # -- LIVE-HOST-CANON --------------------------------------------------------------
    @clause("LIVE-HOST-CANON")
    @ROUTED
    def test_route_host_spellings_neither_leak_nor_reach_dlp(self, live, live_harness, probe_log):
        sites = live.wait_ready(probe_log)
        route, plain = upstream.UPSTREAM_HOST, upstream.PLAIN_HOST
        token = live_harness.token
        auth = f"Bearer {PLACEHOLDER}"
        # A DLP tripwire the guest sends itself (an Anthropic-key-shaped fake;
        # PIPELOCK-ENFORCE requires the pattern for a Claude bottle): pipelock
        # blocks it wherever it decrypts, so a route-host request that answers
        # like the decrypted control was in front of pipelock's DLP in clear,
        # the real token with it.
        trip = f"X-Api-Key: {TRIPWIRE}"
        decrypted = probes.front(live.bottle, mode="tls", target=plain, sni=plain, host=plain,
                                 path=_marker("canon-dlp-control"), auth=auth, extra=trip,
                                 log=probe_log, name="control decrypted")
        assert decrypted.echo is None and decrypted.status >= 400, (
            f"control failed: the DLP tripwire to the decrypted host {plain} was not blocked "
            f"({decrypted.describe()}), so a decrypted route host would go unseen")
        passed = probes.front(live.bottle, mode="tls", target=route, sni=route, host=route,
                              path=_marker("canon-control"), auth=auth, extra=trip,
                              log=probe_log, name="control route host")
        assert passed.echo is not None and passed.echo.get("authorization") == f"Bearer {token}", (
            f"control failed: the route host spelled as routed did not pass through with its "
            f"token ({passed.describe()})")
        bad = []
        variants = [(v, dict(target=v, sni=v, host=v))
                    for v in (route + ".", route.upper(), route.capitalize() + ".")]
        for variant, r, seen in _attack_all(live, live_harness, sites, variants, "canon",
                                            probe_log, mode="tls", auth=auth, extra=trip):
            if r.status == decrypted.status and r.body.strip() == decrypted.body.strip():
                bad.append(f"{variant}: pipelock decrypted it (answered as its DLP answers the "
                           f"decrypted control: {r.describe()})")
            elif seen and not (r.echo is not None
                               and r.echo.get("authorization") == f"Bearer {token}"
                               and (r.echo.get("host") or "").rstrip(".").lower() == route):
                bad.append(f"{variant}: arrived, but not as the route host with its token "
                           f"({r.describe()})")
        assert not bad, ("a trailing-dot or case variant of the route host split egress and "
                         "pipelock: " + "; ".join(bad))

    # -- LIVE-ALLOWLIST-ONLY ----------------------------------------------------------
    @clause("LIVE-ALLOWLIST-ONLY")
    @BOTH
    def test_no_host_outside_the_allowlist_answers(self, live, live_harness, probe_log):
        live.wait_ready(probe_log)
        # the onboarding app answers its own paths (/, /cert/pem), 404 elsewhere
        tries = [(host, mode, target,
                  "/cert/pem" if host == ONBOARDING_HOST else _marker("allowlist"))
                 for host in (ONBOARDING_HOST, NOWHERE_HOST, upstream.DENIED_HOST)
                 for mode, target in (("plain", host), ("tls", f"{host}:443"))]
        results = probes.concurrently(*(
            (lambda host=host, mode=mode, target=target, path=path: probes.front(
                live.bottle, mode=mode, target=target, sni=host, host=host, path=path,
                log=probe_log, name=f"allowlist {mode} {host}"))
            for host, mode, target, path in tries), workers=ATTACK_WORKERS)
        bad = [r.describe() for r in results
               if 200 <= r.status < 400 or r.status == 404 or "mitmproxy" in r.body.lower()]
        assert not bad, ("a host outside the bottle's allowlist answered through the first hop: "
                         + "; ".join(bad))

    # -- LIVE-SSRF (issue 15, second pass) ---------------------------------------------
    @clause("LIVE-SSRF")
    @BOTH
    def test_allowlisted_host_on_an_internal_address_is_refused(self, live, live_harness,
                                                                  probe_log):
        sites = live.wait_ready(probe_log)
        internal, trusted = upstream.INTERNAL_HOST, upstream.PLAIN_HOST
        control_marker = _marker("ssrf-control")
        control = probes.front(live.bottle, mode="plain", target=trusted, host=trusted,
                               path=control_marker, log=probe_log, name="ssrf control")
        assert control.echo is not None, (
            f"control failed: a plain request to {trusted} (the same site, a name the harness "
            f"trusted) did not arrive ({control.describe()}), so the probes below prove nothing")
        bad = []
        for user in ("node", "root"):
            for mode, target in (("plain", internal), ("tls", f"{internal}:443")):
                marker = _marker("ssrf")
                r = probes.front(live.bottle, mode=mode, target=target, sni=internal,
                                 host=internal, path=marker, log=probe_log, user=user,
                                 name=f"ssrf {mode} as {user}")
                seen = _seen(live_harness, sites, marker)
                if seen or r.echo is not None or 200 <= r.status < 400:
                    bad.append(f"as {user}, {mode}: {r.describe()}; the site logged "
                               f"{len(seen)} request(s)")
        assert not bad, (
            f"{internal} is allowlisted but resolves to the bottle's private test network and "
            "was not named in BOTTLE_PIPELOCK_TRUSTED_HOSTS, yet a request for it went through "
            "(pipelock's SSRF guard would refuse it): " + "; ".join(bad))
