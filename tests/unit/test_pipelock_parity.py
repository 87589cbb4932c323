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
    Load("negative rate limit refused", "internal/config/validate.go validateFetchProxy",
         put("fetch_proxy.monitoring", {"max_requests_per_minute": -1}),
         "fetch_proxy.monitoring.max_requests_per_minute"),
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
