"""egress routes and token slots (SECRET-ARGV groundwork, PLAN-HOP's egress->pipelock)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bottle_ref.egress import (
    RoutesError,
    header_value,
    load_routes,
    render_routes,
    resolve_tokens,
    token_slot,
)
from bottle_api.spec import Route

UPSTREAM = "http://pipelock:8888"


def routes(*hosts: str, env_prefix: str = "HOST_TOKEN_") -> tuple[Route, ...]:
    return tuple(Route(host=h, token_env=f"{env_prefix}{i}") for i, h in enumerate(hosts))


class TestSlots:
    def test_slot_name(self):
        assert token_slot(0) == "BOTTLE_EGRESS_TOKEN_0"
        assert token_slot(12) == "BOTTLE_EGRESS_TOKEN_12"

    @pytest.mark.parametrize("bad", [-1, True, "0", 1.0])
    def test_slot_index_must_be_natural(self, bad):
        with pytest.raises(ValueError):
            token_slot(bad)


class TestRender:
    def test_yaml_shape_uses_slots_not_host_env_names(self):
        rs = (Route("a.test", "MY_TOKEN"), Route("b.test", "OTHER", header="X-Api-Key", scheme=""))
        text = render_routes(rs, UPSTREAM)
        assert yaml.safe_load(text) == {
            "routes": [
                {"host": "a.test", "header": "Authorization", "scheme": "Bearer",
                 "token_env": "BOTTLE_EGRESS_TOKEN_0"},
                {"host": "b.test", "header": "X-Api-Key", "scheme": "",
                 "token_env": "BOTTLE_EGRESS_TOKEN_1"},
            ],
            "upstream_proxy": UPSTREAM,
        }
        assert "MY_TOKEN" not in text and "OTHER" not in text

    def test_no_routes(self):
        assert load_routes(render_routes((), UPSTREAM)) == ([], UPSTREAM)

    @given(st.lists(st.from_regex(r"\A[a-z]{1,8}\.(test|example)\Z"), max_size=5))
    def test_round_trip(self, hosts):
        loaded, upstream = load_routes(render_routes(routes(*hosts), UPSTREAM))
        assert upstream == UPSTREAM
        assert [r["host"] for r in loaded] == hosts
        assert [r["token_env"] for r in loaded] == [token_slot(i) for i in range(len(hosts))]

    def test_deterministic(self):
        assert render_routes(routes("a.test", "b.test"), UPSTREAM) == render_routes(
            routes("a.test", "b.test"), UPSTREAM)


class TestLoad:
    def test_defaults_for_header_and_scheme(self):
        loaded, _ = load_routes("routes:\n- {host: a.test, token_env: BOTTLE_EGRESS_TOKEN_0}\n"
                                "upstream_proxy: http://127.0.0.1:8888\n")
        assert loaded == [{"host": "a.test", "header": "Authorization", "scheme": "Bearer",
                           "token_env": "BOTTLE_EGRESS_TOKEN_0"}]

    @pytest.mark.parametrize("text, match", [
        ("routes: []\n", "upstream_proxy: required"),
        ("routes: []\nupstream_proxy: x\nextra: 1\n", "extra: unknown key"),
        ("routes: [{host: a, token_env: T, token: v}]\nupstream_proxy: x\n", r"routes\[0\]\.token: unknown key"),
        ("routes: [{token_env: T}]\nupstream_proxy: x\n", r"routes\[0\]\.host: required"),
        ("routes: {host: a}\nupstream_proxy: x\n", "routes: expected a list"),
        ("- a\n", "expected a mapping"),
        ("routes: [\n", "not valid YAML"),
    ])
    def test_bad_files(self, text, match):
        with pytest.raises(RoutesError, match=match):
            load_routes(text)


class TestResolve:
    def test_present_tokens_keyed_by_slot(self):
        secrets, missing = resolve_tokens(routes("a.test", "b.test"),
                                          {"HOST_TOKEN_0": "t0", "HOST_TOKEN_1": "t1"})
        assert secrets == {"BOTTLE_EGRESS_TOKEN_0": "t0", "BOTTLE_EGRESS_TOKEN_1": "t1"}
        assert missing == []

    def test_missing_env_gives_key_path_and_no_slot(self):
        secrets, missing = resolve_tokens(routes("a.test", "b.test", "c.test"),
                                          {"HOST_TOKEN_1": "t1", "HOST_TOKEN_2": ""})
        assert secrets == {"BOTTLE_EGRESS_TOKEN_1": "t1"}
        assert missing == ["egress.routes[0].token_env", "egress.routes[2].token_env"]

    def test_env_is_only_read_not_kept(self):
        env = {"HOST_TOKEN_0": "t0", "UNRELATED": "x"}
        secrets, _ = resolve_tokens(routes("a.test"), env)
        assert "x" not in secrets.values()


def test_header_value():
    assert header_value("Bearer", "tok") == "Bearer tok"
    assert header_value("", "tok") == "tok"
