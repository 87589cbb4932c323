"""pipelock.yaml: render it, and validate it the way pipelock does.

pipelock treats an unknown key as a hard error, so the renderer emits only
pipelock's own keys (DESIGN §8) and checks its output with the bundle's
validator (`bottle_bundle.pipelock_config`).

Why passthrough matters (seed "codex fix"): egress injects the real bearer
*before* pipelock; if pipelock decrypted those requests its header DLP would
flag the token ("request header contains secret") and the retry storm would
trip its 429. Hosts egress injects for are therefore TLS passthrough: pipelock
still host-gates the CONNECT but does not decrypt and rescan egress-owned auth.

Why ``mode: strict`` (issue 9): pipelock enforces ``api_allowlist`` only in
strict mode (internal/scanner/scanner.go New), and an empty list allows every
host (checkAllowlist). A ``balanced`` config with any allowlist leaves the
bottle's egress open. The renderer therefore always writes ``strict``, with a
non-empty allowlist (pipelock refuses strict with an empty one:
internal/config/validate.go validateMode), TLS interception on, and no
wildcard broader than ``*.<name>.<tld>`` (the breadth rule pipelock applies to
its other host lists: validate.go ValidateTrustedDomains).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bottle_bundle.pipelock_config import (  # noqa: F401 - re-exported for the renderer's users
    ANY, CA_CERT, CA_KEY, CONFIG_PATH, DEFAULT_LISTEN, MODES, PIPELOCK_SCHEMA, VERSION,
    PipelockConfigError, _key_of, load_config, validate_config,
)

from . import yamltext

# Secrets the agent must never send anywhere pipelock decrypts. Patterns are
# written in the common subset of RE2 (pipelock) and Python `re` (the bundle's
# compatible proxy).
DLP_PATTERNS: tuple[Mapping[str, str], ...] = (
    {"name": "anthropic-api-key", "regex": r"sk-ant-[A-Za-z0-9_-]{20,}", "severity": "critical"},
    {"name": "openai-api-key", "regex": r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
     "severity": "critical"},
    {"name": "jwt", "regex": r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
     "severity": "high"},
    {"name": "github-token", "regex": r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}",
     "severity": "critical"},
    {"name": "aws-access-key", "regex": r"(?:AKIA|ASIA)[A-Z0-9]{16}", "severity": "critical"},
    {"name": "private-key-pem", "regex": r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----",
     "severity": "critical"},
)


# What a report names when a bottle ran on the bundle's pipelock stand-in
# (the `Backend.standins` live hook, ``{tool: description}``): a run on it is
# a run on pipelock's rules as the stand-in models them, not on pipelock.
STANDIN: Mapping[str, str] = {
    "pipelock": "stand-in (bottle_bundle.pipelock_proxy: pipelock's config validation, "
                "its CA loading (ECDSA only), strict-only allowlist, per-list wildcards, passthrough, SNI and authority "
                "checks, (?i) header DLP, 429 per base domain, the SSRF guard with its "
                "exemptions, tunnel limits; not its fetch endpoint, URL or body DLP, built-in "
                "DLP patterns, scan_env or response scanning; not pipelock's binary)",
}


def wildcard_breadth_error(pattern: str) -> str | None:
    """Why ``pattern`` is too broad for a bottle's pipelock lists, or None:
    a bare ``*``, any wildcard that is not a ``*.`` prefix, or a ``*.`` that
    names a top-level domain (``*.com``; pipelock's ValidateTrustedDomains
    needs a dot after ``*.``)."""
    p = pattern.strip().lower().rstrip(".")
    if p == "*":
        return "a bare wildcard matches every host"
    if p.startswith("*."):
        if "." not in p[2:]:
            return f"{pattern!r} matches a whole top-level domain"
        return None
    if any(c in p for c in "*?[]"):
        return f"{pattern!r}: only exact hosts and *.example.com wildcards are supported"
    return None


def _dedupe(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def build_config(
    *,
    allow: Sequence[str],
    passthrough: Sequence[str],
    listen: str,
    ca_cert: str = CA_CERT,
    ca_key: str = CA_KEY,
    mode: str = "strict",
    max_requests_per_minute: int = 600,
    trusted_domains: Sequence[str] = (),
    ssrf_ip_allowlist: Sequence[str] = (),
) -> dict[str, Any]:
    """The config as data, in pipelock's key order. Lists are de-duplicated,
    first occurrence wins, so the order the caller chose is kept.

    pipelock's SSRF guard stays at its defaults (``internal`` is never
    written): the only exemptions are ``trusted_domains`` and
    ``ssrf.ip_allowlist``, written only when the caller names some (the
    live harness's `conventions.PIPELOCK_TRUSTED_HOSTS_ENV` hook)."""
    data: dict[str, Any] = {
        "version": VERSION,
        "mode": mode,
        "api_allowlist": _dedupe(list(allow)),
        "fetch_proxy": {
            "listen": listen,
            "monitoring": {"max_requests_per_minute": max_requests_per_minute},
        },
        "forward_proxy": {"enabled": True},
        "dlp": {"patterns": [dict(p) for p in DLP_PATTERNS]},
        "request_body_scanning": {"enabled": True, "action": "block", "scan_headers": True},
        "tls_interception": {
            "enabled": True,
            "ca_cert": ca_cert,
            "ca_key": ca_key,
            "passthrough_domains": _dedupe(list(passthrough)),
        },
    }
    if trusted_domains:
        data["trusted_domains"] = _dedupe(list(trusted_domains))
    if ssrf_ip_allowlist:
        data["ssrf"] = {"ip_allowlist": _dedupe(list(ssrf_ip_allowlist))}
    return data


def render_config(
    *,
    allow: Sequence[str],
    passthrough: Sequence[str],
    listen: str,
    ca_cert: str = CA_CERT,
    ca_key: str = CA_KEY,
    mode: str = "strict",
    max_requests_per_minute: int = 600,
    trusted_domains: Sequence[str] = (),
    ssrf_ip_allowlist: Sequence[str] = (),
) -> str:
    """pipelock.yaml text: deterministic, stable key order, and valid by
    construction (raises `PipelockConfigError` for bad arguments, e.g. a
    mode pipelock does not know)."""
    data = build_config(
        allow=allow, passthrough=passthrough, listen=listen, ca_cert=ca_cert,
        ca_key=ca_key, mode=mode, max_requests_per_minute=max_requests_per_minute,
        trusted_domains=trusted_domains, ssrf_ip_allowlist=ssrf_ip_allowlist,
    )
    problems = validate_config(data)
    for key, hosts in (("api_allowlist", data["api_allowlist"]),
                       ("tls_interception.passthrough_domains",
                        data["tls_interception"]["passthrough_domains"])):
        problems += [f"{key}: {why}" for h in hosts if (why := wildcard_breadth_error(h))]
    if problems:
        raise PipelockConfigError(problems, _key_of(problems[0]))
    body = yamltext.dump(data)
    return "# pipelock.yaml rendered by bottle-ref: pipelock's own keys only.\n" + body


