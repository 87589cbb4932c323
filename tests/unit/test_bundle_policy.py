"""Bundle daemons' decisions without processes: host matching, rate limit,
pipelock policy from a rendered config, egress injection rules."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bottle_bundle.egress_proxy import EgressInjector, EgressRoute
from bottle_bundle.hosts import host_matches, matches_any, parse_listen
from bottle_bundle.pipelock_proxy import (
    REASON_ALLOWLIST,
    REASON_HEADER_SECRET,
    REASON_RATE,
    PipelockPolicy,
    PipelockSettings,
    RateLimiter,
    Verdict,
)
from bottle_ref.pipelock import load_config, render_config

LABEL = st.from_regex(r"\A[a-z](?:[a-z0-9-]{0,7}[a-z0-9])?\Z")  # a valid DNS label


@pytest.mark.parametrize("host, pattern, expected", [
    ("api.x.com", "api.x.com", True),
    ("API.X.COM.", "api.x.com", True),
    ("a.x.com", "*.x.com", True),
    ("a.b.x.com", "*.x.com", True),
    ("x.com", "*.x.com", False),          # a wildcard never matches the apex
    ("evilx.com", "*.x.com", False),
    ("x.com.evil", "*.x.com", False),
    ("api.x.com", "x.com", False),
    ("127.0.0.1", "127.0.0.1", True),
    ("[::1]", "::1", True),
    ("", "*.x.com", False),
])
def test_host_matches(host, pattern, expected):
    assert host_matches(host, pattern) is expected


@given(sub=LABEL, apex=st.tuples(LABEL, LABEL).map(".".join))
def test_wildcard_matches_every_subdomain_but_not_apex(sub, apex):
    assert host_matches(f"{sub}.{apex}", f"*.{apex}")
    assert not host_matches(apex, f"*.{apex}")
    assert matches_any(apex, [f"*.{apex}", apex])


@pytest.mark.parametrize("text, expected", [
    ("0.0.0.0:8888", ("0.0.0.0", 8888)),
    ("127.0.0.1:9099", ("127.0.0.1", 9099)),
    (":9100", ("0.0.0.0", 9100)),
    ("[::]:8888", ("::", 8888)),
])
def test_parse_listen(text, expected):
    assert parse_listen(text, what="x") == expected


@pytest.mark.parametrize("text", ["8888", "host:", "host:0", "host:70000", "::1:80", ""])
def test_parse_listen_rejects(text):
    with pytest.raises(ValueError, match="EGRESS_LISTEN"):
        parse_listen(text, what="EGRESS_LISTEN")


def test_rate_limiter_sliding_window_per_key():
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.admit("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.admit("b")  # per key
    now[0] = 59.9
    assert not limiter.admit("a")  # refused attempts do not extend the window...
    now[0] = 60.0
    assert limiter.admit("a")  # ...and the first admitted ones have aged out
    assert RateLimiter(0).admit("a")  # 0: no limit


def PUBLIC(host: str) -> list[str]:
    """A resolver for the SSRF guard: every host is public (TEST-NET-3); no lookup."""
    return ["203.0.113.7"]


def settings_from(**kw) -> PipelockSettings:
    args = {"allow": ["api.example.test", "*.chatgpt.example"],
            "passthrough": ["api.example.test"], "listen": "0.0.0.0:8888",
            "max_requests_per_minute": 2}
    args.update(kw)
    return PipelockSettings.from_config(load_config(render_config(**args)))


def test_settings_from_rendered_config():
    s = settings_from()
    assert s.listen == ("0.0.0.0", 8888)
    assert s.allowlist == ("api.example.test", "*.chatgpt.example")
    assert s.passthrough == ("api.example.test",)
    assert s.tls_enabled and s.scan_headers and s.block
    assert s.ca_cert == "/etc/pipelock/ca.pem" and s.ca_key == "/etc/pipelock/ca-key.pem"
    assert s.max_requests_per_minute == 2 and s.dlp


def test_policy_allowlist_passthrough_and_rate():
    policy = PipelockPolicy(settings_from(), clock=lambda: 0.0, resolve=PUBLIC)
    assert policy.check_connect("blocked.example") == Verdict(403, REASON_ALLOWLIST)
    # allowlist wildcards match the apex (pipelock MatchDomain); see test_pipelock_parity.py
    assert policy.check_connect("chatgpt.example") is None
    assert not policy.decrypts("api.example.test")
    assert policy.decrypts("a.chatgpt.example")
    # passthrough CONNECTs count; decrypted ones are counted per inner request
    assert [policy.check_connect("api.example.test") for _ in range(3)] == [
        None, None, Verdict(429, REASON_RATE)]
    assert policy.check_connect("a.chatgpt.example") is None
    assert policy.check_connect("a.chatgpt.example") is None


def test_policy_header_dlp_block_and_warn():
    jwt = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4eXoifQ.sig"
    block = PipelockPolicy(settings_from(max_requests_per_minute=0), resolve=PUBLIC)
    verdict, hit = block.check_request("a.chatgpt.example", [("Authorization", jwt)])
    assert verdict == Verdict(403, REASON_HEADER_SECRET)
    assert "Authorization" in hit and "jwt" in hit and jwt not in hit  # names, never values
    assert block.check_request("a.chatgpt.example", [("Accept", "*/*")]) == (None, None)

    data = yaml.safe_load(render_config(allow=["h.test"], passthrough=[], listen=":1"))
    data["request_body_scanning"]["action"] = "warn"
    warn = PipelockPolicy(PipelockSettings.from_config(load_config(yaml.safe_dump(data))),
                          resolve=PUBLIC)
    verdict, hit = warn.check_request("h.test", [("X-Token", jwt)])
    assert verdict is None and hit


def test_egress_injects_only_https_route_hosts_and_hides_token():
    token = "real-token-value-123"
    injector = EgressInjector(
        [EgressRoute("api.example.test", "Authorization", "Bearer", "BOTTLE_EGRESS_TOKEN_0"),
         EgressRoute("*.svc.test", "X-Api-Key", "", "BOTTLE_EGRESS_TOKEN_1")],
        {"BOTTLE_EGRESS_TOKEN_0": token, "BOTTLE_EGRESS_TOKEN_1": "k1"})
    assert injector.header_for("https", "API.example.test") == ("Authorization", f"Bearer {token}")
    assert injector.header_for("https", "a.svc.test") == ("X-Api-Key", "k1")
    assert injector.header_for("https", "svc.test") is None
    assert injector.header_for("http", "api.example.test") is None  # never on cleartext
    assert injector.header_for("https", "other.test") is None
    assert token not in repr(injector)
