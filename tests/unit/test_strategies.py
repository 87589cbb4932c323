"""conformance.strategies: every generated input is one a user could write,
secrets are recognisable, and the odd corners are actually reached."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from bottle_ref.credentials import claude_placeholder, codex_placeholder
from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH
from bottle_api.spec import parse_spec
from conformance import strategies as bst
from conformance.strategies.specs import _packed

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
# Generation only: the first hit proves the corner is reachable; shrinking it
# to a minimal example would cost seconds and prove nothing more.
FIND = settings(max_examples=1000, deadline=None, database=None, phases=[Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _strings(spec) -> list[str]:
    """Every string of a spec that could end up on an argv or in a file."""
    out = [spec.name, spec.agent, spec.image or "", spec.prompt, *spec.allow,
           *spec.tls_passthrough, spec.git_user.name or "", spec.git_user.email or ""]
    out += [str(p) for p in spec.skills] + ([str(spec.cwd)] if spec.cwd else [])
    for r in spec.routes:
        out += [r.host, r.token_env, r.header, r.scheme]
    for u in spec.upstreams:
        out += [u.name, u.url, u.identity or ""]
    return out


# -- generated specs are valid specs ------------------------------------------------


@FAST
@given(bst.specs(skills=False, cwd=False))
def test_specs_round_trip_through_the_loader(spec):
    text = bst.spec_yaml(spec)
    parsed = parse_spec(text.text, source="gen.yaml")
    assert parsed == bst.as_loaded(spec)
    # spec_yaml's line map is an independent oracle: it must agree with the loader.
    for key, line in text.lines.items():
        if key in parsed.lines:
            assert parsed.lines[key] == line, key
    for i in range(len(spec.routes)):
        assert text.lines[f"egress.routes[{i}].token_env"] == parsed.lines[f"egress.routes[{i}].token_env"]


@settings(max_examples=25, deadline=None, database=None)
@given(bst.bottle_cases())
def test_materialised_cases_load_with_real_dirs(case):
    with tempfile.TemporaryDirectory() as tmp:
        spec, host = bst.materialise(*case, Path(tmp))
        assert all(p.is_dir() for p in spec.skills)
        assert spec.cwd is None or (spec.cwd / ".git").is_dir()
        assert str(host.state_root).startswith(tmp)
        parsed = parse_spec(bst.spec_yaml(spec).text, source="gen.yaml")
        assert parsed == bst.as_loaded(spec)
        assert [p.name for p in spec.skills] == [p.name for p in case[0].skills]


@FAST
@given(bst.specs())
def test_spec_shape_rules(spec):
    assert len(spec.routes) <= 8 and len(spec.upstreams) <= 6
    hosts = [r.host.lower() for r in spec.routes]
    assert len(hosts) == len(set(hosts)), "two routes for one host"
    names = [u.name for u in spec.upstreams]
    assert len(names) == len(set(names)), "two upstreams with one name"
    assert all(p.is_relative_to(bst.FAKE_SKILLS_ROOT) for p in spec.skills)
    assert not bst.FAKE_ROOT.exists()


@pytest.mark.parametrize("kwargs, check", [
    ({"routed": True}, lambda s: s.routes or s.forward_host_credentials),
    ({"routed": False}, lambda s: not s.routes and not s.forward_host_credentials),
    ({"routed": True, "forward_host_credentials": False}, lambda s: s.routes and not s.forward_host_credentials),
    ({"routed": True, "with_routes": False}, lambda s: s.forward_host_credentials and not s.routes),
    ({"agent": "codex"}, lambda s: s.agent == "codex"),
    ({"with_upstreams": True, "max_upstreams": 2}, lambda s: 1 <= len(s.upstreams) <= 2),
    ({"with_upstreams": False}, lambda s: not s.upstreams),
    ({"supervise": True}, lambda s: s.supervise),
    ({"skills": False, "cwd": False}, lambda s: not s.skills and s.cwd is None),
    ({"max_routes": 1}, lambda s: len(s.routes) <= 1),
])
def test_spec_options_are_honoured(kwargs, check):
    @FAST
    @given(bst.specs(**kwargs))
    def run(spec):
        assert check(spec), spec

    run()


@pytest.mark.parametrize("kwargs", [
    {"routed": False, "forward_host_credentials": True},
    {"routed": False, "with_routes": True},
    {"routed": True, "forward_host_credentials": False, "with_routes": False},
    {"agent": "gemini"},
    {"max_routes": 0},
])
def test_contradictory_spec_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        bst.specs(**kwargs)


# -- secrets ----------------------------------------------------------------------------


@FAST
@given(bst.bottle_cases(credentials=None))
def test_secrets_are_marked_and_nothing_else_is(case):
    spec, host = case
    secrets = bst.secret_values(spec, host)
    # Route tokens and plain credential strings carry the mark; JWTs (base64url
    # has no "~") carry a "realSig" signature instead.
    assert all(len(s) >= 16 and (bst.SECRET_MARK in s or "realSig" in s) for s in secrets)
    for s in _strings(spec):
        assert bst.SECRET_MARK not in s, f"non-secret spec string {s!r} holds the secret mark"
    for key, value in host.env.items():
        is_token = any(r.token_env == key for r in spec.routes)
        assert (bst.SECRET_MARK in value) == is_token, (key, value)
        assert bst.SECRET_MARK not in key


@FAST
@given(bst.bottle_cases())
def test_host_holds_every_token_and_credential(case):
    spec, host = case
    for r in spec.routes:
        assert len(host.env[r.token_env]) >= 17
    want = {CODEX_AUTH if spec.agent == "codex" else CLAUDE_CREDENTIALS} \
        if spec.forward_host_credentials else set()
    assert set(host.home_files) == want
    assert host.state_root == bst.FAKE_STATE_ROOT and not host.state_root.exists()
    for rel, text in host.home_files.items():
        material = bst.credential_material(text)
        assert material and material <= bst.secret_values(spec, host)


@FAST
@given(bst.bottle_cases(with_routes=True, missing_tokens=True))
def test_missing_tokens_leaves_a_route_unset(case):
    spec, host = case
    assert any(not host.env.get(r.token_env) for r in spec.routes)


@FAST
@given(bst.bottle_cases(forward_host_credentials=True, credentials=False))
def test_credentials_false_leaves_the_file_out(case):
    assert case[1].home_files == {}


# -- credentials --------------------------------------------------------------------------


@FAST
@given(bst.codex_auth_json())
def test_codex_auth_is_what_the_host_file_looks_like(text):
    data = json.loads(text)
    assert data["OPENAI_API_KEY"] is None and "last_refresh" in data
    tokens = data["tokens"]
    for key in ("id_token", "access_token"):
        header, claims = bst.decode_jwt(tokens[key])
        assert header["alg"] == "RS256" and bst.SECRET_CLAIM in claims
    assert "exp" in bst.decode_jwt(tokens["access_token"])[1]
    placeholder, token = codex_placeholder(text)  # the reference reader accepts it
    assert token == tokens["access_token"]


@pytest.mark.parametrize("exp", [-2**31, -1, 0, 1, 2**31 - 1, 2**31, 2**53, 2**63 - 1])
def test_codex_auth_carries_the_exp_asked_for(exp):
    @FAST
    @given(bst.codex_auth_json(exp=st.just(exp), id_exp=st.none()))
    def run(text):
        tokens = json.loads(text)["tokens"]
        assert bst.decode_jwt(tokens["access_token"])[1]["exp"] == exp
        assert "exp" not in bst.decode_jwt(tokens["id_token"])[1]

    run()


@FAST
@given(bst.claude_credentials_json())
def test_claude_credentials_are_what_the_host_file_looks_like(text):
    oauth = json.loads(text)["claudeAiOauth"]
    assert isinstance(oauth["expiresAt"], int)
    placeholder, token = claude_placeholder(text)
    assert token == oauth["accessToken"]
    assert bst.credential_material(text) == {oauth["accessToken"], oauth["refreshToken"]}


@FAST
@given(bst.jwt_tokens(exp=st.none()))
def test_jwt_without_exp(token):
    assert "exp" not in bst.decode_jwt(token)[1]


@pytest.mark.parametrize("token", ["a.b", "a.b.c.d", "!!.e30.x", "e30.W10.x", ""])
def test_decode_jwt_refuses_what_is_not_a_jwt(token):
    with pytest.raises(ValueError):
        bst.decode_jwt(token)


# -- the odd corners are reachable ------------------------------------------------------


@pytest.mark.parametrize("what, strategy, condition", [
    ("8 routes", bst.specs(), lambda s: len(s.routes) == 8),
    ("6 upstreams", bst.specs(), lambda s: len(s.upstreams) == 6),
    ("a 40-character name", bst.specs(), lambda s: len(s.name) == 40),
    ("a wildcard route host", bst.specs(), lambda s: any(r.host.startswith("*.") for r in s.routes)),
    ("a declared route for an agent API host", bst.specs(forward_host_credentials=True),
     lambda s: any(r.host in ("api.anthropic.com", "chatgpt.com", "api.openai.com") for r in s.routes)),
    ("an empty scheme", bst.specs(), lambda s: any(r.scheme == "" for r in s.routes)),
    ("a 63-character label", bst.hostnames(), lambda h: any(len(x) == 63 for x in h.split("."))),
    ("a composed hostname", bst.hostnames(), lambda h: h not in bst._HOST_POOL),
    ("an empty prompt", bst.prompts(), lambda p: p == ""),
    ("a multi-line non-ASCII prompt", bst.prompts(), lambda p: "\n" in p and not p.isascii()),
    ("a git user with a quote", bst.git_users(), lambda g: '"' in (g.name or "") + (g.email or "")),
    ("an empty git user", bst.git_users(), lambda g: g.is_empty()),
    ("an email-only git user", bst.git_users(), lambda g: g.email and not g.name),
    ("an odd upstream URL", bst.upstream_urls(), lambda u: " " in u or not u.isascii()),
    ("a huge exp", bst.exps(), lambda e: e > 2**40),
    ("a negative exp", bst.exps(), lambda e: e < 0),
    ("an exp within an hour of now", bst.exps(), lambda e: abs(e - bst._NOW) < 3600),
    ("a codex id token without exp", bst.codex_auth_json(),
     lambda t: "exp" not in bst.decode_jwt(json.loads(t)["tokens"]["id_token"])[1]),
    ("claude credentials without scopes", bst.claude_credentials_json(),
     lambda t: "scopes" not in json.loads(t)["claudeAiOauth"]),
])
def test_odd_corner_is_reached(what, strategy, condition):
    find(strategy, condition, settings=FIND)


# -- every field of a packed shape moves -----------------------------------------------


def _drawn(n: int) -> settings:
    """``n`` examples, derandomised (a fixed count to judge shares on)."""
    return settings(max_examples=n, derandomize=True, deadline=None, database=None,
                    phases=[Phase.generate], suppress_health_check=[HealthCheck.too_slow])


def test_every_pool_of_a_packed_draw_is_drawn_near_its_share():
    """`_packed` once decoded one wide integer, which hypothesis draws mostly
    near its minimum: the last pools then almost never left their first
    entry. Twelve pools of seven (a range of 7**12): every entry of every
    pool must turn up at least a third of its even share."""
    pools = (tuple(range(7)),) * 12
    counts = [[0] * 7 for _ in pools]
    seen = []

    @_drawn(400)
    @given(_packed(*pools))
    def run(values):
        seen.append(values)
        for field, v in enumerate(values):
            counts[field][v] += 1

    run()
    floor = len(seen) / 7 / 3
    starved = {f: c for f, c in enumerate(counts) if min(c) < floor}
    assert not starved, f"pool entries drawn under {floor:.0f} times of {len(seen)}: {starved}"


def test_spec_list_sizes_follow_their_pools():
    """A spec's shape is one `_packed` draw with the allow and
    tls_passthrough sizes last; each size pool is 0, 1, 0, 1, 2, max, 2, so
    a list is empty 2 times in 7 and 12/7 (allow) or 9/7 long on average.
    Starved, they were empty 74-89% of the time, 0.2-0.6 long."""
    sizes: dict[str, list[int]] = {"allow": [], "tls_passthrough": []}

    @_drawn(150)
    @given(bst.specs())
    def run(spec):
        sizes["allow"].append(len(spec.allow))
        sizes["tls_passthrough"].append(len(spec.tls_passthrough))

    run()
    for name, got in sizes.items():
        empty, mean = got.count(0) / len(got), sum(got) / len(got)
        assert empty < 0.6 and mean > 0.7, (name, f"empty {empty:.0%}, mean length {mean:.2f}")
