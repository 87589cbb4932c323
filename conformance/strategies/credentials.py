"""Strategies for host credentials: JWTs with any exp, Codex auth.json, Claude credentials."""

from __future__ import annotations

import base64
import functools
import json
import time
from typing import Any

from hypothesis import strategies as st

from .pools import _ALNUM, SECRET_CLAIM, SECRET_MARK, _b64url, _b64url_json
from .specs import _packed, _secret_body

# -- credentials -------------------------------------------------------------------

_NOW = int(time.time())  # "near" exps are near the suite's start; prepare never reads a clock


@functools.cache
def exps() -> st.SearchStrategy[int]:
    """JWT ``exp`` values of every kind: past, near (minutes either side of
    now, where a now+1h placeholder would hide), far, 0, negative, huge."""
    return st.one_of(
        st.integers(-2**31, 2**31 - 1),
        st.integers(_NOW - 7200, _NOW + 7200),
        st.integers(2**31, 2**63 - 1),
        st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, _NOW + 3600]),
    )


def decode_jwt(token: str) -> tuple[dict, dict]:
    """``(header, claims)`` of a 3-part JWT, written here (not imported from
    bottle_ref) so the tier's oracle is independent of the code under test.
    Raises ValueError for anything that is not header.payload.signature."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"{len(parts)} dot-separated parts, a JWT has 3")
    out = []
    for what, seg in (("header", parts[0]), ("payload", parts[1])):
        if not seg or any(c not in _ALNUM + "-_" for c in seg):
            raise ValueError(f"{what} segment is not base64url")
        value = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
        if not isinstance(value, dict):
            raise ValueError(f"{what} is not a JSON object")
        out.append(value)
    return out[0], out[1]


_JWT_SECRETS = st.binary(min_size=28, max_size=60)
_EMAIL_POOL = (None, "ada@example.org", "zoë@example.org")
_PLAN_POOL = ("plus", "pro", "team")
# Identity details of a JWT in one packed choice: (email, plan type).
_JWT_DETAILS = _packed(_EMAIL_POOL, _PLAN_POOL)
_ACCOUNTS = st.uuids().map(lambda u: u.hex)
# The rest of a Codex file in one packed choice: (last_refresh, JSON indent,
# how the id token's exp relates to the access token's, whether
# tokens.account_id is there: Codex's TokenData has it optional, and a host
# without it has the account only in the id token's chatgpt_account_id).
_CODEX_DETAILS = _packed(("2025-05-01T12:00:00.000000Z", "1970-01-01T00:00:00Z"), (None, 2),
                         ("same", "same", "other", "none"), ("key", "key", "no-key"))
_EXPIRES_AT = st.integers(-2**31, 2**53)
_SCOPES = st.one_of(st.none(), st.lists(st.sampled_from(
    ["user:inference", "user:profile", "org:create_api_key", "user:sessions:claude_code"]),
    max_size=4, unique=True))
_SUBSCRIPTIONS = st.sampled_from([None, "pro", "max"])


def _draw_jwt(draw, exp_value: int | None, account_id: str) -> str:
    secret = draw(_JWT_SECRETS)  # one draw: the secret claim and the signature
    email, plan_type = draw(_JWT_DETAILS)
    claims: dict[str, Any] = {SECRET_CLAIM: "claim" + SECRET_MARK + _b64url(secret[:12])}
    if exp_value is not None:
        claims["exp"] = exp_value
        claims["iat"] = exp_value - 3600
    if email is not None:
        claims["email"] = email
    claims["https://api.openai.com/auth"] = {"chatgpt_account_id": account_id,
                                             "chatgpt_plan_type": plan_type}
    header = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    signature = "realSig" + _b64url(secret[12:])
    return f"{_b64url_json(header)}.{_b64url_json(claims)}.{signature}"


def jwt_tokens(exp: st.SearchStrategy[int | None] | None = None) -> st.SearchStrategy[str]:
    """Real-looking signed JWTs (header.payload.signature). ``exp``: a
    strategy for the exp claim (a drawn None means no exp; default `exps`).
    The payload carries identity claims Codex reads, an ``iat``, and a
    `SECRET_CLAIM` whose value is secret material; the signature segment is
    secret too (see `credential_material`)."""
    exp = exps() if exp is None else exp

    @st.composite
    def build(draw) -> str:
        return _draw_jwt(draw, draw(exp), draw(_ACCOUNTS))

    return build()


def codex_auth_json(exp: st.SearchStrategy[int] | None = None,
                    id_exp: st.SearchStrategy[int | None] | None = None) -> st.SearchStrategy[str]:
    """Host ``~/.codex/auth.json`` texts (ChatGPT sign-in). ``exp``: the
    access token's exp (default `exps`: past, near, far, 0, huge); ``id_exp``:
    the id token's (default: the same as the access token's, another one, or
    none, in which case Codex falls back to the access token's)."""
    if exp is None and id_exp is None:
        return _codex_default()
    return _codex(exps() if exp is None else exp, id_exp)


@functools.cache
def _codex_default() -> st.SearchStrategy[str]:
    return _codex(exps(), None)


def _codex(exp: st.SearchStrategy[int], id_exp: st.SearchStrategy[int | None] | None):
    @st.composite
    def build(draw) -> str:
        access_exp = draw(exp)
        last_refresh, indent, id_kind, account_key = draw(_CODEX_DETAILS)
        if id_exp is not None:
            id_value = draw(id_exp)
        else:
            id_value = {"same": access_exp, "none": None}.get(id_kind) if id_kind != "other" \
                else draw(exps())
        account = draw(_ACCOUNTS)
        data = {
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": _draw_jwt(draw, id_value, account),
                "access_token": _draw_jwt(draw, access_exp, account),
                "refresh_token": "rt" + SECRET_MARK + draw(_secret_body()),
                "account_id": account,
            },
            "last_refresh": last_refresh,
        }
        if account_key == "no-key":
            del data["tokens"]["account_id"]
        return json.dumps(data, indent=indent)

    return build()


def claude_credentials_json(expires_at: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[str]:
    """Host ``~/.claude/.credentials.json`` texts: any ``expiresAt`` (ms),
    ``scopes`` a list of strings or absent, ``subscriptionType`` or not."""
    if expires_at is None:
        return _claude_default()
    return _claude(expires_at)


@functools.cache
def _claude_default() -> st.SearchStrategy[str]:
    return _claude(_EXPIRES_AT)


def _claude(expires_at: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    @st.composite
    def build(draw) -> str:
        oauth: dict[str, Any] = {
            "accessToken": "sk-ant-oat01-" + SECRET_MARK + draw(_secret_body()),
            "refreshToken": "sk-ant-ort01-" + SECRET_MARK + draw(_secret_body()),
            "expiresAt": draw(expires_at),
        }
        scopes = draw(_SCOPES)
        if scopes is not None:
            oauth["scopes"] = scopes
        sub = draw(_SUBSCRIPTIONS)
        if sub is not None:
            oauth["subscriptionType"] = sub
        return json.dumps({"claudeAiOauth": oauth})

    return build()


def credential_material(text: str) -> frozenset[str]:
    """Every secret string in a host credential file generated here: whole
    tokens, JWT signatures, `SECRET_CLAIM` values, refresh tokens. None of
    them may appear in a placeholder (decoded or not), argv or plan repr."""
    data = json.loads(text)
    values: list[str] = []
    tokens_ = data.get("tokens") if isinstance(data, dict) else None
    if isinstance(tokens_, dict):
        for key in ("access_token", "id_token"):
            tok = tokens_.get(key)
            if isinstance(tok, str):
                values.append(tok)
                values.append(tok.rsplit(".", 1)[-1])
                try:
                    values.append(decode_jwt(tok)[1][SECRET_CLAIM])
                except (ValueError, KeyError):
                    pass
        if isinstance(tokens_.get("refresh_token"), str):
            values.append(tokens_["refresh_token"])
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if isinstance(oauth, dict):
        values += [oauth[k] for k in ("accessToken", "refreshToken") if isinstance(oauth.get(k), str)]
    return frozenset(v for v in values if len(v) >= 16)
