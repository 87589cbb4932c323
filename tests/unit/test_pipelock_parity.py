"""Parity with real pipelock, one row per rule (issue 9).

Each row cites the pipelock source (luckyPipewrench/pipelock, Go) it encodes,
and runs against BOTH the bundle's stand-in (validator
`bottle_bundle.pipelock_config`, matcher `bottle_bundle.pipelock_proxy.PipelockPolicy`)
and the suite's own oracle (`conformance.oracles.pipelock`), so neither can
drift from pipelock without a named row failing.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bottle_bundle import pipelock_config as standin
from bottle_bundle.pipelock_proxy import PipelockPolicy, PipelockSettings
from conformance.oracles import pipelock as oracle

BASE: dict[str, Any] = {
    "version": 1,
    "mode": "strict",
    "api_allowlist": ["api.example.test"],
    "fetch_proxy": {"listen": "127.0.0.1:8888"},
    "forward_proxy": {"enabled": True},
    "tls_interception": {"enabled": True, "ca_cert": "/tmp/ca.pem", "ca_key": "/tmp/ca-key.pem",
                         "passthrough_domains": []},
}


def put(path: str, value: Any) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {}) if not key.isdigit() else node[int(key)]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return edit


def dlp(regex: str) -> Callable[[dict], None]:
    return put("dlp.patterns", [{"name": "p", "regex": regex}])


@dataclass(frozen=True)
class Load:
    """Does pipelock load a config? ``refused`` names the key in the error."""

    rule: str
    source: str
    edit: Callable[[dict], None]
    refused: str | None  # the key path reported, None: accepted


LOAD_ROWS = [
    Load("unknown top-level key is fatal", "internal/config/load.go Load (KnownFields(true))",
         put("allow_everything", True), "allow_everything"),
    Load("unknown nested key is fatal", "internal/config/load.go Load (KnownFields(true))",
         put("tls_interception.passthrough_hosts", []), "tls_interception.passthrough_hosts"),
    Load("tls_interception.cert_ttl is a known key", "internal/config/schema.go TLSInterception",
         put("tls_interception.cert_ttl", "12h"), None),
    Load("logging is a known section", "internal/config/schema.go LoggingConfig",
         put("logging", {"format": "text", "output": "stdout"}), None),
    Load("forward_proxy.max_tunnel_seconds is a known key", "internal/config/schema.go ForwardProxy",
         put("forward_proxy.max_tunnel_seconds", 600), None),
    Load("fetch_proxy.monitoring.max_data_per_minute is a known key",
         "internal/config/schema.go Monitoring", put("fetch_proxy.monitoring.max_data_per_minute", 0), None),
    Load("sections a bottle never renders are known", "internal/config/schema.go Config",
         put("response_scanning", {"enabled": True}), None),
    Load("mode must be strict, balanced or audit", "internal/config/validate.go validateMode",
         put("mode", "paranoid"), "mode"),
    Load("strict with an empty api_allowlist is refused", "internal/config/validate.go validateMode",
         put("api_allowlist", []), "api_allowlist"),
    Load("balanced with an empty api_allowlist loads", "internal/config/validate.go validateMode",
         lambda d: (put("mode", "balanced")(d), put("api_allowlist", [])(d)), None),
    Load("omitted mode is balanced (so an empty list loads)",
         "internal/config/normalize.go ApplyDefaults",
         lambda d: (d.pop("mode"), put("api_allowlist", [])(d)), None),
    Load("DLP regex: lookahead refused (RE2)", "internal/config/validate.go validateDLP (regexp.Compile)",
         dlp(r"sk-(?=ant)"), "dlp.patterns[0].regex"),
    Load("DLP regex: lookbehind refused (RE2)", "internal/config/validate.go validateDLP (regexp.Compile)",
         dlp(r"(?<!x)sk-"), "dlp.patterns[0].regex"),
    Load("DLP regex: backreference refused (RE2)", "internal/config/validate.go validateDLP (regexp.Compile)",
         dlp(r"(a)\1"), "dlp.patterns[0].regex"),
    Load("DLP regex: \\z accepted (RE2)", "internal/config/validate.go validateDLP (regexp.Compile)",
         dlp(r"sk-[a-z]+\z"), None),
    Load("DLP regex: \\Z refused (RE2)", "internal/config/validate.go validateDLP (regexp.Compile)",
         dlp(r"sk-[a-z]+\Z"), "dlp.patterns[0].regex"),
    Load("DLP regex: possessive quantifier refused (RE2)",
         "internal/config/validate.go validateDLP (regexp.Compile)", dlp(r"a*+"), "dlp.patterns[0].regex"),
    Load("DLP severity is not checked", "internal/config/validate.go validateDLP",
         put("dlp.patterns", [{"name": "p", "regex": "x", "severity": "urgent"}]), None),
    Load("DLP pattern action other than warn refused", "internal/config/validate.go validateDLP",
         put("dlp.patterns", [{"name": "p", "regex": "x", "action": "block"}]), "dlp.patterns[0].action"),
    Load("dlp.action refused", "internal/config/validate.go validateDLP", put("dlp.action", "block"),
         "dlp.action"),
    Load("logging.output file needs logging.file", "internal/config/validate.go validateLogging",
         put("logging", {"output": "file"}), "logging.file"),
    Load("negative rate limit loads (normalize.go makes it 60 before validation)",
         "internal/config/normalize.go (~143-144) before validate.go validateFetchProxy (load.go)",
         put("fetch_proxy.monitoring", {"max_requests_per_minute": -1}), None),
    Load("negative max_data_per_minute refused", "internal/config/validate.go validateFetchProxy (~372)",
         put("fetch_proxy.monitoring", {"max_data_per_minute": -1}),
         "fetch_proxy.monitoring.max_data_per_minute"),
    Load("request_body_scanning.action must be warn or block",
         "internal/config/validate.go validateRequestBodyScanning",
         put("request_body_scanning", {"enabled": True, "action": "strip"}), "request_body_scanning.action"),
    Load("request_body_scanning omitted enabled is on, so its action is checked",
         "internal/config/normalize.go applySecurityDefaults; validate.go validateRequestBodyScanning",
         put("request_body_scanning", {"action": "strip"}), "request_body_scanning.action"),
    Load("cert_ttl must parse as a Go duration", "internal/config/validate.go validateTLSInterception",
         put("tls_interception.cert_ttl", "1 day"), "tls_interception.cert_ttl"),
    Load("cert_ttl must be positive", "internal/config/validate.go validateTLSInterception",
         put("tls_interception.cert_ttl", "-1h"), "tls_interception.cert_ttl"),
    Load("cert_ttl is not checked with interception off",
         "internal/config/validate.go validateTLSInterception",
         lambda d: (put("tls_interception.enabled", False)(d), put("tls_interception.cert_ttl", "x")(d)), None),
]


def _standin_refusal(data: dict) -> list[str]:
    # forward_proxy.enabled is the stand-in's own extra rule (not pipelock's);
    # every row keeps it on, so it never decides a row.
    return standin.validate_config(data)


@pytest.mark.parametrize("row", LOAD_ROWS, ids=lambda r: r.rule)
@pytest.mark.parametrize("impl", ["stand-in", "oracle"])
def test_load_rule(row: Load, impl: str):
    data = copy.deepcopy(BASE)
    row.edit(data)
    problems = _standin_refusal(data) if impl == "stand-in" else oracle.load_problems(data)
    if row.refused is None:
        assert problems == [], f"{row.rule} ({row.source}): pipelock accepts this, {impl} refused: {problems}"
    else:
        assert any(p.startswith(row.refused) for p in problems), (
            f"{row.rule} ({row.source}): pipelock refuses at {row.refused}, {impl} said {problems}")


@pytest.mark.parametrize("impl", ["stand-in", "oracle"])
def test_second_yaml_document_refused(impl):
    # internal/config/load.go Load: "multiple YAML documents not supported"
    text = "version: 1\nmode: audit\nforward_proxy: {enabled: true}\n---\nmode: strict\n"
    if impl == "stand-in":
        with pytest.raises(standin.PipelockConfigError, match="multiple YAML documents"):
            standin.load_config(text)
    else:
        assert any("multiple YAML documents" in p for p in oracle.parse(text)[1])


@dataclass(frozen=True)
class Host:
    """Does pipelock let a request for ``host`` through its allowlist?"""

    rule: str
    source: str
    mode: str | None  # None: omitted
    allowlist: tuple[str, ...]
    host: str
    allowed: bool


ALLOW_ROWS = [
    Host("strict enforces the allowlist", "internal/scanner/scanner.go New, checkAllowlist",
         "strict", ("api.example.test",), "evil.example", False),
    Host("strict admits a listed host", "internal/scanner/scanner.go checkAllowlist",
         "strict", ("api.example.test",), "api.example.test", True),
    Host("balanced does not enforce the allowlist", "internal/scanner/scanner.go New",
         "balanced", ("api.example.test",), "evil.example", True),
    Host("audit does not enforce the allowlist", "internal/scanner/scanner.go New",
         "audit", ("api.example.test",), "evil.example", True),
    Host("omitted mode is balanced: not enforced", "internal/config/normalize.go ApplyDefaults",
         None, ("api.example.test",), "evil.example", True),
    Host("an empty allowlist allows every host", "internal/scanner/scanner.go checkAllowlist",
         "balanced", (), "evil.example", True),
    Host("allowlist *.x matches the apex", "internal/scanner/scanner.go MatchDomain",
         "strict", ("*.chatgpt.com",), "chatgpt.com", True),
    Host("allowlist *.x matches deep subdomains", "internal/scanner/scanner.go MatchDomain",
         "strict", ("*.chatgpt.com",), "a.b.chatgpt.com", True),
    Host("allowlist *.x does not match a suffix look-alike", "internal/scanner/scanner.go MatchDomain",
         "strict", ("*.chatgpt.com",), "evilchatgpt.com", False),
    Host("allowlist matching ignores case and one trailing dot", "internal/scanner/scanner.go MatchDomain",
         "strict", ("API.Example.Test.",), "api.example.test.", True),
    Host("allowlist IP literals match exactly, never by wildcard", "internal/scanner/scanner.go MatchDomain",
         "strict", ("*.168.1.1",), "192.168.1.1", False),
    Host("a bare * allowlist entry is a literal, matching no real host",
         "internal/scanner/scanner.go MatchDomain", "strict", ("*",), "api.example.test", False),
]


def _data(mode, allowlist, passthrough=(), tls=True) -> dict:
    data = copy.deepcopy(BASE)
    if mode is None:
        data.pop("mode")
    else:
        data["mode"] = mode
    data["api_allowlist"] = list(allowlist)
    data["tls_interception"].update(enabled=tls, passthrough_domains=list(passthrough))
    return data


@pytest.mark.parametrize("row", ALLOW_ROWS, ids=lambda r: r.rule)
@pytest.mark.parametrize("impl", ["stand-in", "oracle"])
def test_allowlist_rule(row: Host, impl: str):
    data = _data(row.mode, row.allowlist)
    if impl == "stand-in":
        got = PipelockPolicy(PipelockSettings.from_config(data)).allowed(row.host)
    else:
        got = oracle.allows(data, row.host)
    assert got is row.allowed, f"{row.rule} ({row.source}): {impl} allowed={got}"


@dataclass(frozen=True)
class Tunnel:
    """Does pipelock decrypt a CONNECT to ``host``?"""

    rule: str
    source: str
    passthrough: tuple[str, ...]
    host: str
    intercepted: bool
    tls: bool = True


PASSTHROUGH_ROWS = [
    Tunnel("a passthrough host is not decrypted", "internal/proxy/forward.go; intercept.go isPassthrough",
           ("api.example.test",), "api.example.test", False),
    Tunnel("any other host is decrypted", "internal/proxy/forward.go (shouldIntercept)",
           ("api.example.test",), "other.example", True),
    Tunnel("passthrough *.x matches subdomains", "internal/proxy/intercept.go isPassthrough",
           ("*.chatgpt.com",), "ab.chatgpt.com", False),
    Tunnel("passthrough *.x does NOT match the apex", "internal/proxy/intercept.go isPassthrough",
           ("*.chatgpt.com",), "chatgpt.com", True),
    Tunnel("passthrough matching ignores case", "internal/proxy/intercept.go isPassthrough",
           ("API.Example.TEST",), "api.example.test", False),
    Tunnel("interception off: nothing is decrypted", "internal/proxy/forward.go (shouldIntercept)",
           (), "other.example", False, tls=False),
]


@pytest.mark.parametrize("row", PASSTHROUGH_ROWS, ids=lambda r: r.rule)
@pytest.mark.parametrize("impl", ["stand-in", "oracle"])
def test_passthrough_rule(row: Tunnel, impl: str):
    data = _data("strict", ("api.example.test",), row.passthrough, tls=row.tls)
    if impl == "stand-in":
        got = PipelockPolicy(PipelockSettings.from_config(data)).decrypts(row.host)
    else:
        got = oracle.intercepts(data, row.host)
    assert got is row.intercepted, f"{row.rule} ({row.source}): {impl} intercepted={got}"


@pytest.mark.parametrize("mode, refused", [(0o600, False), (0o640, False), (0o644, True),
                                           (0o660, True), (0o700, True), (0o610, True)])
@pytest.mark.parametrize("impl", ["stand-in", "oracle"])
def test_ca_key_mode_rule(tmp_path, mode, refused, impl):
    """internal/config/validate.go validateTLSInterception: a CA key with any
    of the bits 0o137 is "too permissive"."""
    cert, key = tmp_path / "ca.pem", tmp_path / "ca-key.pem"
    cert.write_text("cert")
    key.write_text("key")
    os.chmod(key, mode)
    data = copy.deepcopy(BASE)
    data["tls_interception"].update(ca_cert=str(cert), ca_key=str(key))
    problems = standin.check_ca_files(data) if impl == "stand-in" else oracle.ca_file_problems(data)
    assert bool(problems) is refused, f"mode {mode:04o}: {impl} said {problems}"
    if refused:
        assert "too permissive" in problems[0]


# --- issue 15: the stand-in as strict as pipelock ------------------------------
# Rows for the stand-in's enforcement rules (pipelock HEAD 40865129, read in
# luckyPipewrench/pipelock). Each runs against the stand-in's policy; where
# the suite's oracle models the rule it runs there too.

from bottle_api import hostnames  # noqa: E402
from bottle_bundle import pipelock_proxy as proxy  # noqa: E402
from bottle_bundle.egress_proxy import EgressInjector, EgressRoute, Names, decide  # noqa: E402


def _policy(edit=None, clock=lambda: 0.0) -> PipelockPolicy:
    data = copy.deepcopy(BASE)
    data["dlp"] = {"patterns": [{"name": "anthropic", "regex": r"sk-ant-[a-z0-9]{8,}"}]}
    data["request_body_scanning"] = {"enabled": True, "action": "block"}
    if edit:
        edit(data)
    # a public (TEST-NET-3) address: the SSRF guard passes it; no lookup is made
    return PipelockPolicy(PipelockSettings.from_config(standin.load_config(_dump(data))), clock=clock,
                          resolve=lambda host: ["203.0.113.7"])


def _dump(data):
    import yaml

    return yaml.safe_dump(data)


def test_dlp_patterns_are_case_insensitive():
    """internal/scanner/scanner.go New (~285-286): ``(?i)`` is prefixed to
    every DLP pattern that lacks it."""
    policy = _policy()
    verdict, _ = policy.check_request("api.example.test", [("Authorization", "SK-ANT-ABCDEF123456")])
    assert verdict == proxy.Verdict(403, proxy.REASON_HEADER_SECRET)
    assert oracle.dlp_misses({"dlp": {"patterns": [{"name": "a", "regex": r"sk-ant-[a-z0-9]{8,}"}]}},
                             {"upper": "SK-ANT-ABCDEF123456"}) == []


def test_header_mode_sensitive_is_the_default():
    """internal/config/normalize.go (~396-412): header_mode "" -> sensitive,
    scanning only Authorization, Cookie, X-Api-Key, X-Token,
    Proxy-Authorization, X-Goog-Api-Key; ``all`` scans every header."""
    secret = "sk-ant-abcdef123456"
    policy = _policy()
    assert policy.check_request("api.example.test", [("X-Custom", secret)]) == (None, None)
    for name in proxy.SENSITIVE_HEADERS:
        assert policy.check_request("api.example.test", [(name.lower(), secret)])[0] is not None, name
    every = _policy(put("request_body_scanning.header_mode", "all"))
    assert every.check_request("api.example.test", [("X-Custom", secret)])[0] is not None


def test_connect_headers_are_scanned():
    """internal/proxy/forward.go (~178-209): the CONNECT request's own headers
    go through header DLP; a block answers ``CONNECT blocked: header DLP match``."""
    verdict = _policy().check_connect("api.example.test", [("Proxy-Authorization", "sk-ant-abcdef123456")])
    assert verdict is not None and verdict.status == 403
    assert verdict.body(connect=True) == "CONNECT blocked: header DLP match"


@pytest.mark.parametrize("configured, effective", [(None, 60), (0, 60), (-5, 60), (7, 7)])
def test_rate_limit_defaults_to_60(configured, effective):
    """internal/config/normalize.go (~143-144): max_requests_per_minute <= 0
    or absent becomes 60."""
    edit = None if configured is None else put("fetch_proxy.monitoring", {"max_requests_per_minute": configured})
    assert _policy(edit).settings.max_requests_per_minute == effective


def test_rate_limit_counts_per_base_domain():
    """internal/scanner/scanner.go checkRateLimit (~1189) keys the window on
    baseDomain (~2229, publicsuffix EffectiveTLDPlusOne): rotating
    subdomains shares one budget; the 429 reads ``rate limit exceeded for H``."""
    policy = _policy(lambda d: (put("fetch_proxy.monitoring", {"max_requests_per_minute": 2})(d),
                                put("mode", "balanced")(d)))
    assert policy.check_request("a.evil.test", [])[0] is None
    assert policy.check_request("b.evil.test", [])[0] is None
    verdict = policy.check_request("c.evil.test", [])[0]
    assert verdict is not None and verdict.status == 429
    assert verdict.body(connect=False) == "blocked: rate limit exceeded for c.evil.test"
    assert policy.check_request("other.test", [])[0] is None
    assert proxy.base_domain("a.b.chatgpt.com") == "chatgpt.com"
    assert proxy.base_domain("x.y.co.uk") == "y.co.uk"
    assert proxy.base_domain("10.0.0.1") == "10.0.0.1"


def test_block_text_is_pipelocks_and_has_no_reason_header():
    """internal/proxy/forward.go (~246 ``CONNECT blocked: `` + reason, ~730
    ``blocked: `` + reason), scanner.go checkAllowlist (~1046 ``domain not in
    allowlist: H``); pipelock sets no reason header."""
    policy = _policy()
    connect = policy.check_connect("evil.example")
    assert connect.body(connect=True) == "CONNECT blocked: domain not in allowlist: evil.example"
    plain = policy.check_request("evil.example", [])[0]
    assert plain.body(connect=False) == "blocked: domain not in allowlist: evil.example"
    import inspect

    assert "REASON_HEADER:" not in inspect.getsource(proxy.PipelockAddon._refuse)


@pytest.mark.parametrize("target, sni, mismatch", [
    ("api.example.test", "api.example.test", False),
    ("api.example.test", "API.Example.Test.", False),  # lower-cased, one dot trimmed
    ("api.example.test", "denied.example", True),
    ("api.example.test", None, False),  # no SNI extension: let through
    ("api.example.test", "api.example.test.evil", True),
])
def test_sni_must_name_the_connect_target(target, sni, mismatch):
    """internal/proxy/sni.go verifySNI (~196-272), called from forward.go
    handleConnect (~435) for every CONNECT (sni_verification defaults to
    true: config/schema_receiver_methods.go SNIVerificationEnabled)."""
    assert PipelockPolicy.sni_mismatch(target, sni) is mismatch


@pytest.mark.parametrize("authority, mismatch", [
    ("api.example.test", False), ("api.example.test:443", False), ("API.example.test", False),
    ("denied.example", True), ("api.example.test:8443", True), (None, True),
])
def test_inner_host_must_name_the_connect_target(authority, mismatch):
    """internal/proxy/intercept.go interceptTunnel (~362-389): a decrypted
    request whose Host (default port 443) differs from the CONNECT target
    gets 403 ``authority mismatch: blocked``."""
    assert PipelockPolicy.authority_mismatch("api.example.test", 443, authority) is mismatch
    assert proxy.Verdict(403, proxy.REASON_AUTHORITY, "authority mismatch: blocked").body(
        connect=False) == "authority mismatch: blocked"


@pytest.mark.parametrize("header, same", [
    ("allowed.test", True), ("ALLOWED.test:80", True), ("denied.test", False),
    ("allowed.test:8080", False), ("a@allowed.test", False), ("allowed.test.", True),
])
def test_plain_request_host_must_match_its_uri(header, same):
    """pipelock runs on Go's net/http: for an absolute-form request URI the
    server ignores the Host line (net/http/request.go readRequest,
    ``req.Host = req.URL.Host``), so a plain ``GET http://allowed/`` with
    ``Host: denied`` reaches allowed as allowed. mitmproxy forwards the
    guest's Host instead, so the stand-in refuses a Host that names another
    host (issue 15: fronting through a plain request)."""
    assert proxy.same_authority(header, "allowed.test", 80) is same


@pytest.mark.parametrize("configured, effective", [
    (None, (300, 120)), ((0, 0), (300, 120)), ((-1, -5), (300, 120)), ((2, 1), (2, 1))])
def test_tunnel_limits_are_pipelocks_defaults(configured, effective):
    """internal/config/normalize.go (~190-194): max_tunnel_seconds and
    idle_timeout_seconds <= 0 or absent become 300 and 120."""
    def edit(data):
        if configured is not None:
            data["forward_proxy"].update(max_tunnel_seconds=configured[0],
                                         idle_timeout_seconds=configured[1])
    s = _policy(edit).settings
    assert (s.max_tunnel_seconds, s.idle_timeout_seconds) == effective


def test_tunnel_limit_rules():
    """forward.go (~392-396, ~534-535), relay.go copyWithIdleTimeout,
    intercept.go (~307-317): the absolute deadline cuts every tunnel; the
    idle timeout only the relayed (not decrypted) ones; activity re-arms it."""
    def edit(data):
        data["forward_proxy"].update(max_tunnel_seconds=2, idle_timeout_seconds=1)
        data["api_allowlist"] = ["relayed.test", "decrypted.test"]
        data["tls_interception"]["passthrough_domains"] = ["relayed.test"]

    addon = proxy.PipelockAddon(_policy(edit), logger=None, clock=lambda: 100.0)
    addon._targets.update(r=("relayed.test", 443), d=("decrypted.test", 443))
    addon._opened.update(r=100.0, d=100.0)
    assert addon.expired("r", 100.0, 100.5) is None
    assert "idle_timeout_seconds" in addon.expired("r", 100.0, 101.0)
    assert addon.expired("r", 100.9, 101.5) is None  # activity re-arms the idle timer
    assert addon.expired("d", 100.0, 101.5) is None  # decrypted: no idle cut
    assert "max_tunnel_seconds" in addon.expired("d", 101.9, 102.0)
    assert "max_tunnel_seconds" in addon.expired("r", 101.9, 102.0)
    assert addon.expired("unknown", 0.0, 1e9) is None


def test_onboarding_app_is_off_in_both_daemons():
    """mitmproxy's onboarding addon answers ``mitm.it`` before any addon's
    allowlist check (mitmproxy/addons/onboarding.py); both daemons turn it off."""
    from bottle_bundle import mitm

    assert mitm.HARDENED_OPTIONS["onboarding"] is False
    import inspect

    from bottle_bundle import egress_proxy
    for module in (proxy, egress_proxy):
        assert "HARDENED_OPTIONS" in inspect.getsource(module.main), module.__name__


# Tricky names: every matcher brings them to one canonical form
# (bottle_api.hostnames), and egress injects only where BOTH pipelocks (the
# stand-in and the oracle, which follows real pipelock's isPassthrough with
# no trailing-dot handling) pass the tunnel through undecrypted.
TRICKY = [
    "api.example.test", "API.Example.TEST", "api.example.test.", "api.example.test..",
    "xn--bcher-kva.example", "b\u00fccher.example", "[::1]", "::1", "127.0.0.1", "0x7f.0.0.1",
    "a@api.example.test", "api.example.test:443", "api.example.test%00", " api.example.test",
    "api..example.test", "*.example.test", "", "api.example.test/x",
]


@pytest.mark.parametrize("name", TRICKY)
def test_one_normaliser_for_every_matcher(name):
    from bottle_bundle import hosts

    try:
        want = hostnames.canonical(name)
    except hostnames.HostError:
        want = ""
    assert hosts.normalize(name) == want
    route = EgressInjector([EgressRoute("api.example.test", "Authorization", "Bearer", "T")], {"T": "t"})
    names = Names(name, 443, name or None, name, "https")
    header, _ = decide(route, names)
    data = _data("strict", ("api.example.test",), ("api.example.test",))
    if header is not None:  # egress injects: both pipelocks must pass it through
        assert not PipelockPolicy(PipelockSettings.from_config(data)).decrypts(name), name
        assert not oracle.intercepts(data, name), name
        assert name == want == "api.example.test"


# --- issue 15 (second pass): the SSRF guard ----------------------------------------
# Real pipelock (luckyPipewrench/pipelock HEAD 40865129): internal/scanner/scanner.go
# checkSSRF (~895-1025: "SSRF blocked: H resolves to internal IP X", trusted_domains
# exempt via IsTrustedDomain ~500-514, ssrf.ip_allowlist via IsIPAllowlisted
# ~518-525, a failed lookup refuses), internal/config/normalize.go (~222-236: the
# default ``internal`` list), internal/scanner/core.go (coreInternalCIDRDefs
# ~149-162 merged in by mergedSSRFCIDRs ~548; checkCoreSSRFLiteral ~576 when
# ``internal: []``). Each row runs against the stand-in and the suite's oracle.

@dataclass(frozen=True)
class Ssrf:
    rule: str
    edit: Callable[[dict], None] | None
    host: str
    addresses: tuple[str, ...] | None  # None: the lookup fails
    refused: bool


SSRF_ROWS = [
    Ssrf("on by default: an allowlisted host resolving to RFC 1918 is refused", None,
         "api.example.test", ("172.18.0.5",), True),
    Ssrf("a public address passes", None, "api.example.test", ("203.0.113.7",), False),
    Ssrf("loopback is internal", None, "api.example.test", ("127.0.0.1",), True),
    Ssrf("0.0.0.0/8 is internal", None, "api.example.test", ("0.1.2.3",), True),
    Ssrf("link-local (cloud metadata) is internal", None, "api.example.test", ("169.254.169.254",), True),
    Ssrf("CGNAT is internal", None, "api.example.test", ("100.64.0.1",), True),
    Ssrf("IPv6 unique local is internal", None, "api.example.test", ("fd00::1",), True),
    Ssrf("IPv4-mapped IPv6 loopback is internal", None, "api.example.test", ("::ffff:127.0.0.1",), True),
    Ssrf("multicast is in the default list", None, "api.example.test", ("224.0.0.1",), True),
    Ssrf("one internal address among public ones refuses", None, "api.example.test",
         ("203.0.113.7", "10.1.2.3"), True),
    Ssrf("a failed lookup refuses (fail closed)", None, "api.example.test", None, True),
    Ssrf("an IP literal in a private range is refused", put("api_allowlist", ["10.0.0.7"]),
         "10.0.0.7", ("10.0.0.7",), True),
    Ssrf("ssrf.ip_allowlist exempts its range", put("ssrf", {"ip_allowlist": ["172.18.0.5/32"]}),
         "api.example.test", ("172.18.0.5",), False),
    Ssrf("ssrf.ip_allowlist exempts only its range", put("ssrf", {"ip_allowlist": ["172.18.0.5/32"]}),
         "api.example.test", ("172.18.0.6",), True),
    Ssrf("trusted_domains exempts the host", put("trusted_domains", ["api.example.test"]),
         "api.example.test", ("172.18.0.5",), False),
    Ssrf("trusted_domains is MatchDomain: case and trailing dot",
         put("trusted_domains", ["API.example.test."]), "api.Example.test.", ("172.18.0.5",), False),
    Ssrf("trusted_domains never exempts an IP literal",
         lambda d: (put("trusted_domains", ["10.0.0.7"])(d), put("api_allowlist", ["10.0.0.7"])(d)),
         "10.0.0.7", ("10.0.0.7",), True),
    Ssrf("trusted_domains does not exempt another host", put("trusted_domains", ["other.example.test"]),
         "api.example.test", ("172.18.0.5",), True),
    Ssrf("core ranges stay when internal is narrowed", put("internal", ["198.51.100.0/24"]),
         "api.example.test", ("10.1.2.3",), True),
    Ssrf("a configured internal range is added", put("internal", ["198.51.100.0/24"]),
         "api.example.test", ("198.51.100.9",), True),
    Ssrf("internal: [] turns the resolving guard off", put("internal", []),
         "api.example.test", ("10.1.2.3",), False),
    Ssrf("internal: [] still refuses a private IP literal (core floor)",
         lambda d: (put("internal", [])(d), put("api_allowlist", ["10.0.0.7"])(d)),
         "10.0.0.7", ("10.0.0.7",), True),
]


def _fake_resolver(addresses):
    def resolve(host):
        if addresses is None:
            raise OSError(-2, "Name or service not known")
        return list(addresses)
    return resolve


@pytest.mark.parametrize("row", SSRF_ROWS, ids=lambda r: r.rule)
@pytest.mark.parametrize("impl", ["stand-in", "oracle"])
def test_ssrf_rule(row: Ssrf, impl: str):
    data = copy.deepcopy(BASE)
    if row.edit:
        row.edit(data)
    assert oracle.load_problems(data) == [] and standin.validate_config(data) == []
    if impl == "oracle":
        refused = oracle.ssrf_refuses(data, row.host, row.addresses)
    else:
        policy = PipelockPolicy(PipelockSettings.from_config(standin.load_config(_dump(data))),
                                resolve=_fake_resolver(row.addresses))
        verdict = policy.check_connect(row.host)
        refused = verdict is not None
        if refused:
            assert verdict.status == 403 and verdict.reason in (proxy.REASON_SSRF, proxy.REASON_CORE_SSRF)
            if row.addresses and verdict.reason == proxy.REASON_SSRF:
                assert verdict.body(True).startswith(
                    f"CONNECT blocked: SSRF blocked: {row.host} resolves to internal IP "), verdict
        # plain requests are held to the same guard
        plain, _ = policy.check_request(row.host, ())
        assert (plain is not None) is refused
    assert refused is row.refused, f"{row.rule}: {impl}"


def test_ssrf_guard_runs_after_the_allowlist():
    """scanner.go Scan: checkAllowlist before checkSSRF, so a host outside the
    allowlist is refused as such (and never resolved)."""
    looked_up = []
    policy = PipelockPolicy(PipelockSettings.from_config(standin.load_config(_dump(BASE))),
                            resolve=lambda h: looked_up.append(h) or ["10.0.0.1"])
    verdict = policy.check_connect("denied.example.test")
    assert verdict.reason == proxy.REASON_ALLOWLIST and looked_up == []


@pytest.mark.parametrize("host, ip", [("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
                                      ("2130706433", "127.0.0.1"), ("0x0a.0.0.1", "10.0.0.1"),
                                      ("127.0.0.1", None), ("api.example.test", None)])
def test_alternative_ip_spellings_are_decoded(host, ip):
    """scanner.go parseAlternativeIP (~845-890): hex/octal/decimal-integer IPv4
    is decoded and checked without DNS ("SSRF blocked: H decodes to internal IP X")."""
    got = proxy.parse_alternative_ip(host)
    assert (str(got) if got else None) == ip
    if ip:
        data = copy.deepcopy(BASE)
        data["api_allowlist"] = [host]
        policy = PipelockPolicy(PipelockSettings.from_config(standin.load_config(_dump(data))),
                                resolve=lambda h: pytest.fail("no lookup for an IP spelling"))
        assert policy.check_connect(host).body(True) == \
            f"CONNECT blocked: SSRF blocked: {host} decodes to internal IP {ip}"


SSRF_LOAD_ROWS = [
    Load("internal entries are CIDRs", "validate.go validateInternal (~1109)",
         put("internal", ["10.0.0.0"]), "internal"),
    Load("ssrf.ip_allowlist entries are CIDRs", "validate.go validateSSRF (~1123)",
         put("ssrf", {"ip_allowlist": ["nope"]}), "ssrf.ip_allowlist"),
    Load("ssrf.ip_allowlist refuses /0", "validate.go validateSSRF (~1129)",
         put("ssrf", {"ip_allowlist": ["0.0.0.0/0"]}), "ssrf.ip_allowlist"),
    Load("ssrf.ip_allowlist refuses host bits", "validate.go validateSSRF (~1136)",
         put("ssrf", {"ip_allowlist": ["10.0.0.5/24"]}), "ssrf.ip_allowlist"),
    Load("ssrf.ip_allowlist takes a /32", "validate.go validateSSRF",
         put("ssrf", {"ip_allowlist": ["172.18.0.5/32"]}), None),
    Load("ssrf has no other key", "schema.go SSRF (KnownFields)",
         put("ssrf", {"enabled": False}), "ssrf.enabled"),
    Load("trusted_domains refuses a bare wildcard", "validate.go ValidateTrustedDomains (~41)",
         put("trusted_domains", ["*"]), "trusted_domains"),
    Load("trusted_domains refuses *.tld", "validate.go ValidateTrustedDomains (~44-47)",
         put("trusted_domains", ["*.test"]), "trusted_domains"),
    Load("trusted_domains takes a host", "validate.go ValidateTrustedDomains",
         put("trusted_domains", ["api.example.test"]), None),
]


@pytest.mark.parametrize("row", SSRF_LOAD_ROWS, ids=lambda r: r.rule)
@pytest.mark.parametrize("impl", ["stand-in", "oracle"])
def test_ssrf_load_rule(row: Load, impl: str):
    test_load_rule(row, impl)


# --- issue 15 (second pass): the renderer and the spec loader in the tricky-name table
# The spec loader canonicalises every declared host (bottle_api.spec _SpecReader.host,
# through bottle_api.hostnames), so the renderer writes the name egress and the
# stand-in match with. Real pipelock lower-cases and trims one trailing dot in
# MatchDomain (internal/scanner/scanner.go ~2241-2262) and verifySNI
# (internal/proxy/sni.go), but NOT in isPassthrough (internal/proxy/intercept.go
# ~1531-1549): the oracle keeps that difference, and a canonical passthrough entry
# is what makes the two agree for every spelling egress injects for.

@pytest.mark.parametrize("name", TRICKY)
def test_tricky_route_host_through_loader_renderer_egress_and_both_pipelocks(name):
    import yaml

    from bottle_api.spec import SpecError, parse_spec
    from bottle_ref import planning
    from bottle_ref.pipelock import render_config

    try:
        spec = parse_spec(f"name: demo\negress: {{routes: [{{host: {json_str(name)}, token_env: T}}]}}\n")
    except SpecError:
        spec = None
    try:
        want = hostnames.pattern(name)
    except hostnames.HostError:
        want = None
    if spec is None:
        return  # refused with one line: nothing rendered, nothing matched
    declared = spec.routes[0].host
    assert declared == want, f"the loader kept {declared!r}; the normaliser says {want!r}"
    allow, passthrough = planning.pipelock_hosts(spec, spec.routes)
    data = yaml.safe_load(render_config(allow=allow, passthrough=passthrough, listen="127.0.0.1:1"))
    assert declared in data["api_allowlist"] and declared in data["tls_interception"]["passthrough_domains"]
    route = EgressInjector([EgressRoute(declared, "Authorization", "Bearer", "T")], {"T": "t"})
    policy = PipelockPolicy(PipelockSettings.from_config(data))
    concrete = want[2:] if want.startswith("*.") else want
    spellings = {name, concrete, concrete.upper(), concrete + ".", "x." + concrete, "X." + concrete + "."}
    injected = []
    for spelling in sorted(spellings):
        header, _ = decide(route, Names(spelling, 443, spelling, spelling, "https"))
        if header is None:
            continue
        injected.append(spelling)
        # egress injects only for the canonical spelling (egress_proxy decide) ...
        assert spelling == hostnames.canonical(spelling), spelling
        # ... which the stand-in and the oracle both allow and pass through undecrypted
        assert not policy.decrypts(spelling) and not oracle.intercepts(data, spelling), spelling
        assert policy.allowed(spelling) and oracle.allows(data, spelling), spelling
    assert injected, f"egress injects for no spelling of {declared!r}"


def json_str(text: str) -> str:
    import json

    return json.dumps(text)
