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

Safety: a token is injected only into HTTPS requests (never onto cleartext)
and matched on the actual destination host (the CONNECT target), not on the
Host header the agent wrote. Token values are never logged or put in repr;
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


class EgressAddon:
    def __init__(self, injector: EgressInjector, logger):
        self.injector, self.log = injector, logger

    def request(self, flow) -> None:
        req = flow.request
        header = self.injector.header_for(req.scheme, req.host)
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
    }
    return mitm.run(NAME, options, [EgressAddon(injector, logger)], logger, listen)


if __name__ == "__main__":
    sys.exit(main())
