"""The suite's own model of pipelock: what it accepts, and what it enforces.

Written from pipelock's source (luckyPipewrench/pipelock, Go), independent of
any backend: this module never imports ``bottle_ref`` or ``bottle_bundle``, so
a reference bug cannot hide behind its own validator. Each rule names the
file and function it comes from; ``tests/unit/test_pipelock_parity.py`` runs
one table of those rules against this oracle and against the bundle's
stand-in.

Two questions a rendered ``pipelock.yaml`` must answer:

- *would pipelock load it?* (`load_problems`): known keys only, one YAML
  document, the validators' rules (internal/config/load.go, validate.go,
  after normalize.go's defaults);
- *would pipelock enforce the bottle's policy with it?* (`allows`,
  `intercepts`, `enforcement_problems`): the allowlist is enforced only in
  ``mode: strict`` and an empty one admits every host
  (internal/scanner/scanner.go ``New``, ``checkAllowlist``); wildcards match
  the apex in ``api_allowlist`` (``MatchDomain``) but not in
  ``passthrough_domains`` (internal/proxy/intercept.go ``isPassthrough``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

MODES = ("strict", "balanced", "audit")  # validate.go validateMode
DEFAULT_MODE = "balanced"  # normalize.go ApplyDefaults: mode "" -> balanced
DEFAULT_CERT_TTL = "24h"  # schema.go DefaultCertTTL
CA_KEY_FORBIDDEN_BITS = 0o137  # validate.go validateTLSInterception

ANY = object()  # a section pipelock knows; its contents are not modelled here

# Keys pipelock decodes (internal/config/schema.go: Config and the structs of
# the sections a bottle renders); yaml.v3 KnownFields(true) in load.go Load
# makes any other key fatal. Leaves are Python types, ANY, or [item schema].
KNOWN_KEYS: Mapping[str, Any] = {
    "version": int, "mode": str, "enforce": bool, "explain_blocks": bool,
    "api_allowlist": [str], "suppress": ANY,
    "fetch_proxy": {
        "listen": str, "timeout_seconds": int, "max_response_mb": int, "user_agent": str,
        "monitoring": {
            "max_url_length": int, "entropy_threshold": float,
            "subdomain_entropy_threshold": float, "max_requests_per_minute": int,
            "max_data_per_minute": int, "blocklist": [str],
            "subdomain_entropy_exclusions": [str],
        },
    },
    "forward_proxy": {"enabled": bool, "max_tunnel_seconds": int, "idle_timeout_seconds": int,
                      "sni_verification": bool, "redirect_websocket_hosts": [str]},
    "dlp": {"scan_env": bool, "secrets_file": str, "min_env_secret_length": int,
            "include_defaults": bool, "action": str,
            "patterns": [{"name": str, "regex": str, "severity": str, "validator": str,
                          "exempt_domains": [str], "action": str}]},
    "logging": {"format": str, "output": str, "file": str, "include_allowed": bool,
                "include_blocked": bool},
    "request_body_scanning": {"enabled": bool, "action": str, "max_body_bytes": int,
                              "scan_headers": bool, "header_mode": str,
                              "sensitive_headers": [str], "ignore_headers": [str]},
    "tls_interception": {"enabled": bool, "ca_cert": str, "ca_key": str,
                         "passthrough_domains": [str], "cert_ttl": str,
                         "cert_cache_size": int, "max_response_bytes": int},
    **dict.fromkeys((
        "websocket_proxy", "canary_tokens", "response_scanning", "mcp_input_scanning",
        "mcp_tool_scanning", "mcp_tool_policy", "git_protection", "session_profiling",
        "adaptive_enforcement", "mcp_session_binding", "kill_switch", "sentry",
        "metrics_listen", "emit", "tool_chain_detection", "mcp_ws_listener",
        "cross_request_detection", "reverse_proxy", "scan_api", "address_protection",
        "seed_phrase_detection", "rules", "file_sentry", "sandbox", "flight_recorder",
        "mcp_binary_integrity", "mcp_tool_provenance", "behavioral_baseline", "airlock",
        "browser_shield", "media_policy", "a2a_scanning", "taint", "mediation_envelope",
        "redaction", "agents", "default_agent_identity", "bind_default_agent_identity",
        "license_key", "license_file", "license_public_key"), ANY),
    "internal": [str],  # schema.go Config.Internal (the SSRF guard's ranges)
    "trusted_domains": [str],  # schema.go Config.TrustedDomains
    "ssrf": {"ip_allowlist": [str]},  # schema.go SSRF
}


# -- host matching, per list ------------------------------------------------------

def _trim_dot(s: str) -> str:
    return s[:-1] if s.endswith(".") else s  # Go strings.TrimSuffix(s, ".")


def match_domain(host: str, pattern: str) -> bool:
    """internal/scanner/scanner.go ``MatchDomain`` (api_allowlist): lower-case,
    one trailing dot trimmed, IP literals exact only, ``*.x.com`` matches
    ``x.com`` and every subdomain."""
    host, pattern = _trim_dot(host).lower(), _trim_dot(pattern).lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host == pattern
    if pattern.startswith("*."):
        return host == pattern[2:] or host.endswith(pattern[1:])
    return host == pattern


def is_passthrough(host: str, domains: Iterable[str]) -> bool:
    """internal/proxy/intercept.go ``isPassthrough``: lower-case, exact, or
    ``*.x.com`` matching subdomains only (never ``x.com``)."""
    host = host.lower()
    for pattern in domains:
        pattern = pattern.lower()
        if pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


# -- the SSRF guard -----------------------------------------------------------------
# internal/config/normalize.go (~222-236, HEAD 40865129): ``internal`` when nil.
SSRF_DEFAULT_INTERNAL = ("0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12",
                         "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "::1/128",
                         "fc00::/7", "fe80::/10", "224.0.0.0/4", "ff00::/8")
# internal/scanner/core.go coreInternalCIDRDefs: merged in whenever the guard is on.
SSRF_CORE = SSRF_DEFAULT_INTERNAL[:10]


def _nets(cidrs: Iterable[str]) -> list:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def _addr(text: str):
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def ssrf_refuses(data: Mapping, host: str, addresses: Iterable[str] | None) -> bool:
    """Whether pipelock's SSRF guard refuses ``host`` resolving to ``addresses``
    (None: resolution failed), for a config pipelock accepted
    (internal/scanner/scanner.go checkSSRF ~895-1025): on by default; the
    ranges are ``internal`` (nil -> normalize.go's list) plus the core ones;
    ``trusted_domains`` (MatchDomain on the lower-cased host, one dot trimmed;
    never an IP literal: IsTrustedDomain) and ``ssrf.ip_allowlist``
    (IsIPAllowlisted) exempt; a failed lookup refuses (fail closed). With
    ``internal: []`` only core-range IP literals are refused
    (core.go checkCoreSSRFLiteral). Alternative IP spellings are not modelled
    here (the caller passes a standard host)."""
    internal = data.get("internal")
    internal = list(SSRF_DEFAULT_INTERNAL) if internal is None else list(internal)
    allow = _nets(_section(data, "ssrf").get("ip_allowlist") or [])
    exempt = lambda ip: any(ip.version == n.version and ip in n for n in allow)  # noqa: E731

    def within(ip, nets):
        return any(ip.version == n.version and ip in n for n in nets)

    literal = _addr(host)
    if not internal:
        return literal is not None and not exempt(literal) and within(literal, _nets(SSRF_CORE))
    if addresses is None:
        return True
    if literal is None and any(match_domain(host, p) for p in data.get("trusted_domains") or []):
        return False
    ranges = _nets(SSRF_CORE) + _nets(internal)
    return any((ip := _addr(a)) is not None and within(ip, ranges) and not exempt(ip)
               for a in addresses)


def ssrf_exemptions(data: Mapping) -> list[str]:
    """The config's SSRF exemptions, as ``key: value`` lines: ``trusted_domains``,
    ``ssrf.ip_allowlist``, and an ``internal`` that drops a default range."""
    out = [f"trusted_domains: {d}" for d in data.get("trusted_domains") or []]
    out += [f"ssrf.ip_allowlist: {c}" for c in _section(data, "ssrf").get("ip_allowlist") or []]
    internal = data.get("internal")
    if internal is not None:
        missing = sorted(set(SSRF_DEFAULT_INTERNAL) - {str(n) for n in _nets(internal)})
        if missing:
            out.append(f"internal: drops {missing}")
    return out


def asked_trusted_hosts(env: Mapping[str, str]) -> set[str]:
    """The names a host context asks to exempt from the SSRF guard
    (`bottle_api.conventions.PIPELOCK_TRUSTED_HOSTS_ENV`), canonical."""
    from bottle_api import conventions, hostnames

    out = set()
    for raw in (env.get(conventions.PIPELOCK_TRUSTED_HOSTS_ENV) or "").split(","):
        if raw.strip():
            try:
                out.add(hostnames.canonical(raw.strip()))
            except hostnames.HostError:
                out.add(raw.strip())
    return out


def ssrf_exemption_problems(data: Mapping, asked: set[str]) -> list[str]:
    """Why the config's SSRF guard is weaker than pipelock's default beyond
    what the host context asked: any ``ssrf.ip_allowlist`` or narrowed
    ``internal`` (never asked for), and ``trusted_domains`` other than the
    ``asked`` names. pipelock lower-cases, trims and drops one trailing dot
    of each trusted domain (validate.go ValidateTrustedDomains ~34) and
    matches with MatchDomain, so names compare in canonical form
    (`bottle_api.hostnames`)."""
    from bottle_api import hostnames

    out = [f"{e} (nobody asked for it)" for e in ssrf_exemptions(data)
           if not e.startswith("trusted_domains: ")]
    for d in data.get("trusted_domains") or []:
        try:
            name = hostnames.canonical(d)
        except hostnames.HostError:
            name = d
        if name not in asked:
            out.append(f"trusted_domains: {d} exempts a host the host context did not name "
                       f"(asked: {sorted(asked)})")
    return out


def _section(data: Any, *keys: str) -> Mapping:
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data if isinstance(data, Mapping) else {}


def mode(data: Mapping) -> str:
    return data.get("mode") or DEFAULT_MODE


def enforced_allowlist(data: Mapping) -> list[str]:
    """The list pipelock's scanner checks: api_allowlist in strict mode, and
    nothing in balanced or audit (scanner.go ``New``)."""
    return list(data.get("api_allowlist") or []) if mode(data) == "strict" else []


def allows(data: Mapping, host: str) -> bool:
    """Whether pipelock lets a request for ``host`` past its allowlist
    (scanner.go ``checkAllowlist``: an empty list allows all)."""
    allow = enforced_allowlist(data)
    return not allow or any(match_domain(host, p) for p in allow)


def intercepts(data: Mapping, host: str) -> bool:
    """Whether pipelock decrypts a CONNECT to ``host``
    (internal/proxy/forward.go: ``TLSInterception.Enabled && !isPassthrough``)."""
    tls = _section(data, "tls_interception")
    return tls.get("enabled") is True and not is_passthrough(
        host, tls.get("passthrough_domains") or [])


def wildcard_too_broad(pattern: str) -> str | None:
    """Why a host-list entry admits too much, or None: a bare ``*``, a
    non-prefix wildcard, or ``*.<tld>`` (the breadth rule pipelock applies
    to its other host lists: validate.go ``ValidateTrustedDomains``)."""
    p = _trim_dot(pattern.strip().lower())
    if p == "*":
        return "a bare wildcard"
    if p.startswith("*."):
        return None if "." in p[2:] else f"{pattern!r} spans a whole top-level domain"
    if any(c in p for c in "*?[]"):
        return f"{pattern!r} is not an exact host or a *.example.com wildcard"
    return None


# -- would pipelock load it? -------------------------------------------------------

def _check_keys(value: Any, schema: Any, path: str, out: list[str]) -> None:
    if schema is ANY or value is None:
        return
    if isinstance(schema, Mapping):
        if not isinstance(value, Mapping):
            out.append(f"{path or '<root>'}: expected a mapping")
            return
        for key, sub in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key not in schema:
                out.append(f"{here}: unknown key")
            else:
                _check_keys(sub, schema[key], here, out)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            out.append(f"{path}: expected a list")
            return
        for i, item in enumerate(value):
            _check_keys(item, schema[0], f"{path}[{i}]", out)
    elif schema is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"{path}: expected a number")
    elif schema is int:
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(f"{path}: expected int")
    elif not isinstance(value, schema):
        out.append(f"{path}: expected {schema.__name__}")


def re2_problem(regex: str) -> str | None:
    """Why Go's ``regexp.Compile`` refuses ``regex`` (validate.go
    ``validateDLP``), checked with Google's RE2 (same syntax: no lookaround,
    no backreferences, ``\\z`` accepted, ``\\Z`` refused) plus ``\\C``,
    which C++ RE2 accepts and Go does not."""
    import re2  # google-re2

    i = 0
    while i < len(regex) - 1:
        if regex[i] == "\\":
            if regex[i + 1] == "C":
                return "invalid escape sequence: \\C"
            i += 2
        else:
            i += 1
    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(regex, options)
    except re2.error as exc:
        msg = exc.args[0] if exc.args else exc
        return msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
    return None


_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
          "m": 60.0, "h": 3600.0}
_DURATION_PART = r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)"


def go_duration(text: str) -> float | None:
    """Go ``time.ParseDuration`` in seconds, None where Go errors."""
    if text in ("0", "+0", "-0"):
        return 0.0
    body = text[1:] if text[:1] in "+-" else text
    parts = re.findall(_DURATION_PART, body)
    if not body or "".join(n + u for n, u in parts) != body:
        return None
    return (-1.0 if text.startswith("-") else 1.0) * sum(float(n) * _UNITS[u] for n, u in parts)


def load_problems(data: Any) -> list[str]:
    """Why pipelock would refuse to load ``data`` (empty: it would load it).
    File checks are `ca_file_problems`; this one is pure."""
    out: list[str] = []
    _check_keys(data, KNOWN_KEYS, "", out)
    if not isinstance(data, Mapping):
        return out
    m = mode(data)
    if m not in MODES:  # validate.go validateMode
        out.append(f"mode: invalid mode {m!r}")
    elif m == "strict" and not data.get("api_allowlist"):
        out.append("api_allowlist: strict mode requires at least one domain")
    logging = _section(data, "logging")  # validateLogging
    if (logging.get("format") or "json") not in ("json", "text"):
        out.append("logging.format: must be json or text")
    output = logging.get("output") or "stdout"
    if output not in ("stdout", "file", "both"):
        out.append("logging.output: must be stdout, file, or both")
    elif output != "stdout" and not logging.get("file"):
        out.append("logging.file: required when output is file or both")
    monitoring = _section(data, "fetch_proxy", "monitoring")  # validateFetchProxy
    # normalize.go turns max_requests_per_minute <= 0 into 60 before
    # validate.go sees it (load.go): only max_data_per_minute can be negative.
    for key in ("max_data_per_minute",):
        v = monitoring.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            out.append(f"fetch_proxy.monitoring.{key}: must be >= 0")
    if "" in (monitoring.get("blocklist") or []):
        out.append("fetch_proxy.monitoring.blocklist: empty entry")
    dlp = _section(data, "dlp")  # validateDLP (severity is never checked)
    if dlp.get("action"):
        out.append("dlp.action: not supported")
    for i, p in enumerate(dlp.get("patterns") or []):
        if not isinstance(p, Mapping):
            continue
        if not p.get("name") or not p.get("regex"):
            out.append(f"dlp.patterns[{i}]: name and regex are required")
        if isinstance(p.get("regex"), str) and p["regex"] and (why := re2_problem(p["regex"])):
            out.append(f"dlp.patterns[{i}].regex: {why}")
        if p.get("action") and p["action"] != "warn":
            out.append(f"dlp.patterns[{i}].action: only warn")
        if p.get("validator") and p["validator"] not in ("luhn", "mod97", "aba", "wif"):
            out.append(f"dlp.patterns[{i}].validator: unknown")
    scanning = _section(data, "request_body_scanning")  # validateRequestBodyScanning
    if scanning.get("enabled", True) is not False:  # normalize.go applySecurityDefaults
        if (scanning.get("action") or "warn") not in ("warn", "block"):
            out.append("request_body_scanning.action: must be warn or block")
        size = scanning.get("max_body_bytes")
        if isinstance(size, int) and not isinstance(size, bool) and size < 0:
            out.append("request_body_scanning.max_body_bytes: must be positive")
        if (scanning.get("header_mode") or "sensitive") not in ("sensitive", "all"):
            out.append("request_body_scanning.header_mode: must be sensitive or all")
    tls = _section(data, "tls_interception")  # validateTLSInterception
    if tls.get("enabled") is True:
        ttl = tls.get("cert_ttl") or DEFAULT_CERT_TTL
        seconds = go_duration(ttl) if isinstance(ttl, str) else None
        if seconds is None or seconds <= 0:
            out.append(f"tls_interception.cert_ttl: {ttl!r} is not a positive duration")
    for cidr in data.get("internal") or []:  # validateInternal (~1109)
        if _go_cidr(cidr) is None:
            out.append(f"internal: {cidr!r} is not a CIDR")
    for cidr in _section(data, "ssrf").get("ip_allowlist") or []:  # validateSSRF (~1122-1140)
        parsed = _go_cidr(cidr)
        if parsed is None:
            out.append(f"ssrf.ip_allowlist: {cidr!r} is not a CIDR")
        elif parsed[1].prefixlen == 0:
            out.append(f"ssrf.ip_allowlist: {cidr!r} is a catch-all")
        elif parsed[0] != parsed[1].network_address:
            out.append(f"ssrf.ip_allowlist: {cidr!r} has host bits set")
    for d in data.get("trusted_domains") or []:  # ValidateTrustedDomains (~29-55)
        if (why := wildcard_too_broad(d)) or (isinstance(d, str) and any(c in d for c in "/:")):
            out.append(f"trusted_domains: {d!r}: {why or 'not a hostname pattern'}")
    return out


def _go_cidr(text: Any):
    """Go net.ParseCIDR: ``(address, network)`` or None."""
    if not isinstance(text, str) or "/" not in text:
        return None
    try:
        return ipaddress.ip_address(text.split("/")[0]), ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def ca_file_problems(data: Mapping) -> list[str]:
    """validate.go ``validateTLSInterception``'s file checks: the CA key
    must exist with none of the mode bits 0o137 (0600 and 0640 pass)."""
    tls = _section(data, "tls_interception")
    key = tls.get("ca_key")
    if tls.get("enabled") is not True or not key:
        return []
    try:
        perm = stat.S_IMODE(os.stat(key).st_mode)
    except OSError:
        return [f"tls_interception.ca_key: not found at {key}"]
    return ([f"tls_interception.ca_key: too permissive (mode {perm:04o})"]
            if perm & CA_KEY_FORBIDDEN_BITS else [])


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's safe loader where PyYAML has it (pipelock's yaml.v3 is a
    port of libyaml; and the pure-Python parser costs ~3 ms a config), with
    duplicate keys refused (the constructor is Python either way)."""


def _mapping(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dup = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if dup is not None:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate key {dup!r}",
                                                node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse(text: str) -> tuple[Any, list[str]]:
    """``(data, problems)`` for pipelock.yaml text: yaml.v3 refuses a
    duplicate key, and load.go ``Load`` a second document."""
    try:
        docs = list(yaml.load_all(text, Loader=_StrictLoader))  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        return None, [f"<root>: not YAML pipelock can decode: {str(exc).splitlines()[0]}"]
    if len(docs) > 1:
        return docs[0], ["<root>: multiple YAML documents"]
    data = docs[0] if docs else {}
    return ({} if data is None else data), load_problems({} if data is None else data)


# -- would pipelock enforce the bottle's policy? ------------------------------------

# Secrets a bottle's own credentials put on the wire, and a sample of each:
# the rendered DLP patterns MUST catch the sample (pipelock compiles each
# pattern with (?i) prefixed: scanner.go New), or pipelock would let that
# credential through any host it decrypts (issue 15).
CREDENTIAL_SAMPLES: Mapping[str, str] = {
    # Codex's ChatGPT sign-in: JWT access/id tokens (codex-rs token_data.rs)
    "codex-jwt": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLXh5eiJ9.c2lnbmF0dXJlLXNhbXBsZQ",
    # Anthropic API key / Claude OAuth access token shape
    "anthropic-key": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
}


def credential_samples(*, codex_forwarded: bool, agent: str) -> dict[str, str]:
    """The samples a bottle's DLP patterns must catch: a JWT when Codex
    credentials are forwarded, the Anthropic key for Claude."""
    out = {}
    if codex_forwarded:
        out["codex-jwt"] = CREDENTIAL_SAMPLES["codex-jwt"]
    if agent == "claude":
        out["anthropic-key"] = CREDENTIAL_SAMPLES["anthropic-key"]
    return out


def dlp_misses(data: Mapping, samples: Mapping[str, str]) -> list[str]:
    """Which samples no DLP pattern of ``data`` matches, as pipelock compiles
    them ((?i) prefixed, RE2 syntax; Python's `re` on the RE2 subset)."""
    patterns = []
    for pat in _section(data, "dlp").get("patterns") or []:
        regex = pat.get("regex") if isinstance(pat, Mapping) else None
        if isinstance(regex, str) and regex and re2_problem(regex) is None:
            try:
                patterns.append(re.compile(regex if regex.startswith("(?i)") else "(?i)" + regex))
            except re.error:
                continue
    return [name for name, sample in samples.items() if not any(p.search(sample) for p in patterns)]


def enforcement_problems(data: Mapping, *, agent_hosts: Iterable[str],
                         passthrough: Iterable[str]) -> list[str]:
    """Why pipelock with ``data`` would not enforce the bottle's policy:
    mode strict (the only mode that enforces api_allowlist), a non-empty
    allowlist that admits the agent's API hosts, no wildcard broader than
    ``*.<domain>.<tld>``, TLS interception on, and ``passthrough_domains``
    exactly ``passthrough`` (as a set)."""
    out = []
    if mode(data) != "strict":
        out.append(f"mode is {mode(data)!r}: pipelock enforces api_allowlist only in strict mode, "
                   "so every host is reachable")
    allow = list(data.get("api_allowlist") or [])
    if not allow:
        out.append("api_allowlist is empty: pipelock then allows every host")
    tls = _section(data, "tls_interception")
    listed = list(tls.get("passthrough_domains") or [])
    for key, hosts in (("api_allowlist", allow), ("passthrough_domains", listed)):
        out += [f"{key}: {why}" for h in hosts if (why := wildcard_too_broad(h))]
    missing_agent = [h for h in agent_hosts if allow and not any(match_domain(h, p) for p in allow)]
    if missing_agent:
        out.append(f"api_allowlist does not admit the agent's API hosts {missing_agent}")
    if tls.get("enabled") is not True:
        out.append("tls_interception.enabled is not true: pipelock cannot see inside HTTPS")
    want, have = set(passthrough), set(listed)
    if have - want:
        out.append(f"passthrough_domains has hosts the bottle does not need to pass through: "
                   f"{sorted(have - want)}")
    if want - have:
        out.append(f"passthrough_domains lacks {sorted(want - have)}")
    return out
