"""Host patterns and listen addresses, shared by the two proxies.

One matcher for both so pipelock's allowlist/passthrough and egress's routes
agree on what a host is: case-insensitive, trailing dot ignored, IPv6
brackets stripped, and ``*.x.com`` matching any subdomain of ``x.com`` but
NOT ``x.com`` itself (pipelock's rule; DESIGN §8). That is why the planner
lists API apexes explicitly next to their wildcard.
"""

from __future__ import annotations

from collections.abc import Iterable


def normalize(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def host_matches(host: str, pattern: str) -> bool:
    """``host`` is ``pattern`` exactly, or a proper subdomain of a ``*.`` pattern."""
    host, pattern = normalize(host), normalize(pattern)
    if not host or not pattern:
        return False
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".x.com"
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def matches_any(host: str, patterns: Iterable[str]) -> bool:
    return any(host_matches(host, p) for p in patterns)


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
