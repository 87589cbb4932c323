"""build_plan: the neutral rules (PLAN-PURE, PLAN-HOP, PLAN-DAEMONS, PIPELOCK-PASS, CRED-CA)."""

from __future__ import annotations

import base64
import builtins
import dataclasses
import json
import os
import socket
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bottle_ref import pipelock
from bottle_ref.credentials import decode_jwt_payload, jwt_exp
from bottle_ref.egress import load_routes
from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH, HostContext
from bottle_api.plan import Plan, to_json
from bottle_ref.planning import build_plan
from bottle_api.spec import BottleSpec, GitUser, Route, SpecError, Upstream
from bottle_ref.supervise import mcp_add_argv

PIPELOCK_URL = "http://pipelock:8888"
REAL_ACCESS_SIG = "REALACCESSSIGNATURE" * 3
CLAUDE_REAL = "sk-ant-oat01-REALCLAUDETOKEN" + "x" * 40


# -- factories ------------------------------------------------------------------

def spec(**kw) -> BottleSpec:
    kw.setdefault("name", "demo")
    return BottleSpec(**kw)


def host(**kw) -> HostContext:
    kw.setdefault("state_root", Path("/state"))
    return HostContext(**kw)


def plan(s: BottleSpec | None = None, h: HostContext | None = None, **kw) -> Plan:
    kw.setdefault("backend", "docker")
    kw.setdefault("pipelock_url", PIPELOCK_URL)
    kw.setdefault("pipelock_listen", "0.0.0.0:8888")
    return build_plan(s or spec(), h or host(), **kw)


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def codex_auth_json(exp: int = 1_900_000_000) -> str:
    header = _b64({"alg": "RS256", "typ": "JWT"})
    access = f"{header}.{_b64({'exp': exp})}.{REAL_ACCESS_SIG}"
    id_token = f"{header}.{_b64({'exp': exp - 100, 'email': 'dev@example.test'})}.REALIDSIG{'y' * 40}"
    return json.dumps({"OPENAI_API_KEY": None,
                       "tokens": {"access_token": access, "id_token": id_token,
                                  "refresh_token": "REALREFRESH" + "z" * 30, "account_id": "acct"},
                       "last_refresh": "2025-01-01T00:00:00Z"})


def claude_json() -> str:
    return json.dumps({"claudeAiOauth": {"accessToken": CLAUDE_REAL, "refreshToken": "sk-ant-ort01-REALREFRESH",
                                         "expiresAt": 1_900_000_000_000, "scopes": ["user:inference"]}})


def real_access(exp: int = 1_900_000_000) -> str:
    return json.loads(codex_auth_json(exp))["tokens"]["access_token"]


def pipelock_data(p: Plan) -> dict:
    return pipelock.load_config(p.pipelock.config_yaml)


SPECS = st.builds(
    BottleSpec,
    name=st.from_regex(r"\A[a-z][a-z0-9-]{0,12}\Z"),
    agent=st.sampled_from(["claude", "codex"]),
    image=st.one_of(st.none(), st.just("custom:1")),
    prompt=st.text(max_size=20),
    upstreams=st.lists(st.sampled_from([Upstream("a", "https://example.test/a.git"),
                                        Upstream("b", "https://example.test/b.git")]),
                       unique=True, max_size=2).map(tuple),
    routes=st.lists(st.builds(Route, host=st.sampled_from(["a.test", "b.test", "api.anthropic.com"]),
                              token_env=st.sampled_from(["TOK_A", "TOK_B", "TOK_UNSET"])),
                    max_size=3).map(tuple),
    allow=st.lists(st.sampled_from(["pypi.org", "*.npmjs.org"]), max_size=2).map(tuple),
    tls_passthrough=st.lists(st.sampled_from(["x.test", "*.y.test"]), max_size=2).map(tuple),
    forward_host_credentials=st.booleans(),
    supervise=st.booleans(),
)
HOSTS = st.builds(
    HostContext,
    env=st.fixed_dictionaries({}, optional={"TOK_A": st.just("secret-a-value"),
                                            "TOK_B": st.just("secret-b-value"),
                                            "CLAUDE_BOTTLE_IMAGE": st.just("env-image:2")}),
    home_files=st.fixed_dictionaries({}, optional={CODEX_AUTH: st.just(codex_auth_json()),
                                                   CLAUDE_CREDENTIALS: st.just(claude_json())}),
    state_root=st.just(Path("/state")),
)


# -- PLAN-DAEMONS / PLAN-HOP ----------------------------------------------------

class TestDaemonsAndHop:
    @pytest.mark.parametrize("upstreams, supervise, expect", [
        ((), False, ("egress", "pipelock")),
        ((Upstream("a", "https://example.test/a.git"),), False, ("egress", "pipelock", "git-gate")),
        ((), True, ("egress", "pipelock", "supervise")),
        ((Upstream("a", "https://example.test/a.git"),), True, ("egress", "pipelock", "git-gate", "supervise")),
    ])
    def test_daemons_rule(self, upstreams, supervise, expect):
        p = plan(spec(upstreams=upstreams, supervise=supervise))
        assert p.daemons == expect
        assert (p.git_gate is not None) == bool(upstreams)
        assert (p.supervise is not None) == supervise
        if upstreams:
            assert p.git_gate.upstreams == upstreams

    def test_no_routes_first_hop_pipelock(self):
        p = plan()
        assert p.first_hop == "pipelock" and not p.routed
        assert p.egress.routes == () and p.egress.token_slots == ()

    def test_declared_route_first_hop_egress(self):
        p = plan(spec(routes=(Route("api.example.test", "TOK"),)), host(env={"TOK": "v"}))
        assert p.first_hop == "egress" and p.routed

    @pytest.mark.parametrize("agent", ["claude", "codex"])
    def test_forwarded_credentials_alone_route_through_egress(self, agent):
        p = plan(spec(agent=agent, forward_host_credentials=True))
        assert p.first_hop == "egress"

    @pytest.mark.parametrize("url", ["http://pipelock:8888", "http://127.0.0.1:8888"])
    def test_egress_upstream_is_pipelock(self, url):
        p = plan(spec(routes=(Route("a.test", "T"),)), pipelock_url=url)
        assert p.egress.upstream_proxy == url
        assert load_routes(p.egress.routes_yaml)[1] == url

    @settings(max_examples=60, deadline=None)
    @given(s=SPECS, h=HOSTS)
    def test_rules_hold_for_any_spec(self, s, h):
        p = plan(s, h)
        routed = bool(s.routes) or s.forward_host_credentials
        assert p.first_hop == ("egress" if routed else "pipelock")
        assert p.daemons[:2] == ("egress", "pipelock")
        assert ("git-gate" in p.daemons) == bool(s.upstreams)
        assert ("supervise" in p.daemons) == s.supervise
        assert p.egress.upstream_proxy == PIPELOCK_URL
        assert pipelock_data(p)["forward_proxy"]["enabled"] is True
        assert len(p.egress.token_slots) == len(p.egress.routes)
        assert set(p.secrets) <= set(p.egress.token_slots)


# -- PLAN-PURE ------------------------------------------------------------------

class TestPurity:
    @settings(max_examples=40, deadline=None)
    @given(s=SPECS, h=HOSTS)
    def test_same_inputs_equal_plans(self, s, h):
        a, b = plan(s, h), plan(s, h)
        assert a == b
        assert to_json(a) == to_json(b)

    def test_touches_nothing_but_its_arguments(self, monkeypatch):
        def forbidden(*a, **k):
            raise AssertionError("build_plan reached outside its arguments")

        monkeypatch.setenv("CLAUDE_BOTTLE_IMAGE", "from-process-env:1")
        monkeypatch.setenv("BOTTLE_BUNDLE_IMAGE", "from-process-env:1")
        monkeypatch.setenv("TOK", "process-secret")
        s = spec(agent="codex", forward_host_credentials=True, routes=(Route("a.test", "TOK"),),
                 skills=(Path("/skills/review"),), upstreams=(Upstream("a", "https://example.test/a.git"),))
        h = host(home_files={CODEX_AUTH: codex_auth_json()})
        for target, name in [(builtins, "open"), (os, "stat"), (os, "listdir"), (os, "scandir"),
                             (time, "time"), (time, "monotonic"), (socket, "socket"),
                             (socket, "getaddrinfo"), (Path, "read_text"), (Path, "exists"),
                             (Path, "resolve")]:
            monkeypatch.setattr(target, name, forbidden)
        p = plan(s, h)
        assert p.agent_image_ref == "claude-bottle:latest"
        assert p.bundle_image_ref == "bottle-bundle:latest"
        assert p.missing_tokens == ("egress.routes[0].token_env",)


# -- images, state, pass-through fields ------------------------------------------

class TestResolution:
    def test_image_refs(self):
        assert plan().agent_image_ref == "claude-bottle:latest"
        assert plan().bundle_image_ref == "bottle-bundle:latest"
        env = {"CLAUDE_BOTTLE_IMAGE": "env-agent:1", "BOTTLE_BUNDLE_IMAGE": "env-bundle:1"}
        p = plan(spec(), host(env=env))
        assert (p.agent_image_ref, p.bundle_image_ref) == ("env-agent:1", "env-bundle:1")
        assert plan(spec(image="mine:3"), host(env=env)).agent_image_ref == "mine:3"

    def test_state_dir(self):
        assert plan(spec(name="alpha"), host(state_root=Path("/var/st"))).state_dir == "/var/st/alpha"

    def test_fields_from_spec(self):
        s = spec(prompt="be brief", skills=(Path("/h/skills/review"), Path("/h/other/lint/")),
                 cwd=Path("/h/proj"), git_user=GitUser(name="Dev", email="dev@example.test"),
                 source="/h/bottle.yaml", lines={"egress.routes[0].token_env": 7})
        p = plan(s, backend="smolmachines")
        assert p.backend == "smolmachines" and p.bottle == "demo" and p.agent == "claude"
        assert p.prompt == "be brief"
        assert p.skills == (("/h/skills/review", "review"), ("/h/other/lint", "lint"))
        assert p.cwd == "/h/proj"
        assert p.git_user == GitUser(name="Dev", email="dev@example.test")
        assert p.spec_source == "/h/bottle.yaml"
        assert p.spec_lines == {"egress.routes[0].token_env": 7}
        assert plan().cwd is None

    def test_plan_cls_and_extra(self):
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class MyPlan(Plan):
            publish_host: str

        p = plan(plan_cls=MyPlan, publish_host="127.77.1.2")
        assert isinstance(p, MyPlan) and p.publish_host == "127.77.1.2"

    def test_mcp_add_argv(self):
        assert mcp_add_argv("http://supervise:9100/mcp") == [
            "claude", "mcp", "add", "--scope", "user", "--transport", "http", "supervise",
            "http://supervise:9100/mcp"]
        assert mcp_add_argv("u", name="other")[-2:] == ["other", "u"]


# -- tokens ---------------------------------------------------------------------

class TestTokens:
    def test_declared_tokens_to_slots(self):
        s = spec(routes=(Route("a.test", "TOK_A"), Route("b.test", "TOK_B")))
        p = plan(s, host(env={"TOK_A": "va", "TOK_B": "vb"}))
        assert p.secrets == {"BOTTLE_EGRESS_TOKEN_0": "va", "BOTTLE_EGRESS_TOKEN_1": "vb"}
        assert p.egress.token_slots == ("BOTTLE_EGRESS_TOKEN_0", "BOTTLE_EGRESS_TOKEN_1")
        assert p.missing_tokens == ()

    def test_missing_env_reported_by_key_path(self):
        s = spec(routes=(Route("a.test", "TOK_A"), Route("b.test", "TOK_B")))
        p = plan(s, host(env={"TOK_B": "vb"}))
        assert p.missing_tokens == ("egress.routes[0].token_env",)
        assert p.secrets == {"BOTTLE_EGRESS_TOKEN_1": "vb"}

    def test_secrets_never_serialised(self):
        p = plan(spec(routes=(Route("a.test", "TOK"),)), host(env={"TOK": "super-secret-value"}))
        assert "super-secret-value" not in to_json(p)
        assert "super-secret-value" not in repr(p)

    @settings(max_examples=60, deadline=None)
    @given(s=SPECS, h=HOSTS)
    def test_guest_env_and_files_hold_no_secret(self, s, h):
        p = plan(s, h)
        secret_values = set(p.secrets.values())
        guest = list(p.guest_env.values()) + list(p.guest_env) + [f.content for f in p.guest_files]
        for value in secret_values:
            assert not any(value in g for g in guest)
        for text in (p.pipelock.config_yaml, p.egress.routes_yaml):
            assert not any(v in text for v in secret_values)


# -- forward_host_credentials / PIPELOCK-PASS / CRED-CA ---------------------------

class TestForwardedCredentials:
    def test_codex(self):
        p = plan(spec(agent="codex", forward_host_credentials=True),
                 host(home_files={CODEX_AUTH: codex_auth_json(exp=1_234_567)}))
        assert [r.host for r in p.egress.routes] == ["chatgpt.com", "api.openai.com"]
        assert p.secrets == {"BOTTLE_EGRESS_TOKEN_0": real_access(1_234_567),
                             "BOTTLE_EGRESS_TOKEN_1": real_access(1_234_567)}
        assert p.missing_tokens == ()
        (f,) = p.guest_files
        assert (f.path, f.mode, f.owner) == ("/home/node/.codex/auth.json", 0o600, "node")
        placeholder = json.loads(f.content)
        assert jwt_exp(placeholder["tokens"]["access_token"]) == 1_234_567
        assert REAL_ACCESS_SIG not in f.content

    def test_codex_pipelock_lists(self):
        p = plan(spec(agent="codex", forward_host_credentials=True, allow=("pypi.org",),
                      tls_passthrough=("x.test",)),
                 host(home_files={CODEX_AUTH: codex_auth_json()}))
        data = pipelock_data(p)
        assert data["api_allowlist"] == ["chatgpt.com", "api.openai.com", "pypi.org", "*.chatgpt.com"]
        assert data["tls_interception"]["passthrough_domains"] == [
            "chatgpt.com", "api.openai.com", "*.chatgpt.com", "x.test"]

    def test_passthrough_contains_every_route_host_and_apex(self):
        s = spec(agent="codex", forward_host_credentials=True, routes=(Route("api.example.test", "T"),))
        data = pipelock_data(plan(s, host(env={"T": "v"}, home_files={CODEX_AUTH: codex_auth_json()})))
        passthrough = data["tls_interception"]["passthrough_domains"]
        for h in ("api.example.test", "chatgpt.com", "api.openai.com", "*.chatgpt.com"):
            assert h in passthrough and h in data["api_allowlist"]

    def test_claude(self):
        p = plan(spec(forward_host_credentials=True), host(home_files={CLAUDE_CREDENTIALS: claude_json()}))
        assert [r.host for r in p.egress.routes] == ["api.anthropic.com"]
        assert p.secrets == {"BOTTLE_EGRESS_TOKEN_0": CLAUDE_REAL}
        (f,) = p.guest_files
        assert f.path == "/home/node/.claude/.credentials.json" and f.mode == 0o600
        assert CLAUDE_REAL not in f.content
        data = pipelock_data(p)
        assert data["tls_interception"]["passthrough_domains"] == ["api.anthropic.com"]
        assert "*.chatgpt.com" not in data["api_allowlist"]

    def test_auto_routes_follow_declared_slots(self):
        s = spec(agent="codex", forward_host_credentials=True, routes=(Route("a.test", "TOK"),))
        p = plan(s, host(env={"TOK": "declared"}, home_files={CODEX_AUTH: codex_auth_json()}))
        routes, _ = load_routes(p.egress.routes_yaml)
        assert [(r["host"], r["token_env"]) for r in routes] == [
            ("a.test", "BOTTLE_EGRESS_TOKEN_0"), ("chatgpt.com", "BOTTLE_EGRESS_TOKEN_1"),
            ("api.openai.com", "BOTTLE_EGRESS_TOKEN_2")]
        assert p.secrets["BOTTLE_EGRESS_TOKEN_0"] == "declared"
        assert p.secrets["BOTTLE_EGRESS_TOKEN_2"] == real_access()

    def test_declared_route_for_an_api_host_wins(self):
        s = spec(forward_host_credentials=True, routes=(Route("api.anthropic.com", "MINE"),))
        p = plan(s, host(env={"MINE": "own-key"}, home_files={CLAUDE_CREDENTIALS: claude_json()}))
        assert [r.host for r in p.egress.routes] == ["api.anthropic.com"]
        assert p.secrets == {"BOTTLE_EGRESS_TOKEN_0": "own-key"}

    @pytest.mark.parametrize("agent, present", [("codex", CLAUDE_CREDENTIALS), ("claude", CODEX_AUTH)])
    def test_missing_file_is_a_missing_token(self, agent, present):
        other = codex_auth_json() if present == CODEX_AUTH else claude_json()
        p = plan(spec(agent=agent, forward_host_credentials=True), host(home_files={present: other}))
        assert p.missing_tokens == ("forward_host_credentials",)
        assert p.guest_files == ()
        assert p.secrets == {}
        # lists still name the agent's hosts, so PIPELOCK-PASS holds for this plan too
        data = pipelock_data(p)
        expect = ["chatgpt.com", "api.openai.com", "*.chatgpt.com"] if agent == "codex" else ["api.anthropic.com"]
        assert data["tls_interception"]["passthrough_domains"] == expect

    def test_bad_file_is_a_spec_error_without_token(self):
        broken = json.loads(codex_auth_json())
        broken["tokens"]["access_token"] = "notajwt" + REAL_ACCESS_SIG
        s = spec(agent="codex", forward_host_credentials=True, source="/h/bottle.yaml",
                 lines={"forward_host_credentials": 4})
        with pytest.raises(SpecError) as err:
            plan(s, host(home_files={CODEX_AUTH: json.dumps(broken)}))
        assert err.value.key == "forward_host_credentials" and err.value.line == 4
        assert "/h/bottle.yaml:4" in str(err.value) and "auth.json" in str(err.value)
        assert REAL_ACCESS_SIG not in str(err.value)

    def test_off_means_no_files_no_routes(self):
        p = plan(spec(agent="codex"), host(home_files={CODEX_AUTH: codex_auth_json()}))
        assert p.guest_files == () and p.egress.routes == () and p.secrets == {}
        data = pipelock_data(p)
        assert "chatgpt.com" not in data["tls_interception"]["passthrough_domains"]
        # the agent's own API hosts are always allowed (strict mode needs a list)
        assert data["api_allowlist"] == ["chatgpt.com", "api.openai.com"]

    @pytest.mark.parametrize("agent, var", [("codex", "CODEX_CA_CERTIFICATE"), ("claude", "NODE_EXTRA_CA_CERTS")])
    def test_ca_env(self, agent, var):
        assert plan(spec(agent=agent)).guest_env == {var: "/etc/ssl/certs/ca-certificates.crt"}

    def test_placeholder_id_token_keeps_identity(self):
        p = plan(spec(agent="codex", forward_host_credentials=True),
                 host(home_files={CODEX_AUTH: codex_auth_json(exp=2_000_000_000)}))
        tokens = json.loads(p.guest_files[0].content)["tokens"]
        assert decode_jwt_payload(tokens["id_token"]) == {"exp": 2_000_000_000 - 100,
                                                         "email": "dev@example.test"}


def test_pipelock_listen_and_yaml_is_pipelock_yaml():
    p = plan(pipelock_listen="127.0.0.1:8888")
    assert yaml.safe_load(p.pipelock.config_yaml)["fetch_proxy"]["listen"] == "127.0.0.1:8888"
    assert pipelock.validate_config(yaml.safe_load(p.pipelock.config_yaml)) == []
