"""egress routes: which hosts get which real token, and where egress forwards.

egress owns the real tokens; the guest only ever holds placeholders. Route
``i`` reads its token from the env var ``BOTTLE_EGRESS_TOKEN_<i>`` (a *slot*),
so the bundle's argv names only the slot (``-e BOTTLE_EGRESS_TOKEN_0``) and
the value travels in the runner's ``env=``. Egress always forwards to
pipelock (seed "auth-chain fix": egress -> pipelock -> internet).

The egress daemon loads the rendered file with `bottle_bundle.routes`. Routes are duck-typed (anything with ``host``,
``token_env``, ``header``, ``scheme``) so this module needs no `bottle_api.spec`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bottle_api import conventions
from bottle_bundle.routes import (  # noqa: F401 - the format egress reads
    CA_CERT, CA_KEY, LISTEN_ENV, ROUTES_PATH, UPSTREAM_ENV, RoutesError, header_value, load_routes,
)

from . import yamltext

SLOT_PREFIX = conventions.EGRESS_TOKEN_SLOT_PREFIX


class RouteLike(Protocol):
    host: str
    token_env: str
    header: str
    scheme: str


def token_slot(i: int) -> str:
    """The env var route ``i`` reads its real token from."""
    if isinstance(i, bool) or not isinstance(i, int) or i < 0:
        raise ValueError(f"token slot index must be a non-negative int, got {i!r}")
    return f"{SLOT_PREFIX}{i}"


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
