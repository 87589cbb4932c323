"""bottle_api.hostnames: the one normaliser every matcher shares (issue 15),
and egress's one-name decision built on it."""

from __future__ import annotations

import pytest

from bottle_api import hostnames
from bottle_bundle.egress_proxy import (
    REFUSE_MISMATCH, REFUSE_NO_SNI, REFUSE_SPELLING, EgressInjector, EgressRoute, Names, decide,
)


@pytest.mark.parametrize("raw, canon", [
    ("api.example.test", "api.example.test"),
    ("API.Example.TEST", "api.example.test"),
    ("api.example.test.", "api.example.test"),
    ("b\u00fccher.example", "xn--bcher-kva.example"),
    ("[::1]", "::1"),
    ("[0:0::1]", "::1"),
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
])
def test_canonical(raw, canon):
    assert hostnames.canonical(raw) == canon
    assert hostnames.is_canonical(canon)


@pytest.mark.parametrize("raw", [
    "", " api.example.test", "api.example.test..", "api..example.test", "a@api.example.test",
    "api.example.test:443", "api.example.test/x", "api.example.test%00", "-a.example.test",
    "1.2.3", "[::1", "x" * 64 + ".test",
])
def test_not_a_host(raw):
    with pytest.raises(hostnames.HostError):
        hostnames.canonical(raw)
    assert not hostnames.same_host(raw, "api.example.test")


@pytest.mark.parametrize("authority, default, want", [
    ("api.example.test", 443, ("api.example.test", 443)),
    ("API.example.test:8443", 443, ("api.example.test", 8443)),
    ("[::1]:80", 443, ("::1", 80)),
])
def test_split_authority(authority, default, want):
    assert hostnames.split_authority(authority, default) == want


@pytest.mark.parametrize("authority", ["a@b.test", "b.test:0", "b.test:99999", "b.test:x", "::1:80",
                                       "[::1]x", ""])
def test_split_authority_refuses(authority):
    with pytest.raises(hostnames.HostError):
        hostnames.split_authority(authority, 443)


ROUTE = "api.example.test"
INJECTOR = EgressInjector([EgressRoute(ROUTE, "Authorization", "Bearer", "T")], {"T": "real"})


@pytest.mark.parametrize("names, header, refusal", [
    (Names(ROUTE, 443, ROUTE, ROUTE, "https"), ("Authorization", "Bearer real"), None),
    (Names(ROUTE, 443, ROUTE, f"{ROUTE}:443", "https"), ("Authorization", "Bearer real"), None),
    (Names(ROUTE, 443, "denied.test", "denied.test", "https"), None, REFUSE_MISMATCH),
    (Names(ROUTE, 443, ROUTE, "denied.test", "https"), None, REFUSE_MISMATCH),
    (Names("denied.test", 443, ROUTE, ROUTE, "https"), None, REFUSE_MISMATCH),
    (Names(ROUTE, 443, ROUTE, f"{ROUTE}:8443", "https"), None, REFUSE_MISMATCH),
    (Names(ROUTE, 443, ROUTE, "", "https"), None, REFUSE_MISMATCH),
    (Names(ROUTE + ".", 443, ROUTE + ".", ROUTE + ".", "https"), None, REFUSE_SPELLING),
    (Names(ROUTE.upper(), 443, ROUTE, ROUTE, "https"), None, REFUSE_SPELLING),
    (Names(ROUTE, 443, None, ROUTE, "https"), None, REFUSE_NO_SNI),
    (Names(ROUTE, 443, ROUTE, None, "https"), None, REFUSE_NO_SNI),
    (Names(ROUTE, 80, None, ROUTE, "http"), None, None),  # cleartext: never injected
    (Names(ROUTE, 80, None, "denied.test", "http"), None, REFUSE_MISMATCH),
    (Names("other.test", 443, "other.test", "other.test", "https"), None, None),
])
def test_egress_decides_on_all_three_names(names, header, refusal):
    assert decide(INJECTOR, names) == (header, refusal)
