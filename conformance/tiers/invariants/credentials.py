"""Invariant properties for CRED-EXP, CRED-SHAPE, CRED-CA."""

from __future__ import annotations

import json

from hypothesis import given

from ... import strategies as bst
from ...markers import clause
from ...recording import created_resource, env_assignments
from .facts import CA_BUNDLE, CA_ENV, CLAUDE_CREDENTIALS_GUEST, CODEX_AUTH_GUEST
from .support import _LAUNCH, _PLAN, _agent_index, _fit, _guest_file, _launched, _recorded
from .topology import _topology


# codex-rs/login/src/auth/storage.rs AuthDotJson (auth_mode: optional, only as
# the host has it) and codex-rs/login/src/token_data.rs TokenData.
CODEX_AUTH_KEYS = ("OPENAI_API_KEY", "tokens", "last_refresh")
CODEX_TOKEN_KEYS = ("id_token", "access_token", "refresh_token", "account_id")
# facts/real-tools.md (Claude Code run offline): the accepted placeholder.
CLAUDE_OAUTH_KEYS = ("accessToken", "refreshToken", "expiresAt", "scopes")


def _host_account_id(real: dict):
    """The host's ChatGPT account id: tokens.account_id, else the id
    token's chatgpt_account_id claim (None only when the host has neither)."""
    tokens = real.get("tokens") or {}
    if isinstance(tokens.get("account_id"), str):
        return tokens["account_id"]
    try:
        auth = bst.decode_jwt(tokens.get("id_token", ""))[1].get("https://api.openai.com/auth")
    except (ValueError, AttributeError):
        return None
    value = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
    return value if isinstance(value, str) else None


class CredentialInvariants:
    """CRED-EXP, CRED-SHAPE, CRED-CA."""

    # -- credentials ----------------------------------------------------------------------

    @clause("CRED-EXP")
    @_PLAN
    @given(case=bst.bottle_cases(agent="codex", forward_host_credentials=True, max_routes=2))
    def test_codex_placeholder_keeps_real_exp(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        real = json.loads(host.home_files[bst.CODEX_AUTH])["tokens"]
        real_access = bst.decode_jwt(real["access_token"])[1].get("exp")
        real_id = bst.decode_jwt(real["id_token"])[1].get("exp")
        want = {"access_token": real_access,
                "id_token": real_id if real_id is not None else real_access}
        placeholder = json.loads(_guest_file(plan, CODEX_AUTH_GUEST).content)
        for key, exp in want.items():
            token = placeholder["tokens"][key]
            try:
                claims = bst.decode_jwt(token)[1]
            except ValueError as exc:
                raise AssertionError(f"placeholder {key} is not a readable JWT: {exc}") from None
            got = claims.get("exp")
            assert got == exp and type(got) is type(exp), (
                f"placeholder {key} exp is {got!r}, the real token's is {exp!r}")

    @clause("CRED-SHAPE", needs="codex")
    @_PLAN
    @given(case=bst.bottle_cases(agent="codex", forward_host_credentials=True, max_routes=2))
    def test_codex_placeholder_shape(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        real_text = host.home_files[bst.CODEX_AUTH]
        real = json.loads(real_text)
        text = _guest_file(plan, CODEX_AUTH_GUEST).content
        data = json.loads(text)
        assert isinstance(data, dict), "the placeholder auth.json is not a JSON object"
        # Codex's AuthDotJson (codex-rs/login/src/auth/storage.rs): OPENAI_API_KEY,
        # tokens, last_refresh, auth_mode optional; the placeholder adds nothing.
        allowed = set(CODEX_AUTH_KEYS) | ({"auth_mode"} if "auth_mode" in real else set())
        unknown = sorted(set(data) - allowed)
        assert not unknown, (
            f"the placeholder auth.json has key(s) {unknown} beyond Codex's "
            f"{sorted(allowed)} (auth_mode only where the host's file has one)")
        if "auth_mode" in data:
            assert data["auth_mode"] == real["auth_mode"], (
                f"auth_mode {data['auth_mode']!r} differs from the host's {real['auth_mode']!r}")
        assert "OPENAI_API_KEY" in data and data["OPENAI_API_KEY"] is None, (
            f"OPENAI_API_KEY must be present and null, got {data.get('OPENAI_API_KEY', '<absent>')!r}")
        tokens = data.get("tokens")
        assert isinstance(tokens, dict), f"tokens is {type(tokens).__name__}, not an object"
        # TokenData (codex-rs/login/src/token_data.rs): exactly these four.
        assert set(tokens) == set(CODEX_TOKEN_KEYS), (
            f"tokens has keys {sorted(tokens)}, Codex's TokenData has exactly "
            f"{sorted(CODEX_TOKEN_KEYS)}")
        want_account = _host_account_id(real)
        assert tokens["account_id"] == want_account, (
            f"tokens.account_id is {tokens['account_id']!r}, the host's is {want_account!r} "
            "(Codex sends it as ChatGPT-Account-Id: never null when the host has one, never "
            "invented)")
        assert isinstance(tokens["refresh_token"], str), (
            f"refresh_token is {type(tokens['refresh_token']).__name__}, not a string")
        decoded = []
        for key in ("id_token", "access_token"):
            token = tokens[key]
            assert isinstance(token, str) and token.count(".") == 2, (
                f"{key} is not a 3-part JWT: {token!r:.80}")
            try:
                header, claims = bst.decode_jwt(token)
            except ValueError as exc:
                raise AssertionError(f"{key} does not parse as a JWT: {exc}") from None
            decoded.append(json.dumps([header, claims], ensure_ascii=False))
        assert "last_refresh" in data, "last_refresh is missing"
        assert data["last_refresh"] == real["last_refresh"], (
            f"last_refresh {data['last_refresh']!r} differs from the host's {real['last_refresh']!r}")
        everything = text + "\n".join(decoded)
        leaked = [s for s in bst.credential_material(real_text) if s in everything]
        assert not leaked, (f"the placeholder holds real token material "
                            f"({len(leaked)} piece(s), e.g. one starting {leaked[0][:8]!r})")

    @clause("CRED-SHAPE", needs="claude")
    @_PLAN
    @given(case=bst.bottle_cases(agent="claude", forward_host_credentials=True, max_routes=2))
    def test_claude_placeholder_shape(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        real_text = host.home_files[bst.CLAUDE_CREDENTIALS]
        real = json.loads(real_text)["claudeAiOauth"]
        text = _guest_file(plan, CLAUDE_CREDENTIALS_GUEST).content
        data = json.loads(text)
        assert isinstance(data, dict) and set(data) == {"claudeAiOauth"}, (
            f"the placeholder .credentials.json has top-level keys "
            f"{sorted(data) if isinstance(data, dict) else data!r}, expected only claudeAiOauth")
        oauth = data["claudeAiOauth"]
        assert isinstance(oauth, dict), "claudeAiOauth is missing or not an object"
        allowed = set(CLAUDE_OAUTH_KEYS) | (
            {"subscriptionType"} if isinstance(real.get("subscriptionType"), str) else set())
        extra = sorted(set(oauth) - allowed)
        assert not extra, (f"claudeAiOauth has key(s) {extra} beyond {sorted(allowed)} "
                           "(subscriptionType only where the host's file has one)")
        if "subscriptionType" in oauth:
            assert oauth["subscriptionType"] == real["subscriptionType"], (
                f"subscriptionType {oauth['subscriptionType']!r} differs from the host's "
                f"{real['subscriptionType']!r}")
        for key in ("accessToken", "refreshToken"):
            assert isinstance(oauth.get(key), str) and oauth[key], f"{key} is {oauth.get(key)!r}"
        exp = oauth.get("expiresAt")
        assert isinstance(exp, int) and not isinstance(exp, bool), f"expiresAt is {exp!r}, not an int"
        assert exp == real["expiresAt"], f"expiresAt {exp} differs from the host's {real['expiresAt']}"
        scopes = oauth.get("scopes")
        assert isinstance(scopes, list) and all(isinstance(s, str) for s in scopes), (
            f"scopes is {scopes!r}, not a list of strings")
        if isinstance(real.get("scopes"), list):
            assert scopes == real["scopes"], (
                f"scopes {scopes!r} differ from the host's {real['scopes']!r}")
        leaked = [s for s in bst.credential_material(real_text) if s in text]
        assert not leaked, f"the placeholder holds real token material ({len(leaked)} piece(s))"

    @clause("CRED-CA")
    @_LAUNCH
    @given(case=bst.bottle_cases(agent="codex", max_routes=2, max_upstreams=2))
    def test_codex_trusts_the_agent_ca_bundle(self, backend, case):
        case = _fit(backend, case)
        self._check_ca_env(backend, case, "codex")

    @clause("CRED-CA-CLAUDE")
    @_LAUNCH
    @given(case=bst.bottle_cases(agent="claude", max_routes=2, max_upstreams=2))
    def test_claude_trusts_the_agent_ca_bundle(self, backend, case):
        case = _fit(backend, case)
        self._check_ca_env(backend, case, "claude")

    @staticmethod
    def _check_ca_env(backend, case, agent: str) -> None:
        """The agent's environment (where the agent is created, then its exec)
        sets the agent's CA variable to the bundle update-ca-certificates writes."""
        var = CA_ENV[agent]
        with _recorded(backend, case) as rec:
            _launched(rec)
            containers, machine = _topology(rec)
            agent_names = {c.name for c in containers.values() if c.is_agent}
            if machine:
                agent_names.add(machine["name"])
            sources = [a for a in rec.runs("launch")
                       if (r := created_resource(a)) is not None and r.name in agent_names]
            for tty, argv in rec.agent_argvs.items():
                i = _agent_index(argv, agent)
                values = [v for k, v in env_assignments([*(t for a in sources for t in a),
                                                         *argv[:max(i, 0)]]) if k == var]
                assert values, (f"{var} is never set for the {agent} agent (agent creation "
                                f"and agent_argv(tty={tty}))")
                assert values[-1] == CA_BUNDLE, (
                    f"{var}={values[-1]!r}, expected the agent CA bundle {CA_BUNDLE}")
