"""One host-name normaliser for every matcher in a bottle (issue 15).

egress (route match), the pipelock stand-in (allowlist, passthrough, the
one-name checks), the reference's renderer and the suite's oracle all bring a
name to this one canonical form before they compare it, so no two of them
can disagree about which host a request names (the trailing-dot split of
issue 15: egress stripped the dot, pipelock's passthrough check did not).

`canonical` is what a host name *means*: lowercase, at most one trailing dot
removed, IPv6 brackets removed (and the address compressed), an IPv4 literal
as dotted decimal, a Unicode name as IDNA ASCII (punycode). `split_authority`
takes ``host[:port]`` (a Host header, a CONNECT target) apart. A name that is
not a valid host (empty, spaces, ``@``, ``/``, ``%``, ``..``, a bad port) is
refused with `HostError`: a check that refuses it fails closed.

`is_canonical` says whether a name is already in that form: egress injects a
token only for a CONNECT target spelled exactly as the route host, because
real pipelock's ``isPassthrough`` (internal/proxy/intercept.go) does not strip
a trailing dot, so a ``host.`` spelling would reach pipelock's DLP decrypted.

Stdlib only: the bundle image imports this module (pyproject's import-linter
contract lets bottle_bundle import it and `bottle_api.conventions`, nothing
else of bottle_api).
"""

from __future__ import annotations

import ipaddress
import re

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")


class HostError(ValueError):
    """Not a host name any matcher should accept; the message says why."""


def canonical(host: str) -> str:
    """The canonical form of ``host`` (no port). Raises `HostError`."""
    if not isinstance(host, str):
        raise HostError(f"host must be a string, got {type(host).__name__}")
    raw = host.strip()
    if raw != host or not raw:
        raise HostError(f"not a host name: {host!r}")
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1]
        try:
            return str(ipaddress.IPv6Address(inner))
        except ValueError:
            raise HostError(f"not an IPv6 literal: {host!r}") from None
    if ":" in raw:
        try:
            return str(ipaddress.IPv6Address(raw))
        except ValueError:
            raise HostError(f"not a host name (a port belongs in split_authority): {host!r}") from None
    name = raw[:-1] if raw.endswith(".") else raw
    if not name:
        raise HostError(f"not a host name: {host!r}")
    try:
        return str(ipaddress.IPv4Address(name))
    except ValueError:
        pass
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise HostError(f"not a valid IDNA name: {host!r}") from None
    name = name.lower()
    if len(name) > 253:
        raise HostError(f"host name longer than 253 characters: {host[:40]!r}...")
    labels = name.split(".")
    if any(not _LABEL.match(label) for label in labels):
        raise HostError(f"not a host name: {host!r}")
    if all(label.isdigit() for label in labels):  # 1.2.3 etc.: not a name, not an IPv4 literal
        raise HostError(f"not a host name: {host!r}")
    return name


def is_canonical(host: str) -> bool:
    """``host`` is spelled exactly as its canonical form."""
    try:
        return canonical(host) == host
    except HostError:
        return False


def same_host(a: str, b: str) -> bool:
    """Both name the same host; False when either is not a host name."""
    try:
        return canonical(a) == canonical(b)
    except HostError:
        return False


def split_authority(authority: str, default_port: int) -> tuple[str, int]:
    """``(canonical host, port)`` from ``host``, ``host:port``, ``[v6]:port``.
    Userinfo (``a@b``) is refused, as is a port outside 1..65535."""
    if not isinstance(authority, str) or not authority or "@" in authority:
        raise HostError(f"not a host[:port]: {authority!r}")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise HostError(f"unclosed IPv6 bracket: {authority!r}")
        host, rest = authority[:end + 1], authority[end + 1:]
        if rest and not rest.startswith(":"):
            raise HostError(f"not a host[:port]: {authority!r}")
        port_text = rest[1:] if rest else None
    elif authority.count(":") > 1:
        raise HostError(f"write IPv6 addresses in brackets: {authority!r}")
    else:
        host, sep, port_text = authority.partition(":")
        port_text = port_text if sep else None
    if port_text is None:
        port = default_port
    elif port_text.isdigit() and port_text.isascii() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise HostError(f"bad port in {authority!r}")
    return canonical(host), port


def pattern(text: str) -> str:
    """A host pattern (``host`` or ``*.host``) in canonical form."""
    if isinstance(text, str) and text.startswith("*."):
        return "*." + canonical(text[2:])
    return canonical(text)
