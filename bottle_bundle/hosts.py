"""Host patterns and listen addresses, shared by the two proxies.

pipelock applies a different wildcard rule to each of its two host lists,
and the stand-in follows it list by list (luckyPipewrench/pipelock):

- ``api_allowlist``: `allowlist_matches`, pipelock's ``MatchDomain``
  (``internal/scanner/scanner.go``): case-insensitive, one trailing dot
  ignored on both sides, an IP literal matches only itself, and
  ``*.x.com`` matches ``x.com`` itself as well as any subdomain.
- ``tls_interception.passthrough_domains``: `passthrough_matches`,
  pipelock's ``isPassthrough`` (``internal/proxy/intercept.go``):
  case-insensitive, exact, or ``*.x.com`` matching subdomains only (NOT
  ``x.com``), and no trailing-dot handling. That is why the planner lists
  API apexes explicitly next to their wildcard.

egress's routes use `host_matches` (its own rule: subdomains only), on names
brought to one form by `bottle_api.hostnames.canonical` (case, one trailing
dot, IDNA, IPv6 brackets), the normaliser every matcher shares (issue 15).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from bottle_api import hostnames


def normalize(host: str) -> str:
    """`bottle_api.hostnames.canonical`, or "" for a name that is not a host
    (which then matches nothing: fail closed)."""
    try:
        return hostnames.canonical(host)
    except hostnames.HostError:
        return ""


def host_matches(host: str, pattern: str) -> bool:
    """``host`` is ``pattern`` exactly, or a proper subdomain of a ``*.`` pattern."""
    host, pattern = normalize(host), _pattern(pattern)
    if not host or not pattern:
        return False
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".x.com"
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def _pattern(text: str) -> str:
    try:
        return hostnames.pattern(text)
    except hostnames.HostError:
        return ""


def matches_any(host: str, patterns: Iterable[str]) -> bool:
    return any(host_matches(host, p) for p in patterns)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def allowlist_matches(host: str, pattern: str) -> bool:
    """pipelock ``MatchDomain`` (internal/scanner/scanner.go), rule by rule."""
    host = _trim_dot(host).lower()
    pattern = _trim_dot(pattern).lower()
    if _is_ip(host):  # IPs: exact only, no wildcard expansion
        return host == pattern
    if pattern.startswith("*."):
        return host == pattern[2:] or host.endswith(pattern[1:])
    return host == pattern


def passthrough_matches(host: str, pattern: str) -> bool:
    """pipelock ``isPassthrough`` (internal/proxy/intercept.go), rule by rule."""
    host, pattern = host.lower(), pattern.lower()
    if pattern == host:
        return True
    return pattern.startswith("*.") and host.endswith(pattern[1:])


def _trim_dot(text: str) -> str:
    """Go's strings.TrimSuffix(s, "."): at most one trailing dot."""
    return text[:-1] if text.endswith(".") else text


def parse_listen(text: str, *, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:PORT`` for IPv6; empty host = all interfaces)
    as ``(host, port)``; ValueError naming ``what`` otherwise."""
    raw = (text or "").strip()
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{what}: write IPv6 addresses in brackets, got {text!r}")
    return host or "0.0.0.0", int(port)
