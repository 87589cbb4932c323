"""egress's routes file as egress reads it (``/etc/egress/routes.yaml``).

Each route names a host, the header egress rewrites, its scheme, and the
*slot* env var holding the real token (``BOTTLE_EGRESS_TOKEN_<i>``). The
reference renders this file (`bottle_ref.egress`); the egress daemon loads
it here. Stdlib + PyYAML only (it runs inside the bundle image).
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from bottle_api import conventions

ROUTES_PATH = conventions.EGRESS_ROUTES_PATH
CA_CERT = conventions.EGRESS_CA_CERT
CA_KEY = conventions.EGRESS_CA_KEY
UPSTREAM_ENV = conventions.EGRESS_UPSTREAM_ENV
LISTEN_ENV = conventions.EGRESS_LISTEN_ENV
DEFAULT_LISTEN = "0.0.0.0:9099"

_ROUTE_KEYS = ("host", "header", "scheme", "token_env")


class RoutesError(ValueError):
    """A routes file egress cannot use; the message names the key path."""


def header_value(scheme: str, token: str) -> str:
    """What egress writes into the route's header: ``Bearer <token>``, or the
    bare token when the scheme is empty."""
    return f"{scheme} {token}" if scheme else token


def load_routes(text: str) -> tuple[list[dict[str, str]], str]:
    """Parse egress-routes.yaml into ``(routes, upstream_proxy)``.

    Each route dict has exactly host, header, scheme, token_env (header and
    scheme default to Authorization / Bearer). Raises `RoutesError`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise RoutesError("egress routes: not valid YAML") from None
    if not isinstance(data, Mapping):
        raise RoutesError("egress routes: expected a mapping with routes and upstream_proxy")
    for key in data:
        if key not in ("routes", "upstream_proxy"):
            raise RoutesError(f"{key}: unknown key")
    upstream = data.get("upstream_proxy")
    if not isinstance(upstream, str) or not upstream:
        raise RoutesError("upstream_proxy: required (egress always forwards to pipelock)")
    raw = data.get("routes") or []
    if not isinstance(raw, list):
        raise RoutesError("routes: expected a list")
    routes = []
    for i, item in enumerate(raw):
        where = f"routes[{i}]"
        if not isinstance(item, Mapping):
            raise RoutesError(f"{where}: expected a mapping")
        for key in item:
            if key not in _ROUTE_KEYS:
                raise RoutesError(f"{where}.{key}: unknown key")
        route = {"host": item.get("host"), "header": item.get("header", "Authorization"),
                 "scheme": item.get("scheme", "Bearer"), "token_env": item.get("token_env")}
        for key in ("host", "header", "token_env"):
            if not isinstance(route[key], str) or not route[key]:
                raise RoutesError(f"{where}.{key}: required non-empty string")
        if not isinstance(route["scheme"], str):
            raise RoutesError(f"{where}.scheme: expected a string")
        routes.append(route)
    return routes, upstream
