"""Placeholder credentials: the guest believes it is signed in, egress holds
the real token.

With ``forward_host_credentials`` the host's real Codex / Claude sign-in is
read once (by `prepare`, through `HostContext`), its access token becomes an
egress secret, and the guest gets a placeholder file of the same shape that
contains no real token material.

Codex (seed "codex fix"): Codex refreshes when its local access token's JWT
``exp`` has passed, and a placeholder refresh token cannot refresh, so the
placeholder tokens carry the *real* token's ``exp`` (never now+1h). Nothing
here reads a clock, so the result depends only on the input text.

Error messages never contain a token value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import jwt as _jwt

CODEX_API_HOSTS: tuple[str, ...] = ("chatgpt.com", "api.openai.com")
# Pipelock lists only (allowlist + passthrough): a wildcard does not match the
# apex, which is why the apex is also listed explicitly via CODEX_API_HOSTS.
CODEX_WILDCARD_HOSTS: tuple[str, ...] = ("*.chatgpt.com",)
CLAUDE_API_HOSTS: tuple[str, ...] = ("api.anthropic.com",)

from bottle_api.conventions import CLAUDE_CREDENTIALS_GUEST, CODEX_AUTH_GUEST  # noqa: E402,F401

CODEX_REFRESH_PLACEHOLDER = "bottle-placeholder-refresh-token"
CLAUDE_ACCESS_PLACEHOLDER = "sk-ant-oat01-bottle-placeholder"
CLAUDE_REFRESH_PLACEHOLDER = "sk-ant-ort01-bottle-placeholder"
CLAUDE_DEFAULT_SCOPES: tuple[str, ...] = ("user:inference",)

OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"
OPENAI_PROFILE_CLAIM = "https://api.openai.com/profile"
# Claims Codex parses from its tokens that identify, but do not authorise.
_CODEX_AUTH_STR_CLAIMS = ("chatgpt_account_id", "chatgpt_plan_type", "chatgpt_user_id", "user_id")
_CODEX_AUTH_BOOL_CLAIMS = ("chatgpt_account_is_fedramp",)


class CredentialError(ValueError):
    """The host credential file cannot be forwarded. Never names a token value."""


def decode_jwt_payload(token: str, *, what: str = "token") -> dict[str, Any]:
    """The claims of a 3-part JWT, unverified; `CredentialError` otherwise."""
    try:
        return _jwt.decode_payload(token)
    except _jwt.JWTError as exc:
        raise CredentialError(f"{what} is not a readable JWT ({exc})") from None


def jwt_exp(token: str, *, what: str = "token") -> int | None:
    """The token's ``exp`` (seconds since the epoch), or None if it has none."""
    return _claims_exp(decode_jwt_payload(token, what=what), what)


def _claims_exp(claims: Mapping[str, Any], what: str) -> int | None:
    try:
        return _jwt.exp_of(claims)
    except _jwt.JWTError as exc:
        raise CredentialError(f"{what}: {exc}") from None


def _load_object(text: str, name: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        detail = f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "not text"
        raise CredentialError(f"{name} is not valid JSON ({detail})") from None
    if not isinstance(data, dict):
        raise CredentialError(f"{name} is not a JSON object")
    return data


def _required_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise CredentialError(f"{where}.{key} is missing or not a string")
    return value


def _codex_public_claims(claims: Mapping[str, Any], exp: int | None) -> dict[str, Any]:
    """Only what Codex reads and nothing that authorises: exp, email, and the
    account/plan identifiers of the OpenAI auth claim."""
    out: dict[str, Any] = {}
    if exp is not None:
        out["exp"] = exp
    if isinstance(claims.get("email"), str):
        out["email"] = claims["email"]
    profile = claims.get(OPENAI_PROFILE_CLAIM)
    if isinstance(profile, Mapping) and isinstance(profile.get("email"), str):
        out[OPENAI_PROFILE_CLAIM] = {"email": profile["email"]}
    auth = claims.get(OPENAI_AUTH_CLAIM)
    if isinstance(auth, Mapping):
        kept = {k: auth[k] for k in _CODEX_AUTH_STR_CLAIMS if isinstance(auth.get(k), str)}
        kept.update({k: auth[k] for k in _CODEX_AUTH_BOOL_CLAIMS if isinstance(auth.get(k), bool)})
        if kept:
            out[OPENAI_AUTH_CLAIM] = kept
    return out


def codex_placeholder(real_auth_json: str) -> tuple[str, str]:
    """``(placeholder auth.json text, real access token)`` from the host's
    ``~/.codex/auth.json``.

    The placeholder has Codex's shape (``AuthDotJson`` in
    codex-rs/login/src/auth/storage.rs, ``TokenData`` in token_data.rs) and
    no other key: the host's ``auth_mode`` if it has one, ``OPENAI_API_KEY`` null, ``tokens``
    with unsigned 3-part JWT ``id_token``/``access_token`` carrying the real
    tokens' ``exp`` (the id token falls back to the access token's exp when
    the real id token has none) and non-secret identity claims, a fixed
    ``refresh_token``, the real ``account_id``; ``last_refresh`` copied.
    """
    name = "~/.codex/auth.json"
    data = _load_object(real_auth_json, name)
    tokens = data.get("tokens")
    if not isinstance(tokens, Mapping):
        raise CredentialError(
            f"{name} has no ChatGPT sign-in (no \"tokens\" object); run `codex login` on the host"
        )
    access = _required_str(tokens, "access_token", f"{name}: tokens")
    id_token = _required_str(tokens, "id_token", f"{name}: tokens")
    access_claims = decode_jwt_payload(access, what=f"{name}: tokens.access_token")
    id_claims = decode_jwt_payload(id_token, what=f"{name}: tokens.id_token")
    access_exp = _claims_exp(access_claims, f"{name}: tokens.access_token")
    id_exp = _claims_exp(id_claims, f"{name}: tokens.id_token")
    if id_exp is None:
        id_exp = access_exp

    account_id = tokens.get("account_id")
    if not isinstance(account_id, str):
        auth = id_claims.get(OPENAI_AUTH_CLAIM)
        fallback = auth.get("chatgpt_account_id") if isinstance(auth, Mapping) else None
        account_id = fallback if isinstance(fallback, str) else None
    last_refresh = data.get("last_refresh")

    placeholder: dict[str, Any] = {}
    if isinstance(data.get("auth_mode"), str):
        # Codex's AuthDotJson has an optional auth_mode; the host's is kept,
        # none is ever added (codex-rs/login/src/auth/storage.rs).
        placeholder["auth_mode"] = data["auth_mode"]
    placeholder |= {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": _jwt.encode_unsigned(_codex_public_claims(id_claims, id_exp)),
            "access_token": _jwt.encode_unsigned(_codex_public_claims(access_claims, access_exp)),
            "refresh_token": CODEX_REFRESH_PLACEHOLDER,
            "account_id": account_id,
        },
        "last_refresh": last_refresh if isinstance(last_refresh, str) else None,
    }
    return json.dumps(placeholder, indent=2) + "\n", access


def claude_placeholder(real_credentials_json: str) -> tuple[str, str]:
    """``(placeholder .credentials.json text, real access token)`` from the
    host's ``~/.claude/.credentials.json``: fixed placeholder tokens, the real
    ``expiresAt`` (ms) and ``scopes`` (default ``["user:inference"]``)."""
    name = "~/.claude/.credentials.json"
    data = _load_object(real_credentials_json, name)
    oauth = data.get("claudeAiOauth")
    if not isinstance(oauth, Mapping):
        raise CredentialError(
            f"{name} has no Claude sign-in (no \"claudeAiOauth\" object); run `claude login` on the host"
        )
    access = _required_str(oauth, "accessToken", f"{name}: claudeAiOauth")
    expires = oauth.get("expiresAt")
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise CredentialError(f"{name}: claudeAiOauth.expiresAt is missing or not an integer (ms)")
    scopes = oauth.get("scopes")
    if scopes is None:
        scopes = list(CLAUDE_DEFAULT_SCOPES)
    elif not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise CredentialError(f"{name}: claudeAiOauth.scopes is not a list of strings")

    inner: dict[str, Any] = {
        "accessToken": CLAUDE_ACCESS_PLACEHOLDER,
        "refreshToken": CLAUDE_REFRESH_PLACEHOLDER,
        "expiresAt": expires,
        "scopes": list(scopes),
    }
    if isinstance(oauth.get("subscriptionType"), str):
        inner["subscriptionType"] = oauth["subscriptionType"]
    return json.dumps({"claudeAiOauth": inner}, indent=2) + "\n", access


def api_hosts(agent: str) -> tuple[str, ...]:
    """Hosts egress injects the forwarded credential for (one route each)."""
    return CODEX_API_HOSTS if agent == "codex" else CLAUDE_API_HOSTS


def pipelock_extra_hosts(agent: str) -> tuple[str, ...]:
    """Hosts pipelock must also allow and pass through, beyond the routes."""
    return CODEX_WILDCARD_HOSTS if agent == "codex" else ()
