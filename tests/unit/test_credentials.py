"""Placeholder credentials (CRED-EXP, CRED-SHAPE)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as pysecrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bottle_ref import jwt as bjwt
from bottle_ref.credentials import (
    CLAUDE_API_HOSTS,
    CODEX_API_HOSTS,
    CredentialError,
    claude_placeholder,
    codex_placeholder,
    decode_jwt_payload,
    jwt_exp,
)

AUTH_CLAIM = "https://api.openai.com/auth"
NOW = 1_750_000_000  # a fixed "now" for test data; the code under test reads no clock
EXPS = st.one_of(
    st.sampled_from([0, NOW - 86_400 * 30, NOW - 1, NOW + 60, NOW + 3600, NOW + 86_400 * 365 * 10,
                     2**31 - 1, 2**63 - 1]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)

def _token_from_seed(seed: bytes) -> str:
    digest = hashlib.sha512(b"bottle-test-token:" + seed).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# Real tokens are high-entropy: derive them from hypothesis-drawn seeds so every
# example looks random (a degenerate "0000..." token would share trivial
# substrings such as the digits of expiresAt with any file).
B64URL = st.binary(min_size=1, max_size=16).map(_token_from_seed)


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def real_jwt(claims: dict, signature: str | None = None) -> str:
    """A token shaped like the real ones (RS256 header, opaque signature)."""
    sig = signature if signature is not None else pysecrets.token_urlsafe(64)
    return f"{b64({'alg': 'RS256', 'typ': 'JWT', 'kid': 'k1'})}.{b64(claims)}.{sig}"


def codex_auth(*, access_exp=NOW + 864_000, id_exp=NOW + 3600, access_sig=None, id_sig=None,
               refresh="rt_" + "R" * 40, extra_claims=None, drop_id_exp=False, **top) -> str:
    auth = {"chatgpt_account_id": "acct-123", "chatgpt_plan_type": "plus",
            "chatgpt_user_id": "user-9", "secret_session": "sess-XYZ"}
    id_claims = {"email": "dev@example.test", AUTH_CLAIM: auth, "jti": "id-jti-value",
                 "aud": "app_x", "sub": "auth0|abc"}
    if not drop_id_exp:
        id_claims["exp"] = id_exp
    access_claims = {"exp": access_exp, AUTH_CLAIM: auth, "scp": ["openid"],
                     "session_id": "authsess_SECRETSESSION", **(extra_claims or {})}
    data = {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": real_jwt(id_claims, id_sig),
            "access_token": real_jwt(access_claims, access_sig),
            "refresh_token": refresh,
            "account_id": "acct-123",
        },
        "last_refresh": "2025-06-01T12:00:00.123456Z",
    }
    data.update(top)
    return json.dumps(data)


def claude_creds(**oauth) -> str:
    inner = {"accessToken": "sk-ant-oat01-" + "A" * 60, "refreshToken": "sk-ant-ort01-" + "B" * 60,
             "expiresAt": 1_750_000_000_000, "scopes": ["user:inference", "user:profile"]}
    inner.update(oauth)
    return json.dumps({"claudeAiOauth": {k: v for k, v in inner.items() if v is not ...}})


def windows(text: str, n: int = 8):
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def test_api_hosts():
    assert CODEX_API_HOSTS == ("chatgpt.com", "api.openai.com")
    assert CLAUDE_API_HOSTS == ("api.anthropic.com",)


class TestCodexShape:
    def test_auth_json_shape(self):
        text, access = codex_placeholder(codex_auth())
        data = json.loads(text)
        assert set(data) == {"OPENAI_API_KEY", "tokens", "last_refresh"}
        assert data["OPENAI_API_KEY"] is None
        assert set(data["tokens"]) == {"id_token", "access_token", "refresh_token", "account_id"}
        assert data["last_refresh"] == "2025-06-01T12:00:00.123456Z"
        assert data["tokens"]["account_id"] == "acct-123"
        assert data["tokens"]["refresh_token"] == "bottle-placeholder-refresh-token"
        assert access.count(".") == 2

    def test_returns_the_real_access_token(self):
        real = codex_auth(access_sig="S" * 50)
        _, access = codex_placeholder(real)
        assert access == json.loads(real)["tokens"]["access_token"]

    @pytest.mark.parametrize("field", ["id_token", "access_token"])
    def test_tokens_are_unsigned_three_part_jwts_codex_can_decode(self, field):
        token = json.loads(codex_placeholder(codex_auth())[0])["tokens"][field]
        header, payload, signature = token.split(".")
        # Codex decodes with URL_SAFE_NO_PAD: no padding, base64url alphabet only.
        for seg in (header, payload, signature):
            assert seg and "=" not in seg and "+" not in seg and "/" not in seg
        assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "none", "typ": "JWT"}
        assert isinstance(json.loads(base64.urlsafe_b64decode(payload + "==")), dict)

    def test_only_non_secret_claims_are_copied(self):
        data = json.loads(codex_placeholder(codex_auth())[0])
        claims = decode_jwt_payload(data["tokens"]["id_token"])
        assert claims == {
            "exp": NOW + 3600,
            "email": "dev@example.test",
            AUTH_CLAIM: {"chatgpt_account_id": "acct-123", "chatgpt_plan_type": "plus",
                         "chatgpt_user_id": "user-9"},
        }
        access_claims = decode_jwt_payload(data["tokens"]["access_token"])
        assert "session_id" not in access_claims and "scp" not in access_claims
        assert "secret_session" not in json.dumps(access_claims)

    def test_missing_last_refresh_and_account_id(self):
        real = json.loads(codex_auth())
        del real["last_refresh"]
        del real["tokens"]["account_id"]
        data = json.loads(codex_placeholder(json.dumps(real))[0])
        assert data["last_refresh"] is None
        # falls back to the id token's account claim (what Codex itself would use)
        assert data["tokens"]["account_id"] == "acct-123"

    def test_real_api_key_is_never_copied(self):
        data = json.loads(codex_placeholder(codex_auth(OPENAI_API_KEY="sk-proj-" + "k" * 40))[0])
        assert data["OPENAI_API_KEY"] is None

    def test_deterministic(self):
        real = codex_auth()
        assert codex_placeholder(real) == codex_placeholder(real)


class TestCodexExp:
    @given(access_exp=EXPS, id_exp=EXPS)
    def test_placeholder_tokens_carry_the_real_exp(self, access_exp, id_exp):
        data = json.loads(codex_placeholder(codex_auth(access_exp=access_exp, id_exp=id_exp))[0])
        assert jwt_exp(data["tokens"]["access_token"]) == access_exp
        assert jwt_exp(data["tokens"]["id_token"]) == id_exp

    @given(access_exp=EXPS)
    def test_id_token_without_exp_inherits_access_exp(self, access_exp):
        data = json.loads(codex_placeholder(codex_auth(access_exp=access_exp, drop_id_exp=True))[0])
        assert jwt_exp(data["tokens"]["id_token"]) == access_exp

    @pytest.mark.parametrize("label, exp", [("past", NOW - 7 * 86_400), ("near", NOW + 30),
                                            ("far", NOW + 20 * 365 * 86_400)])
    def test_past_near_far(self, label, exp):
        data = json.loads(codex_placeholder(codex_auth(access_exp=exp, id_exp=exp))[0])
        assert jwt_exp(data["tokens"]["access_token"]) == exp, label

    def test_fractional_exp_is_floored(self):
        data = json.loads(codex_placeholder(codex_auth(access_exp=1234.9))[0])
        assert jwt_exp(data["tokens"]["access_token"]) == 1234

    def test_access_without_exp_gives_placeholder_without_exp(self):
        real = json.loads(codex_auth())
        tok = real["tokens"]["access_token"].split(".")
        tok[1] = b64({AUTH_CLAIM: {"chatgpt_account_id": "acct-123"}})
        real["tokens"]["access_token"] = ".".join(tok)
        data = json.loads(codex_placeholder(json.dumps(real))[0])
        assert jwt_exp(data["tokens"]["access_token"]) is None


class TestCodexNoRealMaterial:
    @given(access_sig=B64URL, id_sig=B64URL, refresh=B64URL,
           session=B64URL)
    def test_no_substring_of_real_tokens(self, access_sig, id_sig, refresh, session):
        real_text = codex_auth(access_sig=access_sig, id_sig=id_sig, refresh="rt_" + refresh,
                               extra_claims={"session_id": "sess_" + session})
        real = json.loads(real_text)["tokens"]
        placeholder, _ = codex_placeholder(real_text)
        decoded = placeholder + "".join(
            json.dumps(decode_jwt_payload(json.loads(placeholder)["tokens"][f]))
            for f in ("access_token", "id_token"))
        for full in (real["access_token"], real["id_token"], real["refresh_token"]):
            assert full not in placeholder
        # the parts that authorise: signatures, refresh token, session claims
        for secret in (access_sig, id_sig, "rt_" + refresh):
            assert not windows(secret) & windows(placeholder)
        assert session not in decoded


class TestCodexErrors:
    SECRET = "SECRETSIGNATUREVALUE0123456789"

    @pytest.mark.parametrize("mutate, match", [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: "[]", "not a JSON object"),
        (lambda d: json.dumps({**d, "tokens": None}), "no ChatGPT sign-in"),
        (lambda d: json.dumps({**d, "tokens": {**d["tokens"], "access_token": 7}}),
         "tokens.access_token is missing"),
        (lambda d: json.dumps({**d, "tokens": {k: v for k, v in d["tokens"].items() if k != "id_token"}}),
         "tokens.id_token is missing"),
        (lambda d: json.dumps({**d, "tokens": {**d["tokens"], "access_token": "abc.SECRETSIGNATUREVALUE0123456789"}}),
         "tokens.access_token is not a readable JWT"),
        (lambda d: json.dumps({**d, "tokens": {**d["tokens"],
                                              "id_token": "eyJ.@@@@.SECRETSIGNATUREVALUE0123456789"}}),
         "tokens.id_token is not a readable JWT"),
        (lambda d: json.dumps({**d, "tokens": {**d["tokens"],
                                              "id_token": f"{b64({})}.{b64([1])}.SECRETSIGNATUREVALUE0123456789"}}),
         "tokens.id_token is not a readable JWT"),
    ])
    def test_clear_error_without_token_value(self, mutate, match):
        real = json.loads(codex_auth(access_sig=self.SECRET, id_sig=self.SECRET))
        with pytest.raises(CredentialError, match=match) as err:
            codex_placeholder(mutate(real))
        assert self.SECRET not in str(err.value)
        assert "~/.codex/auth.json" in str(err.value)
        assert isinstance(err.value, ValueError)

    def test_non_numeric_exp(self):
        with pytest.raises(CredentialError, match="exp claim is not a number"):
            codex_placeholder(codex_auth(access_exp="soon"))


class TestClaude:
    def test_shape(self):
        text, access = claude_placeholder(claude_creds())
        data = json.loads(text)
        oauth = data["claudeAiOauth"]
        assert set(data) == {"claudeAiOauth"}
        assert oauth["accessToken"] == "sk-ant-oat01-bottle-placeholder"
        assert oauth["refreshToken"] == "sk-ant-ort01-bottle-placeholder"
        assert oauth["expiresAt"] == 1_750_000_000_000
        assert oauth["scopes"] == ["user:inference", "user:profile"]
        assert access == "sk-ant-oat01-" + "A" * 60

    def test_default_scopes(self):
        oauth = json.loads(claude_placeholder(claude_creds(scopes=...))[0])["claudeAiOauth"]
        assert oauth["scopes"] == ["user:inference"]

    @given(expires=st.integers(min_value=0, max_value=2**53), access=B64URL, refresh=B64URL)
    def test_expires_copied_and_no_real_material(self, expires, access, refresh):
        text, got = claude_placeholder(
            claude_creds(expiresAt=expires, accessToken="sk-ant-oat01-" + access,
                         refreshToken="sk-ant-ort01-" + refresh))
        assert got == "sk-ant-oat01-" + access
        assert json.loads(text)["claudeAiOauth"]["expiresAt"] == expires
        assert not windows(access) & windows(text)
        assert not windows(refresh) & windows(text)

    @pytest.mark.parametrize("text, match", [
        ("nope", "not valid JSON"),
        ('{"other": {}}', "no Claude sign-in"),
        (claude_creds(accessToken=...), "accessToken is missing"),
        (claude_creds(expiresAt="tomorrow"), "expiresAt is missing or not an integer"),
        (claude_creds(expiresAt=...), "expiresAt is missing or not an integer"),
        (claude_creds(scopes="user:inference"), "scopes is not a list"),
    ])
    def test_errors(self, text, match):
        with pytest.raises(CredentialError, match=match) as err:
            claude_placeholder(text)
        assert "A" * 60 not in str(err.value)


class TestJWT:
    @given(exp=EXPS)
    def test_round_trip(self, exp):
        token = bjwt.encode_unsigned({"exp": exp})
        assert token.count(".") == 2
        assert jwt_exp(token) == exp

    def test_padded_payload_accepted(self):
        payload = base64.urlsafe_b64encode(b'{"exp": 5}').decode()
        assert "=" in payload
        assert jwt_exp(f"e30.{payload}.sig") == 5

    def test_no_exp(self):
        assert jwt_exp(bjwt.encode_unsigned({"sub": "x"})) is None

    @pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "e30.!!!.x", "e30.e30", "e30.WzFd.x"])
    def test_unreadable(self, token):
        with pytest.raises(CredentialError):
            decode_jwt_payload(token)

    def test_bool_exp_refused(self):
        with pytest.raises(CredentialError):
            jwt_exp(bjwt.encode_unsigned({"exp": True}))


# -- exact placeholder shape (CRED-SHAPE; codex-rs/login/src/auth/storage.rs
# AuthDotJson and codex-rs/login/src/token_data.rs TokenData) --------------------------


@pytest.mark.parametrize("auth_mode", [None, "chatgpt"])
def test_codex_placeholder_has_exactly_codexs_keys(auth_mode):
    from conformance.scenarios import fake_codex_auth

    host = json.loads(fake_codex_auth("shape"))
    if auth_mode is not None:
        host["auth_mode"] = auth_mode
    text, _ = codex_placeholder(json.dumps(host))
    data = json.loads(text)
    want = {"OPENAI_API_KEY", "tokens", "last_refresh"} | ({"auth_mode"} if auth_mode else set())
    assert set(data) == want
    assert data.get("auth_mode") == auth_mode  # kept, never added
    assert set(data["tokens"]) == {"id_token", "access_token", "refresh_token", "account_id"}
    assert data["tokens"]["account_id"] == host["tokens"]["account_id"] == "acct-shape"


def test_claude_placeholder_has_exactly_claudes_keys():
    from conformance.scenarios import fake_claude_credentials

    host = json.loads(fake_claude_credentials("shape"))
    host["claudeAiOauth"]["subscriptionType"] = "max"
    host["claudeAiOauth"]["rateLimitTier"] = "x"  # unknown to the placeholder: not copied
    data = json.loads(claude_placeholder(json.dumps(host))[0])
    assert set(data) == {"claudeAiOauth"}
    assert set(data["claudeAiOauth"]) == {"accessToken", "refreshToken", "expiresAt", "scopes",
                                          "subscriptionType"}
