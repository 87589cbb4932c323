"""egress: the MITM proxy that owns the real tokens (mitmproxy addon + runner).

The guest holds only placeholders. For a request whose destination is a
route host, egress overwrites the route's header with ``<scheme> <token>``
(the real token, from the route's ``token_env`` slot), whatever the agent
sent; other requests pass unchanged. Everything then goes to pipelock
(upstream mode), so the hop order is agent -> egress -> pipelock -> internet
(seed "auth-chain fix"). pipelock lists route hosts as TLS passthrough so its
header DLP never sees the injected bearer (seed "codex fix").

Files and environment:
    EGRESS_ROUTES          routes file (default /etc/egress/routes.yaml):
                           ``routes: [{host, header, scheme, token_env}]``,
                           ``upstream_proxy: http://...``
    EGRESS_UPSTREAM_PROXY  overrides the file's upstream_proxy (always pipelock)
    BOTTLE_EGRESS_TOKEN_<i> (any route's token_env) the real tokens
    EGRESS_CA_DIR          dir with ca.pem + ca-key.pem (default /etc/egress);
                           without them and without routes an ephemeral CA is
                           used (an unrouted bottle's agent never dials egress)
    EGRESS_LISTEN          default 0.0.0.0:9099
    EGRESS_UPSTREAM_CA     extra CA bundle(s) to trust upstream, os.pathsep
                           separated, on top of the system store
    /etc/pipelock/ca.pem   trusted upstream too when present: pipelock
                           decrypts non-passthrough hosts with it, so egress's
                           upstream TLS sees pipelock-issued certificates

Safety: a token is injected only into HTTPS requests (never onto cleartext).
One host name per connection (issue 15): egress terminates the guest's TLS,
so it sees all three names a guest controls, the CONNECT target, the TLS
ClientHello SNI and the inner Host (or absolute-form URI) header, and
compares them after `bottle_api.hostnames.canonical`:

- a ClientHello whose SNI names another host than the CONNECT target closes
  the connection (as pipelock's ``verifySNI``, internal/proxy/sni.go);
- an HTTPS request whose inner host or port differs from the CONNECT target
  is refused (403) and never forwarded (as pipelock's intercept authority
  check, internal/proxy/intercept.go);
- a token is injected only when the CONNECT target is spelled exactly as
  the route host (canonical: lower case, no trailing dot, so pipelock's
  ``isPassthrough``, which does not strip a dot, passes it through rather
  than decrypting the injected bearer), the SNI is present and names it, and
  the inner Host names it too; a request that names a route host in any
  other way is refused, with nothing injected.

Upstream, mitmproxy dials the CONNECT target with the guest's SNI, which is
then the route host itself. Token values are never logged or put in repr;
a route whose token slot is unset stops egress at startup.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bottle_api import conventions
from bottle_api import hostnames

from . import routes as egress
from . import logs, mitm
from .hosts import host_matches, parse_listen

NAME = "egress"
ROUTES_ENV = "EGRESS_ROUTES"
CA_DIR_ENV = "EGRESS_CA_DIR"
UPSTREAM_CA_ENV = conventions.EGRESS_UPSTREAM_CA_ENV
DEFAULT_CA_DIR = str(Path(egress.CA_CERT).parent)


@dataclass(frozen=True)
class EgressRoute:
    host: str
    header: str
    scheme: str
    token_env: str


class EgressInjector:
    """Which request gets which header value. Tokens live in a private dict
    (not a dataclass field) so no repr or log line can carry them."""

    def __init__(self, routes: Sequence[EgressRoute], tokens: Mapping[str, str]):
        self.routes = tuple(routes)
        self.__tokens = dict(tokens)

    def __repr__(self) -> str:
        return f"EgressInjector(routes={[r.host for r in self.routes]})"

    def route_for(self, host: str) -> EgressRoute | None:
        return next((r for r in self.routes if host_matches(host, r.host)), None)

    def header_for(self, scheme: str, host: str) -> tuple[str, str] | None:
        """``(header, value)`` to set, or None to leave the request alone."""
        if scheme != "https":
            return None
        route = self.route_for(host)
        if route is None:
            return None
        return route.header, egress.header_value(route.scheme, self.__tokens[route.token_env])


@dataclass(frozen=True)
class Names:
    """The names a guest controls on one request inside a CONNECT tunnel."""

    target: str  # the CONNECT target host, as the guest spelled it
    target_port: int
    sni: str | None  # ClientHello SNI (None: none sent)
    host: str | None  # inner Host header (or absolute-form authority), as sent
    scheme: str


REFUSE_MISMATCH = "egress: one host name per connection: CONNECT target, TLS SNI and Host disagree"
REFUSE_SPELLING = "egress: a route host must be named exactly as routed (no trailing dot, lower case)"
REFUSE_NO_SNI = "egress: a route host needs the TLS SNI to name it"


def sni_mismatch(target: str, sni: str | None) -> bool:
    """pipelock verifySNI (internal/proxy/sni.go): an SNI that names another
    host than the CONNECT target closes the tunnel; no SNI is let through."""
    return sni is not None and not hostnames.same_host(target, sni)


def decide(injector: EgressInjector, names: Names) -> tuple[tuple[str, str] | None, str | None]:
    """``(header to set, refusal)`` for one request: at most one is set."""
    try:
        target = hostnames.canonical(names.target)
        inner_host, inner_port = (hostnames.split_authority(names.host, names.target_port)
                                  if names.host is not None else (None, None))
    except hostnames.HostError:
        return None, REFUSE_MISMATCH
    if sni_mismatch(names.target, names.sni) or (
            inner_host is not None and (inner_host != target or inner_port != names.target_port)):
        return None, REFUSE_MISMATCH
    if names.scheme != "https":
        return None, None  # cleartext: never inject; pipelock gates it
    if injector.route_for(target) is None:
        return None, None
    if names.target != target:
        return None, REFUSE_SPELLING
    if names.sni is None or names.host is None:
        return None, REFUSE_NO_SNI
    return injector.header_for("https", target), None


def inner_authority(req):
    """The host[:port] a request names inside its connection: the
    absolute-form/HTTP2 authority and the Host header must agree (False
    when they do not); None when it names none."""
    authority = req.authority or None
    host_header = req.headers.get("Host")
    if len(req.headers.get_all("Host")) > 1:
        return False
    if authority and host_header and authority.lower() != host_header.lower():
        return False
    return authority or host_header


class EgressAddon:
    def __init__(self, injector: EgressInjector, logger):
        self.injector, self.log = injector, logger
        self._targets: dict[str, tuple[str, int]] = {}  # client conn id -> CONNECT target
        self._doomed: set[str] = set()

    def http_connect(self, flow) -> None:
        self._targets[flow.client_conn.id] = (flow.request.host, flow.request.port)

    def client_disconnected(self, client) -> None:
        self._targets.pop(client.id, None)
        self._doomed.discard(client.id)

    def tls_clienthello(self, data) -> None:
        target = self._targets.get(data.context.client.id)
        sni = data.client_hello.sni
        if target is not None and sni_mismatch(target[0], sni):
            self.log.info(f"closing tunnel to {target[0]}:{target[1]}: TLS SNI names another host")
            self._doomed.add(data.context.client.id)
            data.establish_server_tls_first = False  # dial nothing with the guest's SNI

    def tls_start_client(self, data) -> None:
        if data.context.client.id in self._doomed:
            data.ssl_conn = None  # mitmproxy closes the client connection

    def request(self, flow) -> None:
        from mitmproxy import http

        req = flow.request
        target = self._targets.get(flow.client_conn.id)
        inner = inner_authority(req)
        if inner is False:
            names = Names(req.host, req.port, None, "", req.scheme)  # two disagreeing names
        elif target is None:  # no CONNECT: a plain-http proxy request
            names = Names(req.host, req.port, None, inner, req.scheme)
        else:
            names = Names(target[0], target[1], flow.client_conn.sni, inner, req.scheme)
        header, refusal = decide(self.injector, names)
        if refusal is not None:
            self.log.info(f"refused {req.method} {req.scheme}://{names.target}:{names.target_port}: "
                          f"{refusal}")
            flow.response = http.Response.make(403, f"{refusal}\n".encode(),
                                               {"Content-Type": "text/plain; charset=utf-8"})
            return
        if header is None:
            return
        name, value = header
        had = name in req.headers
        req.headers[name] = value
        self.log.info(f"injected {name} for {req.method} https://{req.host}:{req.port}"
                      f"{' (replaced the agent value)' if had else ''}")


def load(env: Mapping[str, str]) -> tuple[EgressInjector, str]:
    """Routes, tokens and upstream from the environment; ValueError with a
    message for the user."""
    path = Path(env.get(ROUTES_ENV) or egress.ROUTES_PATH)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read routes {path}: {exc.strerror}") from None
    try:
        raw_routes, upstream = egress.load_routes(text)
    except egress.RoutesError as exc:
        raise ValueError(f"invalid routes {path}: {exc}") from None
    upstream = env.get(egress.UPSTREAM_ENV) or upstream
    parts = urlsplit(upstream)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"upstream proxy must be http://HOST:PORT, got {upstream!r}")
    routes = [EgressRoute(**r) for r in raw_routes]
    tokens: dict[str, str] = {}
    for i, route in enumerate(routes):
        value = env.get(route.token_env)
        if not value:
            raise ValueError(f"routes[{i}] ({route.host}): token env {route.token_env} is not set")
        tokens[route.token_env] = value
    return EgressInjector(routes, tokens), f"http://{parts.hostname}:{parts.port}"


def main(argv: list[str] | None = None) -> int:
    logger = logs.setup_logging(NAME)
    env = os.environ
    try:
        injector, upstream = load(env)
        listen = parse_listen(env.get(egress.LISTEN_ENV) or egress.DEFAULT_LISTEN,
                              what=egress.LISTEN_ENV)
    except ValueError as exc:
        return logs.fail(NAME, f"refusing to start: {exc}")

    ca_dir = Path(env.get(CA_DIR_ENV) or DEFAULT_CA_DIR)
    cert, key = ca_dir / Path(egress.CA_CERT).name, ca_dir / Path(egress.CA_KEY).name
    have_ca = cert.is_file() and key.is_file()
    if not have_ca and injector.routes:
        return logs.fail(NAME, f"refusing to start: routes need the CA pair {cert} and {key}")
    extras = mitm.env_paths(env.get(UPSTREAM_CA_ENV))
    if os.path.isfile(conventions.PIPELOCK_CA_CERT):
        extras.append(Path(conventions.PIPELOCK_CA_CERT))
    try:
        confdir, bundle = mitm.prepare_confdir(cert if have_ca else None,
                                               key if have_ca else None, extras,
                                               what=UPSTREAM_CA_ENV)
    except mitm.StartupError as exc:
        return logs.fail(NAME, str(exc))

    logger.info(f"{len(injector.routes)} routes ({', '.join(r.host for r in injector.routes) or '-'}), "
                f"upstream {upstream}, CA {'from ' + str(ca_dir) if have_ca else 'ephemeral'}")
    options = {
        "mode": [f"upstream:{upstream}"],
        "listen_host": listen[0],
        "listen_port": listen[1],
        "confdir": str(confdir),
        "ssl_verify_upstream_trusted_ca": str(bundle),
        **mitm.HARDENED_OPTIONS,
    }
    return mitm.run(NAME, options, [EgressAddon(injector, logger)], logger, listen)


if __name__ == "__main__":
    sys.exit(main())
