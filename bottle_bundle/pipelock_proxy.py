"""A pipelock-compatible forward proxy (mitmproxy addon + runner).

pipelock's own binary is not obtainable here (DESIGN §7), so the bundle runs
this stand-in. It reads the SAME pipelock.yaml the planner renders, validated
by `bottle_bundle.pipelock_config.load_config`: an unknown key (or any other problem
pipelock would refuse) stops it before it listens, as pipelock does. The
image can swap in real pipelock without touching the backends.

Files and environment:
    PIPELOCK_CONFIG        config path (default /etc/pipelock/pipelock.yaml)
    tls_interception.ca_cert / ca_key  the CA pair named in the config
    PIPELOCK_UPSTREAM_CA   extra CA bundle(s) to trust upstream, os.pathsep
                           separated, on top of the system store (tests)

Honoured keys (everything else pipelock accepts is validated, then ignored):
    fetch_proxy.listen                      where to listen (default 127.0.0.1:8888)
    mode, api_allowlist                     as pipelock (internal/scanner/scanner.go):
                                            the allowlist is enforced ONLY in
                                            ``mode: strict`` (New), and an empty list
                                            allows every host (checkAllowlist); in
                                            ``balanced``/``audit`` every host passes.
                                            Enforced, a request's destination host must
                                            match an entry with pipelock's MatchDomain
                                            (``*.x.com`` matches the apex too); else 403
                                            ``blocked: domain not in allowlist: H``
                                            (CONNECT: ``CONNECT blocked: ...``; no reason
                                            header, as forward.go http.Error).
    fetch_proxy.monitoring.max_requests_per_minute
                                            per base domain (scanner.go baseDomain,
                                            eTLD+1), sliding 60 s window; over it: 429
                                            ``rate limit exceeded for H``; <= 0 or
                                            absent is 60 (normalize.go)
    request_body_scanning.{enabled,action,scan_headers,header_mode,sensitive_headers},
    dlp.patterns                            with all on and action block, a request whose
                                            scanned header matches a pattern gets 403
                                            ``blocked: request header contains secret``;
                                            header_mode ``sensitive`` (the default) scans
                                            only the sensitive headers (normalize.go);
                                            the CONNECT's own headers are scanned too
                                            (``CONNECT blocked: header DLP match``,
                                            forward.go); patterns are compiled with
                                            ``(?i)`` (scanner.go New); action ``warn``
                                            only logs (pattern name, never the value)
    tls_interception.{enabled,ca_cert,ca_key,passthrough_domains}
                                            decrypt CONNECT tunnels with the CA so the
                                            checks above see the inner requests, except
                                            for passthrough hosts (pipelock's isPassthrough,
                                            internal/proxy/intercept.go: ``*.x.com``
                                            matches subdomains only, no trailing-dot
                                            handling; forwarded encrypted, still
                                            host-gated and rate-limited per CONNECT);
                                            disabled: nothing is decrypted
    forward_proxy.enabled                   must be true (the validator enforces it)
    forward_proxy.{max_tunnel_seconds,idle_timeout_seconds}   tunnel limits (below)
    internal, trusted_domains, ssrf.ip_allowlist              the SSRF guard (below)
    version                                 validated and logged

One host name per connection (issue 15), as pipelock: a ClientHello whose
SNI names another host than the CONNECT target closes the tunnel
(internal/proxy/sni.go verifySNI; no SNI passes), and a decrypted request
whose Host differs from the CONNECT target gets 403 ``authority mismatch:
blocked`` (intercept.go). The stand-in's own rule: a plain proxy request
whose Host header differs from its URI is refused (Go's net/http server,
which pipelock runs on, ignores such a Host: net/http/request.go readRequest
``req.Host = req.URL.Host``, and refuses "too many Host headers";
mitmproxy would forward the guest's Host). mitmproxy's onboarding
app (``mitm.it``) is off.

Defaults are pipelock's (internal/config/normalize.go): mode balanced;
request_body_scanning.enabled and .scan_headers true when omitted, action
warn, header_mode sensitive; rate limit 60. The CA key file is refused at
startup when its mode has any of the bits 0o137 (validate.go
validateTLSInterception). The CA pair must pass pipelock's LoadCA
(internal/certgen/certgen.go; `pipelock_config.load_ca`): an ECDSA key in an
``EC PRIVATE KEY`` or ``PRIVATE KEY`` block, a CA cert with keyCertSign and
an ECDSA public key, the key matching it; else the stand-in does not start,
with pipelock's text (``load TLS CA: CA key must be ECDSA, got
*rsa.PrivateKey (run 'pipelock tls init' to generate)``).

The SSRF guard (issue 15), as pipelock's scanner.go checkSSRF: on by
default, a host (allowlisted or not) that resolves into ``internal``
(absent: normalize.go's list) or the core ranges (core.go) is refused with
403 ``SSRF blocked: H resolves to internal IP X``; a lookup that fails is
refused; hex/octal/decimal IPv4 spellings are decoded (parseAlternativeIP);
``trusted_domains`` (hosts, never IP literals) and ``ssrf.ip_allowlist``
exempt; ``internal: []`` leaves only the core IP-literal floor. Checked at
each CONNECT and plain request, after the allowlist; a decrypted tunnel's
inner requests are not re-resolved, and mitmproxy dials by name afterwards
(pipelock re-checks at dial time, ssrfSafeDialContext: a DNS-rebinding gap
the stand-in does not close).

Tunnel limits: ``forward_proxy.max_tunnel_seconds`` (every tunnel) and
``idle_timeout_seconds`` (tunnels that are not decrypted), <= 0 or absent
300 and 120 (normalize.go), cut the client connection (forward.go,
relay.go); checked about once a second.

Not implemented: pipelock's fetch endpoint, URL and body DLP, built-in DLP
patterns, scan_env, response scanning, URL length and entropy checks. Rate
accounting: each plain or decrypted request counts once; a tunnel that is
not decrypted counts once at its CONNECT.
"""

from __future__ import annotations

import collections
import ipaddress
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bottle_api import conventions

from . import pipelock_config as pipelock
from . import logs, mitm
from bottle_api import hostnames

from .hosts import allowlist_matches, normalize, parse_listen, passthrough_matches

NAME = "pipelock"
CONFIG_ENV = "PIPELOCK_CONFIG"
UPSTREAM_CA_ENV = conventions.PIPELOCK_UPSTREAM_CA_ENV
REASON_HEADER = "X-Pipelock-Reason"  # pipelock sends no such header; kept so tests can say so
REASON_ALLOWLIST = "domain not in allowlist"  # scanner.go checkAllowlist: "domain not in allowlist: H"
REASON_HEADER_SECRET = "request header contains secret"
REASON_CONNECT_DLP = "header DLP match"  # forward.go: "CONNECT blocked: header DLP match"
REASON_RATE = "rate limit exceeded"  # scanner.go checkRateLimit: "rate limit exceeded for H"
REASON_AUTHORITY = "authority mismatch"  # intercept.go: "authority mismatch: blocked"
REASON_HOST_HEADER = "Host header names another host than the request URI"  # stand-in's own
DEFAULT_RATE = 60  # normalize.go: max_requests_per_minute <= 0 or absent -> 60
MAX_TUNNEL_SECONDS, IDLE_TIMEOUT_SECONDS = 300, 120  # normalize.go (forward_proxy defaults)
# normalize.go (header_mode "sensitive", the default): the headers scanned.
SENSITIVE_HEADERS = ("Authorization", "Cookie", "X-Api-Key", "X-Token", "Proxy-Authorization",
                     "X-Goog-Api-Key")
WINDOW_SECONDS = 60.0
REASON_SSRF = "SSRF blocked"  # scanner.go checkSSRF
REASON_CORE_SSRF = "core SSRF"  # core.go checkCoreSSRFLiteral
# normalize.go (~222-236, HEAD 40865129): ``internal`` when absent or null.
DEFAULT_INTERNAL = ("0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                    "169.254.0.0/16", "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10",
                    "224.0.0.0/4", "ff00::/8")
# internal/scanner/core.go coreInternalCIDRDefs (~149-162): always checked when
# the guard is on (mergedSSRFCIDRs), and for IP literals when it is off.
CORE_INTERNAL = ("0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                 "169.254.0.0/16", "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10")


@dataclass(frozen=True)
class DlpPattern:
    name: str
    regex: Any = field(repr=False)  # a compiled google-re2 pattern (pipelock's Go RE2)


@dataclass(frozen=True)
class Verdict:
    """Why a request is refused: the status, the reason's kind (one of the
    ``REASON_*``) and pipelock's response body."""

    status: int
    reason: str
    text: str = field(default="", compare=False)

    def body(self, connect: bool) -> str:
        """pipelock's wording: ``blocked: <reason>`` for a request,
        ``CONNECT blocked: <reason>`` for a CONNECT (forward.go http.Error)."""
        text = self.text or self.reason
        if self.reason == REASON_AUTHORITY:
            return text
        return f"{'CONNECT blocked' if connect else 'blocked'}: {text}"


def base_domain(host: str) -> str:
    """scanner.go baseDomain: IPs and single labels as is, else the
    registrable domain (publicsuffix.EffectiveTLDPlusOne; an unknown TLD
    counts as a public suffix of one label, as Go's default ``*`` rule)."""
    if not host or "." not in host:
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    import publicsuffix2  # a mitmproxy dependency: Mozilla's list

    sld = publicsuffix2.get_sld(host) or host
    if "." not in sld:  # unknown TLD: publicsuffix2 returns it alone
        sld = ".".join(host.split(".")[-2:])
    return sld


@dataclass(frozen=True)
class PipelockSettings:
    """The honoured subset of a validated pipelock.yaml."""

    listen: tuple[str, int]
    mode: str
    allowlist: tuple[str, ...]
    max_requests_per_minute: int  # <= 0 or absent: pipelock's 60
    dlp: tuple[DlpPattern, ...]
    scan_headers: bool  # request_body_scanning.enabled and .scan_headers
    header_mode: str  # sensitive (default) | all
    sensitive_headers: tuple[str, ...]
    block: bool  # request_body_scanning.action == "block"
    tls_enabled: bool
    ca_cert: str | None
    ca_key: str | None
    passthrough: tuple[str, ...]
    # The SSRF guard: ``internal`` (absent/null: DEFAULT_INTERNAL; an empty
    # list turns the resolving guard off), ``ssrf.ip_allowlist``, ``trusted_domains``.
    internal: tuple[Any, ...] = ()
    ip_allowlist: tuple[Any, ...] = ()
    trusted_domains: tuple[str, ...] = ()
    # forward_proxy.max_tunnel_seconds / idle_timeout_seconds: <= 0 or absent
    # are 300 / 120 (normalize.go ~190-194)
    max_tunnel_seconds: int = MAX_TUNNEL_SECONDS
    idle_timeout_seconds: int = IDLE_TIMEOUT_SECONDS

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> PipelockSettings:
        """From a config `bottle_bundle.pipelock_config.load_config` accepted."""

        def get(*keys: str, default: Any = None) -> Any:
            node: Any = data
            for key in keys:
                if not isinstance(node, Mapping) or key not in node:
                    return default
                node = node[key]
            return default if node is None else node

        scanning = get("request_body_scanning", default={})
        tls = get("tls_interception", default={})
        return cls(
            listen=parse_listen(get("fetch_proxy", "listen", default=pipelock.DEFAULT_LISTEN),
                                what="fetch_proxy.listen"),
            mode=get("mode", default=pipelock.DEFAULT_MODE),
            allowlist=tuple(get("api_allowlist", default=[])),
            max_requests_per_minute=_rate(get("fetch_proxy", "monitoring",
                                              "max_requests_per_minute", default=0)),
            dlp=tuple(DlpPattern(p["name"], _re2_compile(p["regex"]))
                      for p in get("dlp", "patterns", default=[])),
            header_mode=scanning.get("header_mode") or "sensitive",
            sensitive_headers=tuple(scanning.get("sensitive_headers") or SENSITIVE_HEADERS),
            # omitted booleans default to true (normalize.go applySecurityDefaults)
            scan_headers=(scanning.get("enabled", True) is not False
                          and scanning.get("scan_headers", True) is not False),
            block=scanning.get("action") == "block",
            tls_enabled=bool(tls.get("enabled")),
            ca_cert=tls.get("ca_cert"),
            ca_key=tls.get("ca_key"),
            passthrough=tuple(tls.get("passthrough_domains") or ()),
            internal=_networks(DEFAULT_INTERNAL if data.get("internal") is None
                               else data["internal"]),
            ip_allowlist=_networks(get("ssrf", "ip_allowlist", default=[])),
            # validate.go ValidateTrustedDomains stores them lower-cased, trimmed, no dot
            trusted_domains=tuple(d.strip().lower().removesuffix(".")
                                  for d in get("trusted_domains", default=[])),
            max_tunnel_seconds=_positive(get("forward_proxy", "max_tunnel_seconds", default=0),
                                         MAX_TUNNEL_SECONDS),
            idle_timeout_seconds=_positive(get("forward_proxy", "idle_timeout_seconds", default=0),
                                           IDLE_TIMEOUT_SECONDS),
        )


def _positive(value: Any, default: int) -> int:
    """normalize.go: ``if v <= 0 { v = default }``."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _networks(cidrs) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def parse_alternative_ip(hostname: str):
    """scanner.go parseAlternativeIP (~845-890): hex, octal and decimal-integer
    IPv4 spellings (``0x7f000001``, ``0177.0.0.1``, ``2130706433``) that Go's
    net.ParseIP does not read; None for anything else (standard dotted-decimal
    included: that is ParseIP's)."""
    hostname = hostname.strip()
    if not hostname:
        return None

    def go_uint(part: str, bits: int):
        # strconv.ParseUint(part, 0, bits): 0x hex, leading-0 octal, else decimal
        try:
            if part[:2] in ("0x", "0X"):
                val = int(part[2:], 16) if part[2:] else None
            elif len(part) > 1 and part[0] == "0":
                val = int(part[1:], 8) if part[1:].isdigit() else None
            else:
                val = int(part, 10) if part.isdigit() else None
        except ValueError:
            return None
        return val if val is not None and val < (1 << bits) else None

    if "." in hostname:
        parts = hostname.split(".")
        if len(parts) != 4:
            return None
        octets = [go_uint(p, 16) for p in parts]
        if any(o is None or o > 255 for o in octets):
            return None
        if not any(p[:2] in ("0x", "0X") or (len(p) > 1 and p[0] == "0" and p != "0") for p in parts):
            return None
        return ipaddress.IPv4Address(bytes(octets))
    val = go_uint(hostname, 32)
    return None if val is None else ipaddress.IPv4Address(val)


def _ip(text: str):
    """net.ParseIP with the zone stripped, IPv4-mapped IPv6 made IPv4."""
    text = text.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def system_resolve(host: str) -> list[str]:
    """net.DefaultResolver.LookupHost: the host's addresses (OSError when none)."""
    import socket

    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})


def _rate(value: int) -> int:
    """normalize.go: ``if MaxReqPerMinute <= 0 { = 60 }``, before validation."""
    return value if isinstance(value, int) and value > 0 else DEFAULT_RATE


class RateLimiter:
    """At most ``limit`` admitted events per key in any ``window`` seconds.

    Refused events are not recorded, so a client that backs off recovers
    once its window drains (a retry storm stays refused while it storms).
    """

    def __init__(self, limit: int, *, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self._clock = limit, window, clock
        self._seen: dict[str, collections.deque[float]] = {}

    def admit(self, key: str) -> bool:
        if self.limit <= 0:
            return True
        now = self._clock()
        seen = self._seen.setdefault(key, collections.deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True


class PipelockPolicy:
    """The decisions, free of mitmproxy so they can be tested directly."""

    def __init__(self, settings: PipelockSettings, *,
                 clock: Callable[[], float] = time.monotonic,
                 resolve: Callable[[str], Iterable[str]] = system_resolve):
        self.settings = settings
        self.limiter = RateLimiter(settings.max_requests_per_minute, clock=clock)
        self.resolve = resolve

    # -- the SSRF guard (scanner.go checkSSRF ~895-1025, core.go ~548-620) ----------
    def _in(self, ip, networks) -> bool:
        return any(ip.version == n.version and ip in n for n in networks)

    def trusted(self, host: str) -> bool:
        """scanner.go IsTrustedDomain (~500-514): never an IP literal; the host
        lower-cased, one trailing dot trimmed, matched with MatchDomain."""
        if _ip(host) is not None:
            return False
        return any(allowlist_matches(host.lower().removesuffix("."), p)
                   for p in self.settings.trusted_domains)

    def needs_dns(self, host: str) -> bool:
        """Whether `ssrf` resolves ``host`` (the guard on and not an alternative
        IP spelling): the mitmproxy addon resolves it off the event loop first."""
        return bool(self.settings.internal) and parse_alternative_ip(host) is None

    def ssrf(self, host: str, resolved: Iterable[str] | OSError | None = None) -> Verdict | None:
        """pipelock's SSRF guard, on by default. With ``internal`` non-empty
        (default: normalize.go's list) every host, allowlisted or not, is
        resolved and refused when an address falls in ``internal`` plus the
        core ranges, unless the address is in ``ssrf.ip_allowlist`` or the
        host is in ``trusted_domains``; an alternative IP spelling is decoded
        and checked without DNS; a resolution failure refuses (fail closed).
        With ``internal: []`` only IP literals in the core ranges are refused
        (checkCoreSSRFLiteral). ``resolved``: the addresses the caller looked
        up (else `self.resolve` is called)."""
        cfg = self.settings
        core = _networks(CORE_INTERNAL)
        if not cfg.internal:
            ip = _ip(host) or parse_alternative_ip(host.split("%", 1)[0])
            if ip is None or self._in(ip, cfg.ip_allowlist) or not self._in(ip, core):
                return None
            return Verdict(403, REASON_CORE_SSRF, f"core SSRF: {host} is a private/internal IP address")
        every = core + cfg.internal
        alt = parse_alternative_ip(host)
        if alt is not None:
            if self._in(alt, every):
                return Verdict(403, REASON_SSRF, f"SSRF blocked: {host} decodes to internal IP {alt}")
            return None
        if resolved is None:
            try:
                resolved = list(self.resolve(host))
            except OSError as exc:
                resolved = exc
        if isinstance(resolved, OSError):
            return Verdict(403, REASON_SSRF, f"SSRF check failed: DNS resolution error for {host}: "
                           f"{resolved.strerror or resolved}")
        if self.trusted(host):
            return None
        for text in resolved:
            ip = _ip(text)
            if ip is not None and self._in(ip, every) and not self._in(ip, cfg.ip_allowlist):
                return Verdict(403, REASON_SSRF,
                               f"SSRF blocked: {host} resolves to internal IP {text.split('%', 1)[0]}")
        return None

    @property
    def enforced_allowlist(self) -> tuple[str, ...]:
        """The list the scanner checks: api_allowlist in strict mode, else
        none (scanner.go New: "Only enforce the allowlist in strict mode")."""
        return self.settings.allowlist if self.settings.mode == "strict" else ()

    def allowed(self, host: str) -> bool:
        """scanner.go checkAllowlist: an empty (or unenforced) list allows all."""
        allow = self.enforced_allowlist
        return not allow or any(allowlist_matches(host, p) for p in allow)

    def decrypts(self, host: str) -> bool:
        """Whether a CONNECT to ``host`` is intercepted (else passthrough):
        forward.go ``TLSInterception.Enabled && !isPassthrough(...)``."""
        return self.settings.tls_enabled and not any(
            passthrough_matches(host, p) for p in self.settings.passthrough)

    def secret_header(self, headers: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
        """``(header name, pattern name)`` of the first scanned header value
        that matches a DLP pattern, when header scanning is on. header_mode
        ``sensitive`` (pipelock's default) scans only the sensitive headers."""
        if not self.settings.scan_headers:
            return None
        wanted = {h.lower() for h in self.settings.sensitive_headers}
        for name, value in headers:
            if self.settings.header_mode != "all" and name.lower() not in wanted:
                continue
            for pattern in self.settings.dlp:
                if pattern.regex.search(value):
                    return name, pattern.name
        return None

    def _admit(self, host: str) -> bool:
        return self.limiter.admit(base_domain(normalize(host) or host))

    def check_connect(self, host: str, headers: Iterable[tuple[str, str]] = (), *,
                      resolved: Iterable[str] | OSError | None = None) -> Verdict | None:
        """forward.go handleConnect: header DLP on the CONNECT's own headers
        first, then the scanner (allowlist, SSRF guard, rate limit: the order
        of scanner.go Scan), on every CONNECT, passthrough or not."""
        hit = self.secret_header(headers)
        if hit is not None and self.settings.block:
            return Verdict(403, REASON_CONNECT_DLP)
        if not self.allowed(host):
            return Verdict(403, REASON_ALLOWLIST, f"{REASON_ALLOWLIST}: {host}")
        if (verdict := self.ssrf(host, resolved)) is not None:
            return verdict
        if not self.decrypts(host) and not self._admit(host):
            return Verdict(429, REASON_RATE, f"{REASON_RATE} for {host}")
        return None

    def check_request(self, host: str, headers: Iterable[tuple[str, str]], *, ssrf: bool = True,
                      resolved: Iterable[str] | OSError | None = None
                      ) -> tuple[Verdict | None, str | None]:
        """``(verdict, dlp hit description)``; a hit under action ``warn``
        has no verdict but is reported for the log. ``ssrf`` false: the host
        was checked at its CONNECT (a decrypted tunnel's inner request)."""
        if not self.allowed(host):
            return Verdict(403, REASON_ALLOWLIST, f"{REASON_ALLOWLIST}: {host}"), None
        if ssrf and (verdict := self.ssrf(host, resolved)) is not None:
            return verdict, None
        if not self._admit(host):
            return Verdict(429, REASON_RATE, f"{REASON_RATE} for {host}"), None
        hit = self.secret_header(headers)
        if hit is None:
            return None, None
        detail = f"header {hit[0]!r} matches dlp pattern {hit[1]!r}"
        return (Verdict(403, REASON_HEADER_SECRET) if self.settings.block else None), detail

    @staticmethod
    def sni_mismatch(target: str, sni: str | None) -> bool:
        """forward.go verifySNI (internal/proxy/sni.go): the ClientHello SNI,
        lower-cased and one trailing dot trimmed, must equal the CONNECT target
        likewise; no SNI (or not TLS) is let through. Checked on every CONNECT,
        passthrough or not (sni_verification defaults to true)."""
        if not sni:
            return False
        return _go_host(sni) != _go_host(target)

    @staticmethod
    def authority_mismatch(target: str, target_port: int, authority: str | None) -> bool:
        """intercept.go interceptTunnel: the inner Host (default port 443)
        must equal the CONNECT target and port (strings.EqualFold)."""
        if authority is None:
            return True  # Go's server refuses a request without Host (HTTP/1.1)
        host, sep, port = authority.rpartition(":") if not authority.endswith("]") else ("", "", "")
        if not sep or not port.isdigit():
            host, port = authority, "443"
        return host.lower() != target.lower() or port != str(target_port)


def _go_host(name: str) -> str:
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


class PipelockAddon:
    """mitmproxy hooks applying `PipelockPolicy`. Never logs header values.

    The CONNECT target of each client connection is remembered so the
    inner requests and the ClientHello can be held to it (issue 15)."""

    def __init__(self, policy: PipelockPolicy, logger, *, clock: Callable[[], float] = time.time):
        self.policy, self.log = policy, logger
        self._targets: dict[str, tuple[str, int]] = {}
        self._doomed: set[str] = set()
        self._opened: dict[str, float] = {}  # client id -> when its tunnel was admitted
        self._clock = clock
        self._reaper = None

    # -- tunnel limits (forward.go handleConnect ~392-396 and ~534-535, relay.go
    # bidirectionalCopy/copyWithIdleTimeout, intercept.go ~307-317) --------------------
    def expired(self, client_id: str, last_activity: float, now: float) -> str | None:
        """Why the tunnel of ``client_id`` must be cut now, or None: older than
        ``max_tunnel_seconds`` (every tunnel: the absolute deadline covers the
        relay and the decrypted server), or silent for ``idle_timeout_seconds``
        (a tunnel that is not decrypted: the relay's per-read deadline)."""
        opened = self._opened.get(client_id)
        if opened is None:
            return None
        cfg = self.policy.settings
        if now - opened >= cfg.max_tunnel_seconds:
            return f"max_tunnel_seconds ({cfg.max_tunnel_seconds}s) reached"
        target = self._targets.get(client_id)
        if (target is not None and not self.policy.decrypts(target[0])
                and now - max(last_activity, opened) >= cfg.idle_timeout_seconds):
            return f"idle for idle_timeout_seconds ({cfg.idle_timeout_seconds}s)"
        return None

    def running(self) -> None:
        import asyncio

        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    def done(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()

    async def _reap(self) -> None:
        import asyncio

        from mitmproxy import ctx

        cfg = self.policy.settings
        tick = max(0.1, min(1.0, min(cfg.max_tunnel_seconds, cfg.idle_timeout_seconds) / 4))
        while True:
            await asyncio.sleep(tick)
            server = ctx.master.addons.get("proxyserver")
            now = self._clock()
            for handler in list(getattr(server, "connections", {}).values()):
                client = handler.client
                why = self.expired(client.id, handler.timeout_watchdog.last_activity, now)
                if why is None:
                    continue
                io = handler.transports.get(client)
                if io is not None and io.handler is not None:
                    target = self._targets.get(client.id)
                    self.log.info(f"closing tunnel to {target[0] if target else '?'}: {why}")
                    self._opened.pop(client.id, None)
                    io.handler.cancel(why)

    def _refuse(self, flow, verdict: Verdict, what: str, *, connect: bool = False) -> None:
        from mitmproxy import http

        body = verdict.body(connect)
        self.log.info(f"{verdict.status} {what}: {body}")
        flow.response = http.Response.make(
            verdict.status, f"{body}\n".encode(), {"Content-Type": "text/plain; charset=utf-8"})

    async def _lookup(self, host: str) -> list[str] | OSError | None:
        """The host's addresses for the SSRF guard, looked up off the event
        loop (only when the host passed the allowlist and the guard resolves)."""
        if not self.policy.allowed(host) or not self.policy.needs_dns(host):
            return None
        import asyncio

        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            return exc
        return sorted({info[4][0] for info in infos})

    async def http_connect(self, flow) -> None:
        host, port = flow.request.host, flow.request.port
        resolved = await self._lookup(host)
        verdict = self.policy.check_connect(host, flow.request.headers.items(multi=True),
                                            resolved=resolved)
        if verdict:
            self._refuse(flow, verdict, f"CONNECT {host}:{port}", connect=True)
            return
        self._targets[flow.client_conn.id] = (host, port)
        self._opened[flow.client_conn.id] = self._clock()

    def client_disconnected(self, client) -> None:
        self._targets.pop(client.id, None)
        self._opened.pop(client.id, None)
        self._doomed.discard(client.id)

    def tls_clienthello(self, data) -> None:
        client = data.context.client
        target = self._targets.get(client.id)
        address = data.context.server.address
        host = target[0] if target else (address[0] if address else None)
        if host is not None and self.policy.sni_mismatch(host, data.client_hello.sni):
            self.log.info(f"closing tunnel to {host}: SNI mismatch "
                          f"(ClientHello names {data.client_hello.sni!r})")
            self._doomed.add(client.id)
            data.establish_server_tls_first = False
            return
        if host is None or not self.policy.decrypts(host):
            data.ignore_connection = True

    def tls_start_client(self, data) -> None:
        if data.context.client.id in self._doomed:
            data.ssl_conn = None  # mitmproxy closes the client connection

    async def request(self, flow) -> None:
        if flow.response is not None or flow.request.method == "CONNECT":
            return
        req = flow.request
        what = f"{req.method} {req.scheme}://{req.host}:{req.port}"
        target = self._targets.get(flow.client_conn.id)
        hosts = req.headers.get_all("Host")
        if target is not None:  # inside a decrypted tunnel
            authority = req.authority or (hosts[0] if len(hosts) == 1 else None)
            if (len(hosts) > 1 or (req.authority and hosts and req.authority.lower() != hosts[0].lower())
                    or self.policy.authority_mismatch(target[0], target[1], authority)):
                self._refuse(flow, Verdict(403, REASON_AUTHORITY, "authority mismatch: blocked"), what)
                return
            host = target[0]
        else:  # a plain proxy request: the URI names the host; Host must agree
            host = req.host
            if len(hosts) > 1 or (hosts and not same_authority(hosts[0], req.host, req.port)):
                self._refuse(flow, Verdict(403, REASON_HOST_HEADER), what)
                return
        inner = target is not None  # its host passed the guard at the CONNECT
        resolved = None if inner else await self._lookup(host)
        verdict, dlp_hit = self.policy.check_request(host, req.headers.items(multi=True),
                                                     ssrf=not inner, resolved=resolved)
        if dlp_hit:
            self.log.info(f"dlp {what}: {dlp_hit}")
        if verdict:
            self._refuse(flow, verdict, what)


def same_authority(header: str, host: str, port: int) -> bool:
    """A Host header names ``host`` (and ``port``, default 80) exactly."""
    try:
        h, p = hostnames.split_authority(header, 80)
        return h == hostnames.canonical(host) and p == port
    except hostnames.HostError:
        return False


def _re2_compile(regex: str):
    """pipelock scanner.go New: every DLP pattern is compiled with ``(?i)``
    prefixed unless it already starts with it."""
    import re2  # google-re2: the syntax pipelock's Go regexp accepts

    return re2.compile(regex if regex.startswith("(?i)") else "(?i)" + regex)


def load_settings(path: Path) -> PipelockSettings:
    """Read and validate the config, CA files included; `pipelock.PipelockConfigError`
    or OSError on failure."""
    data = pipelock.load_config(path.read_text())
    problems = pipelock.check_ca_files(data)
    if problems:
        raise pipelock.PipelockConfigError(problems, pipelock._key_of(problems[0]))
    return PipelockSettings.from_config(data)


def main(argv: list[str] | None = None) -> int:
    logger = logs.setup_logging(NAME)
    path = Path(os.environ.get(CONFIG_ENV) or pipelock.CONFIG_PATH)
    try:
        settings = load_settings(path)
    except OSError as exc:
        return logs.fail(NAME, f"cannot read config {path}: {exc.strerror}")
    except pipelock.PipelockConfigError as exc:
        lines = "\n".join(f"  {p}" for p in exc.problems)
        return logs.fail(NAME, f"refusing to start: invalid config {path}:\n{lines}")
    except ValueError as exc:
        return logs.fail(NAME, f"refusing to start: invalid config {path}: {exc}")

    tls = settings.tls_enabled
    if tls:
        # pipelock's LoadCA (certgen.go) via LoadCertCache (proxy.go): an
        # ECDSA CA only; anything else and pipelock does not start
        try:
            pipelock.load_ca(Path(settings.ca_cert).read_bytes(), Path(settings.ca_key).read_bytes())
        except OSError as exc:
            return logs.fail(NAME, f"refusing to start: load TLS CA: read CA files: {exc.strerror}")
        except pipelock.CaLoadError as exc:
            return logs.fail(NAME, f"refusing to start: {pipelock.load_ca_error(exc)}")
    try:
        confdir, bundle = mitm.prepare_confdir(
            Path(settings.ca_cert) if tls else None, Path(settings.ca_key) if tls else None,
            mitm.env_paths(os.environ.get(UPSTREAM_CA_ENV)), what=UPSTREAM_CA_ENV)
    except mitm.StartupError as exc:
        return logs.fail(NAME, str(exc))

    logger.info(
        f"config {path}: mode={settings.mode} allowlist={len(settings.allowlist)} hosts "
        f"passthrough={len(settings.passthrough)} tls_interception={settings.tls_enabled} "
        f"header_dlp={'block' if settings.block else 'warn'}"
        f"{'' if settings.scan_headers else ' (off)'} "
        f"rate_limit={settings.max_requests_per_minute}/min per base domain"
    )
    options = {
        "mode": ["regular"],
        "listen_host": settings.listen[0],
        "listen_port": settings.listen[1],
        "confdir": str(confdir),
        "ssl_verify_upstream_trusted_ca": str(bundle),
        "connection_strategy": "eager",
        **mitm.HARDENED_OPTIONS,
    }
    addon = PipelockAddon(PipelockPolicy(settings), logger)
    return mitm.run(NAME, options, [addon], logger, settings.listen)


if __name__ == "__main__":
    sys.exit(main())
