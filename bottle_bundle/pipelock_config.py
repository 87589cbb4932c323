"""pipelock.yaml as pipelock reads it: the schema and the validator.

The bundle's pipelock-compatible proxy loads its config through
`load_config`, which refuses what pipelock refuses (an unknown key anywhere
is fatal: pipelock decodes with known-fields strictness). The reference's
renderer (`bottle_ref.pipelock`) checks its output against the same code.
The conformance suite does NOT use this module: it has its own oracle.

Stdlib, PyYAML and google-re2 (it runs inside the bundle image; RE2 is
what pipelock's Go regexp speaks, and no hand-written check matches it);
`load_ca` (pipelock's LoadCA rules for the CA pair) imports cryptography,
already in the bundle for mitmproxy, when called.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from bottle_api import conventions

MODES = ("strict", "balanced", "audit")
ACTIONS = ("warn", "block")
SEVERITIES = ("critical", "high", "medium", "low")  # documentation only: pipelock never checks them
LOG_FORMATS = ("json", "text")
LOG_OUTPUTS = ("stdout", "file", "both")
HEADER_MODES = ("sensitive", "all")
DLP_VALIDATORS = ("luhn", "mod97", "aba", "wif")

CONFIG_PATH = conventions.PIPELOCK_CONFIG_PATH
CA_CERT = conventions.PIPELOCK_CA_CERT
CA_KEY = conventions.PIPELOCK_CA_KEY
DEFAULT_LISTEN = "127.0.0.1:8888"
DEFAULT_MODE = "balanced"  # internal/config/normalize.go ApplyDefaults: "" -> balanced
DEFAULT_CERT_TTL = "24h"  # internal/config/schema.go DefaultCertTTL
CA_KEY_FORBIDDEN_BITS = 0o137  # internal/config/validate.go validateTLSInterception
VERSION = 1


class _Any:
    """A section pipelock knows whose contents the stand-in does not model:
    accepted as pipelock would (its own rules are not re-checked here) and
    ignored by the proxy."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()

# The nested description of the keys pipelock accepts
# (internal/config/schema.go: Config, FetchProxy, Monitoring, ForwardProxy,
# DLP, DLPPattern, LoggingConfig, RequestBodyScanning, TLSInterception).
# Leaves:
#   int / str / bool / float   a scalar of that type (bool is not an int here)
#   tuple of str               an enum: a str that is one of these
#   [schema]                   a list whose items match schema
#   {key: schema}              a mapping with (optional) keys from this set only
#   ANY                        a known section the stand-in does not model
# pipelock decodes with yaml.v3 KnownFields(true) (internal/config/load.go
# Load), so a key outside this description is fatal.
PIPELOCK_SCHEMA: Mapping[str, Any] = {
    "version": int,
    "mode": str,  # checked by value in validate_config (validateMode)
    "enforce": bool,
    "explain_blocks": bool,
    "api_allowlist": [str],
    "suppress": ANY,
    "fetch_proxy": {
        "listen": str,
        "timeout_seconds": int,
        "max_response_mb": int,
        "user_agent": str,
        "monitoring": {
            "max_url_length": int,
            "entropy_threshold": float,
            "subdomain_entropy_threshold": float,
            "max_requests_per_minute": int,
            "max_data_per_minute": int,
            "blocklist": [str],
            "subdomain_entropy_exclusions": [str],
        },
    },
    "forward_proxy": {
        "enabled": bool,
        "max_tunnel_seconds": int,
        "idle_timeout_seconds": int,
        "sni_verification": bool,
        "redirect_websocket_hosts": [str],
    },
    "dlp": {
        "scan_env": bool,
        "secrets_file": str,
        "min_env_secret_length": int,
        "include_defaults": bool,
        "patterns": [{"name": str, "regex": str, "severity": str, "validator": str,
                      "exempt_domains": [str], "action": str}],
        "action": str,
    },
    "logging": {
        "format": str, "output": str, "file": str,
        "include_allowed": bool, "include_blocked": bool,
    },
    "request_body_scanning": {
        "enabled": bool, "action": str, "max_body_bytes": int, "scan_headers": bool,
        "header_mode": str, "sensitive_headers": [str], "ignore_headers": [str],
    },
    "tls_interception": {
        "enabled": bool,
        "ca_cert": str,
        "ca_key": str,
        "passthrough_domains": [str],
        "cert_ttl": str,
        "cert_cache_size": int,
        "max_response_bytes": int,
    },
    **{key: ANY for key in (
        "websocket_proxy", "canary_tokens", "response_scanning", "mcp_input_scanning",
        "mcp_tool_scanning", "mcp_tool_policy", "git_protection", "session_profiling",
        "adaptive_enforcement", "mcp_session_binding", "kill_switch", "sentry",
        "metrics_listen", "emit", "tool_chain_detection", "mcp_ws_listener",
        "cross_request_detection", "reverse_proxy", "scan_api", "address_protection",
        "seed_phrase_detection", "rules", "file_sentry", "sandbox", "flight_recorder",
        "mcp_binary_integrity", "mcp_tool_provenance", "behavioral_baseline", "airlock",
        "browser_shield", "media_policy", "a2a_scanning", "taint", "mediation_envelope",
        "redaction", "agents", "default_agent_identity", "bind_default_agent_identity",
        "license_key", "license_file", "license_public_key",
    )},
    # The SSRF guard (issue 15): schema.go Config.Internal, .TrustedDomains,
    # SSRF.IPAllowlist; validate.go validateInternal/validateSSRF check them.
    "internal": [str],
    "trusted_domains": [str],
    "ssrf": {"ip_allowlist": [str]},
}


class PipelockConfigError(ValueError):
    """A pipelock config pipelock would refuse. ``key`` is the first
    offending key path; ``problems`` lists them all."""

    def __init__(self, problems: Sequence[str], key: str = ""):
        self.problems = list(problems)
        self.key = key
        super().__init__("pipelock config: " + "; ".join(self.problems))


# -- Go semantics pipelock relies on ------------------------------------------

_RE2_OPTIONS = None
# re2_error's answers by pattern (a pure function of the string): every
# rendered pipelock.yaml carries the same DLP patterns, and compiling them was
# most of validating one. Bounded: cleared whole when full.
_RE2_ERRORS: dict[str, str | None] = {}


def re2_error(regex: str) -> str | None:
    """Why Go's regexp.Compile (RE2 syntax) refuses ``regex``, or None.

    Checked with Google's RE2 (the `google-re2` bindings: the same syntax
    as Go's regexp/syntax: no lookaround, no backreferences, ``\\z`` yes,
    ``\\Z`` no), plus the one escape C++ RE2 accepts and Go does not
    (``\\C``, any byte)."""
    try:
        return _RE2_ERRORS[regex]
    except KeyError:
        pass
    if len(_RE2_ERRORS) >= 1024:
        _RE2_ERRORS.clear()
    why = _RE2_ERRORS[regex] = _re2_error(regex)
    return why


def _re2_error(regex: str) -> str | None:
    global _RE2_OPTIONS
    import re2  # google-re2

    if _RE2_OPTIONS is None:
        _RE2_OPTIONS = re2.Options()
        _RE2_OPTIONS.log_errors = False
    i = 0
    while i < len(regex) - 1:
        if regex[i] == "\\":
            if regex[i + 1] == "C":
                return "invalid escape sequence: \\C"
            i += 2
            continue
        i += 1
    try:
        re2.compile(regex, _RE2_OPTIONS)
    except re2.error as exc:
        msg = exc.args[0] if exc.args else str(exc)
        return msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
    return None


_DURATION = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+\Z")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3,
                 "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float | None:
    """Go's time.ParseDuration, as seconds; None where Go returns an error
    ("0" alone needs no unit; every other number needs one)."""
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION.match(text):
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    return sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


# -- validation ---------------------------------------------------------------

def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", str: "str", float: "float", list: "list",
            dict: "mapping"}.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(value: Any, schema: Any, path: str, problems: list[str]) -> None:
    where = path or "<root>"
    if schema is ANY or value is None:  # yaml null decodes to the zero value
        return
    if isinstance(schema, Mapping):
        if not isinstance(value, Mapping):
            problems.append(f"{where}: expected a mapping, got {_type_name(value)}")
            return
        for key, sub in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: key {key!r} is not a string")
            elif key not in schema:
                problems.append(f"{_join(path, key)}: unknown key")
            else:
                _check(sub, schema[key], _join(path, key), problems)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {_type_name(value)}")
            return
        for i, item in enumerate(value):
            _check(item, schema[0], f"{path}[{i}]", problems)
    elif isinstance(schema, tuple):
        if not isinstance(value, str) or value not in schema:
            problems.append(f"{where}: must be one of {', '.join(schema)}, got {value!r}")
    elif schema is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: expected int, got {_type_name(value)}")
    elif schema is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where}: expected float, got {_type_name(value)}")
    elif not isinstance(value, schema):
        problems.append(f"{where}: expected {schema.__name__}, got {_type_name(value)}")


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _section(data: Mapping, key: str) -> Mapping:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def validate_config(data: Mapping) -> list[str]:
    """Every problem pipelock would refuse, each ``key.path: message``.

    Pure: no filesystem (`check_ca_files` does pipelock's CA file checks).
    Each rule is pipelock's, after its defaults (internal/config/normalize.go
    ApplyDefaults), from internal/config/validate.go:

    - keys: unknown anywhere is fatal (load.go, KnownFields(true));
    - validateMode: strict|balanced|audit (empty is balanced); strict with an
      empty api_allowlist is refused;
    - validateFetchProxy: max_data_per_minute not negative (a negative
      max_requests_per_minute is already 60 by then: normalize.go), no empty blocklist entry;
    - validateLogging: format json|text, output stdout|file|both, a file when
      output is file or both;
    - validateDLP: a pattern needs name and regex; regex compiles as RE2;
      per-pattern action only "warn"; dlp.action unsupported; validator one
      of luhn/mod97/aba/wif; severity is NOT checked;
    - validateRequestBodyScanning (when enabled): action warn|block (empty
      is warn), max_body_bytes not negative (0 is 5 MB), header_mode
      sensitive|all (empty is sensitive);
    - validateTLSInterception (when enabled): cert_ttl a positive Go
      duration (empty is 24h).

    Plus one rule of the stand-in's own, not pipelock's: forward_proxy.enabled
    MUST be true (the stand-in is only a forward proxy, and a bottle's agent
    needs one).
    """
    problems: list[str] = []
    _check(data, PIPELOCK_SCHEMA, "", problems)
    if not isinstance(data, Mapping):
        return problems

    mode = data.get("mode") or DEFAULT_MODE
    if isinstance(mode, str):
        if mode not in MODES:
            problems.append(f"mode: invalid mode {mode!r}: must be strict, balanced, or audit")
        elif mode == "strict" and not data.get("api_allowlist"):
            problems.append("api_allowlist: strict mode requires at least one domain in api_allowlist")

    logging = _section(data, "logging")
    fmt, out = logging.get("format") or "json", logging.get("output") or "stdout"
    if isinstance(fmt, str) and fmt not in LOG_FORMATS:
        problems.append(f"logging.format: invalid logging format {fmt!r}: must be json or text")
    if isinstance(out, str):
        if out not in LOG_OUTPUTS:
            problems.append(f"logging.output: invalid logging output {out!r}: must be stdout, file, or both")
        elif out in ("file", "both") and not logging.get("file"):
            problems.append(f"logging.file: required when output is {out!r}")

    monitoring = _get(data, "fetch_proxy", "monitoring")
    if isinstance(monitoring, Mapping):  # validateFetchProxy
        # max_requests_per_minute <= 0 becomes 60 in normalize.go before
        # validate.go runs (load.go), so a negative one loads (issue 15).
        for key in ("max_data_per_minute",):
            value = monitoring.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                problems.append(f"fetch_proxy.monitoring.{key}: must be >= 0")
        blocklist = monitoring.get("blocklist")
        if isinstance(blocklist, list) and any(b == "" for b in blocklist):
            problems.append("fetch_proxy.monitoring.blocklist: empty blocklist entry")

    dlp = _section(data, "dlp")
    if dlp.get("action"):
        problems.append("dlp.action: not supported by pipelock")
    patterns = dlp.get("patterns")
    if isinstance(patterns, list):
        for i, pat in enumerate(patterns):
            if not isinstance(pat, Mapping):
                continue
            for key in ("name", "regex"):
                if not pat.get(key):
                    problems.append(f"dlp.patterns[{i}].{key}: required")
            regex = pat.get("regex")
            if isinstance(regex, str) and regex:
                why = re2_error(regex)
                if why:
                    problems.append(f"dlp.patterns[{i}].regex: invalid regex (Go RE2): {why}")
            action = pat.get("action")
            if action and action != "warn":
                problems.append(f"dlp.patterns[{i}].action: only 'warn' is allowed, got {action!r}")
            validator = pat.get("validator")
            if validator and validator not in DLP_VALIDATORS:
                problems.append(f"dlp.patterns[{i}].validator: unknown validator {validator!r}")

    scanning = _section(data, "request_body_scanning")
    # omitted `enabled` defaults to true (normalize.go applySecurityDefaults)
    if scanning.get("enabled", True) is not False:
        action = scanning.get("action") or "warn"
        if isinstance(action, str) and action not in ACTIONS:
            problems.append(f"request_body_scanning.action: invalid {action!r}: must be warn or block")
        size = scanning.get("max_body_bytes")
        if isinstance(size, int) and not isinstance(size, bool) and size < 0:
            problems.append("request_body_scanning.max_body_bytes: must be positive")
        header_mode = scanning.get("header_mode") or "sensitive"
        if isinstance(header_mode, str) and header_mode not in HEADER_MODES:
            problems.append(f"request_body_scanning.header_mode: invalid {header_mode!r}: "
                            "must be sensitive or all")

    tls = _section(data, "tls_interception")
    if tls.get("enabled") is True:
        ttl = tls.get("cert_ttl") or DEFAULT_CERT_TTL
        if isinstance(ttl, str):
            seconds = go_duration_seconds(ttl)
            if seconds is None:
                problems.append(f"tls_interception.cert_ttl: invalid duration {ttl!r}")
            elif seconds <= 0:
                problems.append("tls_interception.cert_ttl: must be positive")

    problems += ssrf_problems(data)
    if _get(data, "forward_proxy", "enabled") is not True:
        problems.append("forward_proxy.enabled: must be true (the stand-in is a forward proxy only)")
    return problems


def _go_cidr(text: str):
    """Go's net.ParseCIDR: an address with a prefix length (host bits allowed),
    returning ``(address, network)``; ValueError otherwise."""
    import ipaddress

    if not isinstance(text, str) or "/" not in text:
        raise ValueError("not a CIDR")
    addr, _, _ = text.partition("/")
    return ipaddress.ip_address(addr), ipaddress.ip_network(text, strict=False)


def ssrf_problems(data: Mapping) -> list[str]:
    """pipelock's validators for the SSRF guard's keys (validate.go, HEAD 40865129):
    ``internal`` entries are CIDRs (validateInternal ~1109); ``ssrf.ip_allowlist``
    entries are CIDRs, not ``/0``, with no host bits set (validateSSRF ~1122-1140);
    ``trusted_domains`` follow ValidateTrustedDomains (no bare ``*``, ``*.`` needs
    a dot after it)."""
    problems = []
    for cidr in data.get("internal") or []:
        try:
            _go_cidr(cidr)
        except ValueError:
            problems.append(f"internal: invalid internal CIDR {cidr!r}")
    for cidr in _get(data, "ssrf", "ip_allowlist") or []:
        try:
            addr, net = _go_cidr(cidr)
        except ValueError:
            problems.append(f"ssrf.ip_allowlist: invalid ssrf.ip_allowlist CIDR {cidr!r}")
            continue
        if net.prefixlen == 0:
            problems.append(f"ssrf.ip_allowlist: CIDR {cidr!r} is a catch-all (/0) and would "
                            "disable SSRF protection")
        elif addr != net.network_address:
            problems.append(f"ssrf.ip_allowlist: CIDR {cidr!r} has host bits set "
                            f"(did you mean {str(net)!r}?)")
    for i, raw in enumerate(data.get("trusted_domains") or []):
        why = trusted_domain_problem(raw)
        if why:
            problems.append(f"trusted_domains[{i}] {raw!r}: {why}")
    return problems


def trusted_domain_problem(raw: str) -> str | None:
    """validate.go ValidateTrustedDomains (~29-55): lower-cased, trimmed and one
    trailing dot dropped (pipelock stores that form), then no URL or
    host:port, no bare ``*``, ``*.`` needs a concrete domain, no other glob."""
    d = raw.strip().lower().removesuffix(".")
    if not d:
        return "is empty"
    if "://" in d or "/" in d or ":" in d:
        return "use a hostname pattern, not a URL or host:port"
    if d == "*":
        return "bare wildcard disables all SSRF protection"
    if d.startswith("*."):
        if "." not in d[2:]:
            return "wildcard must target a concrete domain like *.example.com"
    elif any(c in d for c in "*?[]"):
        return "only exact hosts and *.example.com wildcards are supported"
    return None


def check_ca_files(data: Mapping) -> list[str]:
    """pipelock's CA file checks when TLS interception is on
    (internal/config/validate.go validateTLSInterception): the cert and the
    key must exist, and the key's mode MUST have none of the bits 0o137
    (group write/exec, any other access); 0600 and 0640 pass."""
    tls = _section(data, "tls_interception")
    if tls.get("enabled") is not True:
        return []
    problems = []
    cert, key = tls.get("ca_cert") or "", tls.get("ca_key") or ""
    if not cert or not key:
        return ["tls_interception: ca_cert and ca_key must be set (the stand-in has no ~/.pipelock default)"]
    if not os.path.exists(cert):
        problems.append(f"tls_interception.ca_cert: CA cert not found at {cert}")
    try:
        mode = stat.S_IMODE(os.stat(key).st_mode)
    except OSError:
        problems.append(f"tls_interception.ca_key: CA key not found at {key}")
    else:
        if mode & CA_KEY_FORBIDDEN_BITS:
            problems.append(f"tls_interception.ca_key: CA key {key} is too permissive "
                            f"(mode {mode:04o}): restrict to 0600 or 0640")
    return problems


# -- the CA pair, as pipelock's LoadCA reads it --------------------------------
# luckyPipewrench/pipelock internal/certgen/certgen.go (commit 1243c913def0):
# LoadCA + parseECPrivateKeyBlock. The failure texts of certgen itself are
# pipelock's, word for word; the x509 parse errors they wrap are Go stdlib
# texts, reproduced where cheap (sec1.go / pkcs8.go) and otherwise approximate.
# Real pipelock prints them through (*Proxy).LoadCertCache
# (internal/proxy/proxy.go): "load TLS CA: %w (run 'pipelock tls init' to
# generate)", and does not start.

CA_KEY_BLOCK_SEC1 = "EC PRIVATE KEY"
CA_KEY_BLOCK_PKCS8 = "PRIVATE KEY"
# the curves Go's crypto/x509 parses an ECDSA key or certificate on
# (namedCurveFromOID); any other is "unknown elliptic curve"
_GO_CURVES = ("secp224r1", "secp256r1", "secp384r1", "secp521r1")
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([^\r\n-]*)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class CaLoadError(ValueError):
    """pipelock's LoadCA refuses the CA pair; the message is its error text."""


def load_ca_error(err: CaLoadError) -> str:
    """The line real pipelock prints when `load_ca` fails (LoadCertCache)."""
    return f"load TLS CA: {err} (run 'pipelock tls init' to generate)"


def _pem_decode(data: bytes) -> tuple[str, bytes] | None:
    """Go's pem.Decode, as far as LoadCA needs it: the first well-formed
    block of ANY type (a malformed one is skipped), as (type, DER)."""
    import base64
    import binascii

    for m in _PEM_BLOCK.finditer(data):
        body = m.group(2)
        if b":" in body.split(b"\n\n", 1)[0] and b"\n\n" in body:
            body = body.split(b"\n\n", 1)[1]  # RFC 1421 headers: skipped
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        return m.group(1).decode("ascii", "replace"), der
    return None


def _der_children_tags(der: bytes) -> list[int]:
    """Tags of the elements of the outer DER SEQUENCE (best effort, to tell
    SEC1 from PKCS8 from PKCS1 the way Go's error hints do)."""
    def length(i: int) -> tuple[int, int]:
        first = der[i]
        if first < 0x80:
            return first, i + 1
        n = first & 0x7F
        return int.from_bytes(der[i + 1:i + 1 + n], "big"), i + 1 + n

    tags: list[int] = []
    try:
        if der[0] != 0x30:
            return tags
        total, i = length(1)
        end = min(i + total, len(der))
        while i < end and len(tags) < 3:
            tag = der[i]
            size, j = length(i + 1)
            tags.append(tag)
            i = j + size
    except IndexError:
        pass
    return tags


def _go_type(key: Any) -> str:
    """Go's %T of what x509.ParsePKCS8PrivateKey returns for ``key``."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

    if isinstance(key, rsa.RSAPrivateKey):
        return "*rsa.PrivateKey"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519.PrivateKey"
    if isinstance(key, x25519.X25519PrivateKey):
        return "*ecdh.PrivateKey"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "*ecdsa.PrivateKey"
    return type(key).__name__


# The first two fields of each key format's DER, and the Go x509 parser for it.
_GO_KEY_PARSERS = {(0x02, 0x04): "ParseECPrivateKey",  # SEC1: version, key octets
                   (0x02, 0x30): "ParsePKCS8PrivateKey",  # PKCS8: version, algorithm
                   (0x02, 0x02): "ParsePKCS1PrivateKey"}  # PKCS1: version, modulus


def _refuse_other_format(tags: list[int], *, own: str) -> None:
    """Go's x509 key parsers, handed another format's DER, name the parser
    that reads it: "x509: failed to parse private key (use X instead for
    this key format)"."""
    parser = _GO_KEY_PARSERS.get(tuple(tags[:2]))
    if parser is not None and parser != own:
        raise CaLoadError(f"x509: failed to parse private key (use {parser} instead "
                          "for this key format)")


def _parse_ec_private_key_block(block_type: str, der: bytes):
    """certgen.go parseECPrivateKeyBlock: ``EC PRIVATE KEY`` is SEC1 (Go
    x509.ParseECPrivateKey), ``PRIVATE KEY`` is PKCS8 and must hold an ECDSA
    key; any other block type is refused."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if block_type == CA_KEY_BLOCK_SEC1:
        tags = _der_children_tags(der)
        _refuse_other_format(tags, own="ParseECPrivateKey")
        if len(der) > 4 and tags[:2] == [0x02, 0x04] and der[4] != 1 and der[2:4] == b"\x02\x01":
            raise CaLoadError(f"x509: unknown EC private key version {der[4]}")
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError) as exc:
            raise CaLoadError(f"x509: failed to parse EC private key: {exc}") from None
        if isinstance(key, rsa.RSAPrivateKey):
            raise CaLoadError("x509: failed to parse private key "
                              "(use ParsePKCS1PrivateKey instead for this key format)")
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaLoadError("x509: failed to parse EC private key")
        if key.curve.name not in _GO_CURVES:
            raise CaLoadError("x509: unknown elliptic curve")
        return key
    if block_type == CA_KEY_BLOCK_PKCS8:
        _refuse_other_format(_der_children_tags(der), own="ParsePKCS8PrivateKey")
        try:
            key = serialization.load_der_private_key(der, password=None)
        except UnsupportedAlgorithm:
            raise CaLoadError("x509: PKCS#8 wrapping contained private key with unknown "
                              "algorithm") from None
        except (ValueError, TypeError) as exc:
            raise CaLoadError(f"x509: failed to parse PKCS#8 private key: {exc}") from None
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in _GO_CURVES:
            raise CaLoadError("x509: failed to parse EC private key embedded in PKCS#8: "
                              "x509: unknown elliptic curve")
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaLoadError(f"CA key must be ECDSA, got {_go_type(key)}")
        return key
    raise CaLoadError(f'unsupported PEM block type "{block_type}" '
                      f'(expected "{CA_KEY_BLOCK_SEC1}" or "{CA_KEY_BLOCK_PKCS8}")')


def load_ca(cert_pem: bytes, key_pem: bytes):
    """pipelock's certgen.LoadCA on the two files' contents, rule by rule and
    in its order; returns ``(certificate, private key)`` or raises
    `CaLoadError` with pipelock's text:

    1. the cert file's first PEM block parses as a certificate
       ("no PEM block in CA cert file", "parse CA cert: ...");
    2. the key file's first PEM block is ``EC PRIVATE KEY`` (SEC1) or
       ``PRIVATE KEY`` (PKCS8) holding an ECDSA key ("parse CA key: ...":
       "CA key must be ECDSA, got %T", "unsupported PEM block type %q
       (expected %q or %q)");
    3. the cert is a CA ("certificate is not a CA"; basicConstraints CA:TRUE);
    4. it has keyCertSign ("CA certificate missing KeyUsageCertSign");
    5. its public key is ECDSA ("CA certificate public key is not ECDSA");
    6. the key is the cert's ("CA key does not match certificate").

    Nothing else: validity dates, path length and the signature are not
    checked at load (neither does pipelock)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    block = _pem_decode(cert_pem)
    if block is None:
        raise CaLoadError("no PEM block in CA cert file")
    try:
        cert = x509.load_der_x509_certificate(block[1])
        cert_pub = cert.public_key()
    except Exception as exc:  # ValueError, UnsupportedAlgorithm: Go's ParseCertificate fails
        raise CaLoadError(f"parse CA cert: x509: malformed certificate ({exc})") from None
    if isinstance(cert_pub, ec.EllipticCurvePublicKey) and cert_pub.curve.name not in _GO_CURVES:
        raise CaLoadError("parse CA cert: x509: unsupported elliptic curve")

    key_block = _pem_decode(key_pem)
    if key_block is None:
        raise CaLoadError("no PEM block in CA key file")
    try:
        key = _parse_ec_private_key_block(*key_block)
    except CaLoadError as exc:
        raise CaLoadError(f"parse CA key: {exc}") from None

    def extension(kind):  # Go leaves IsCA and KeyUsage zero when absent
        try:
            return cert.extensions.get_extension_for_class(kind).value
        except x509.ExtensionNotFound:
            return None

    basic, usage = extension(x509.BasicConstraints), extension(x509.KeyUsage)
    if basic is None or not basic.ca:
        raise CaLoadError("certificate is not a CA")
    if usage is None or not usage.key_cert_sign:
        raise CaLoadError("CA certificate missing KeyUsageCertSign")
    if not isinstance(cert_pub, ec.EllipticCurvePublicKey):
        raise CaLoadError("CA certificate public key is not ECDSA")
    if cert_pub.public_numbers() != key.public_key().public_numbers():
        raise CaLoadError("CA key does not match certificate")
    return cert, key


def _key_of(problem: str) -> str:
    return problem.split(":", 1)[0]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_config(text: str) -> dict:
    """Parse and validate pipelock.yaml text. Raises `PipelockConfigError`
    (a ValueError) naming the offending key path."""
    try:
        docs = list(yaml.load_all(text, Loader=_StrictLoader))  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PipelockConfigError([f"<root>: {problem}{where}"], "<root>") from None
    if len(docs) > 1:  # internal/config/load.go Load: a single document only
        raise PipelockConfigError(
            ["<root>: multiple YAML documents not supported (pipelock config must be a single document)"],
            "<root>")
    data = docs[0] if docs else None
    if data is None:
        data = {}
    problems = validate_config(data)
    if problems:
        raise PipelockConfigError(problems, _key_of(problems[0]))
    return data
