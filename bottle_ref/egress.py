"""egress routes: which hosts get which real token, and where egress forwards.

egress owns the real tokens; the guest only ever holds placeholders. Route
``i`` reads its token from the env var ``BOTTLE_EGRESS_TOKEN_<i>`` (a *slot*),
so the bundle's argv names only the slot (``-e BOTTLE_EGRESS_TOKEN_0``) and
the value travels in the runner's ``env=``. Egress always forwards to
pipelock (seed "auth-chain fix": egress -> pipelock -> internet).

Stdlib + PyYAML only: the egress daemon in the bundle image loads its routes
with `load_routes`. Routes are duck-typed (anything with ``host``,
``token_env``, ``header``, ``scheme``) so this module needs no `bottle_ref.spec`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import yaml

from . import yamltext

SLOT_PREFIX = "BOTTLE_EGRESS_TOKEN_"
ROUTES_PATH = "/etc/egress/routes.yaml"
CA_CERT = "/etc/egress/ca.pem"
CA_KEY = "/etc/egress/ca-key.pem"
UPSTREAM_ENV = "EGRESS_UPSTREAM_PROXY"
LISTEN_ENV = "EGRESS_LISTEN"
DEFAULT_LISTEN = "0.0.0.0:9099"

_ROUTE_KEYS = ("host", "header", "scheme", "token_env")


class RouteLike(Protocol):
    host: str
    token_env: str
    header: str
    scheme: str


class RoutesError(ValueError):
    """A routes file egress cannot use; the message names the key path."""


def token_slot(i: int) -> str:
    """The env var route ``i`` reads its real token from."""
    if isinstance(i, bool) or not isinstance(i, int) or i < 0:
        raise ValueError(f"token slot index must be a non-negative int, got {i!r}")
    return f"{SLOT_PREFIX}{i}"


def header_value(scheme: str, token: str) -> str:
    """What egress writes into the route's header: ``Bearer <token>``, or the
    bare token when the scheme is empty."""
    return f"{scheme} {token}" if scheme else token


def routes_data(routes: Sequence[RouteLike], upstream_proxy: str) -> dict[str, Any]:
    return {
        "routes": [
            {"host": r.host, "header": r.header, "scheme": r.scheme, "token_env": token_slot(i)}
            for i, r in enumerate(routes)
        ],
        "upstream_proxy": upstream_proxy,
    }


def render_routes(routes: Sequence[RouteLike], upstream_proxy: str) -> str:
    """egress-routes.yaml text. ``token_env`` is the slot, never the host's
    env var name (egress sees only slots) and never a value."""
    return yamltext.dump(routes_data(routes, upstream_proxy))


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


def resolve_tokens(
    routes: Sequence[RouteLike], env: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Read each route's real token from ``env`` (the *host* env).

    Returns ``(secrets, missing)``: ``secrets`` maps slot -> value for every
    route whose ``token_env`` is set and non-empty; ``missing`` lists the key
    path ``egress.routes[i].token_env`` of the others (``routes`` are the
    declared routes, so ``i`` is the index the user wrote)."""
    secrets: dict[str, str] = {}
    missing: list[str] = []
    for i, route in enumerate(routes):
        value = env.get(route.token_env)
        if value:
            secrets[token_slot(i)] = value
        else:
            missing.append(f"egress.routes[{i}].token_env")
    return secrets, missing
