"""Hypothesis strategies for bottle specs and host states, shipped for reuse.

The invariant tier draws its inputs from here, and a backend author can use
the same strategies in their own property tests::

    from hypothesis import given
    from conformance import strategies as bst

    @given(bst.bottle_cases(agent="codex", forward_host_credentials=True))
    def test_my_plan(case):
        spec, host = case
        plan = MyBackend().prepare(spec, host)
        assert not any(s in repr(plan) for s in bst.secret_values(spec, host))

Design choices, and why:

- Every generated spec is one the YAML loader accepts (`spec_yaml` renders
  it; ``tests/unit/test_strategies.py`` parses it back), so a property never
  fails on input a user could not write.
- Odd but valid input on purpose: 1- and 40-character names, wildcard and
  63-character host labels, up to 8 routes and 6 upstreams, empty schemes,
  unicode, quotes and newlines in prompts and git identities.
- Secrets are recognisable. Every route token and credential string
  contains ``~`` and a random body of at least 16 characters (JWTs, whose
  base64url has no ``~``, carry a random ``realSig...`` signature); no other
  generated string contains ``~``, so a secret found on an argv or in a repr
  is a leak, never a coincidence. `secret_values` lists them all.
- Host contexts are fake and fixed (`FAKE_ROOT`, under /dev/null so nothing
  can be created there): `prepare` is pure and must never look at them on
  disk. A test that *launches* (recording runner) moves the case under a
  real temporary directory with `materialise`, which also creates the skill
  and cwd directories provisioning checks for.
- Cheap to draw. Hypothesis pays per choice, so strings mostly come from
  curated pools of odd values (one choice each, mixed with composed ones),
  and a spec's shape (agent, flags, image, list sizes) is one packed choice
  that still shrinks towards the simplest spec.

The API (every name returns a strategy unless noted):

    names() hostnames(wildcard=True) env_names() tokens() routes()
    upstream_urls() upstreams() git_users() prompts() skill_paths() images()
    specs(agent=None, routed=None, *, forward_host_credentials=None,
          with_routes=None, with_upstreams=None, supervise=None, skills=True,
          cwd=True, max_routes=8, max_upstreams=6)
    exps() jwt_tokens(exp=None) codex_auth_json(exp=None, id_exp=None)
    claude_credentials_json(expires_at=None)
    host_contexts(spec, *, missing_tokens=False, credentials=True)
    bottle_cases(*, missing_tokens=False, credentials=True, **specs_kwargs)
    secret_values(spec, host) -> frozenset[str]          (plain function)
    credential_material(text) -> frozenset[str]          (plain function)
    decode_jwt(token) -> (header, claims)                (plain function)
    spec_yaml(spec) -> SpecYaml(text, lines)             (plain function)
    materialise(spec, host, root) -> (spec, host)        (plain function)
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH, HostContext
from bottle_api.spec import BottleSpec, GitUser, Route, Upstream

__all__ = [
    "FAKE_ROOT", "FAKE_HOME", "FAKE_CWD", "FAKE_STATE_ROOT", "FAKE_SKILLS_ROOT",
    "SECRET_MARK", "SECRET_CLAIM", "CODEX_AUTH", "CLAUDE_CREDENTIALS",
    "names", "hostnames", "env_names", "tokens", "routes", "upstream_urls",
    "upstreams", "git_users", "prompts", "skill_paths", "images", "specs",
    "exps", "jwt_tokens", "codex_auth_json", "claude_credentials_json",
    "host_contexts", "bottle_cases", "secret_values", "credential_material",
    "decode_jwt", "SpecYaml", "spec_yaml", "materialise",
]

# -- fixed fake host -----------------------------------------------------------

# Under /dev/null (a device, not a directory), so nothing can ever be created
# there, not even by root: a backend that writes during prepare, or a test
# that launches without `materialise`, fails loudly instead of littering the
# host's filesystem.
FAKE_ROOT = Path("/dev/null/bottle-conformance")
FAKE_HOME = FAKE_ROOT / "home"
FAKE_CWD = FAKE_ROOT / "work"
FAKE_STATE_ROOT = FAKE_ROOT / "state"
FAKE_SKILLS_ROOT = FAKE_ROOT / "skills"

# Every token value contains SECRET_MARK; no other generated text does.
SECRET_MARK = "~"
# A claim whose value is secret material inside generated real JWTs: a
# placeholder that copies unknown claims would carry it into the guest.
SECRET_CLAIM = "bottle_conformance_secret"

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"

# Host env names that mean something to a backend (image refs, loopback
# address, VM size, state dir): a route naming one of them as its token_env
# would make the "token" a config value, so routes never do.
_RESERVED_ENV = frozenset({"HOME", "PATH", "USER", "XDG_STATE_HOME", "DOCKER_HOST"})
_RESERVED_ENV_PREFIXES = ("BOTTLE_", "CLAUDE_BOTTLE_")

# Agent API hosts (DESIGN "domain rules"): a declared route may name one.
_API_HOSTS = ("api.anthropic.com", "chatgpt.com", "api.openai.com")


def _text(*, min_size: int = 0, max_size: int = 40, newlines: bool = True) -> st.SearchStrategy[str]:
    """Unicode text a YAML spec can carry: no surrogates, no NUL (argv
    cannot hold one), no SECRET_MARK."""
    exclude = "\x00" + SECRET_MARK + ("" if newlines else "\n\r\x85\u2028\u2029")
    return st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters=exclude),
        min_size=min_size, max_size=max_size,
    )


# -- spec pieces -----------------------------------------------------------------


# Curated odd values. Drawing one from a pool is a single hypothesis choice,
# far cheaper than composing a string character by character; each pool is
# mixed with a composed strategy so values outside it still turn up.

_NAME_POOL = ("a", "0", "9-", "a--b", "demo", "claude", "codex", "x" * 40, "0" + "-" * 39,
              "bottle-1", "my-bottle", "b0ttl3", "z-z-z", "1234567890", "api-anthropic-com")
_LABEL_POOL = ("x" * 63, "a" + "-" * 61 + "z", "0", "xn--bcher-kva", "API", "localhost", "a-b",
               "Z9", "internal", "git", "eu-west-1", "s3")
_HOST_POOL = (
    "a", "A.B", "example.org", "API.Example.COM", "api.github.com", "a-b.c-d.e", "0.0",
    "xn--bcher-kva.example", "registry.local", "localhost", "a.b.c.d.e.f",
    "x" * 63 + ".com", ".".join(["y" * 63] * 3) + ".org", "1.2.3.4", "svc-1.internal",
    "*.example.org", "*.a", "*.X" + "x" * 62 + ".io",
    "api.anthropic.com", "chatgpt.com", "api.openai.com", "*.chatgpt.com",
)
_ENV_POOL = ("GH_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "_", "_X", "a", "token",
             "GITLAB_TOKEN_2", "A" * 30, "Path_Like_var", "TOKEN_0", "X1")
_HEADER_POOL = ("Authorization", "Authorization", "Authorization", "X-Api-Key",
                "x-goog-api-key", "PRIVATE-TOKEN", "Proxy-Authorization", "!#$%&'*+.^_`|-")
_SCHEME_POOL = ("Bearer", "Bearer", "Bearer", "", "", "token", "Basic", "Bot", "x!#$%")
_UPSTREAM_NAME_POOL = ("app", "-", "_", "a.b", "...", "x" * 40, "repo.git", "A_B-c.d", "0")
_URL_POOL = (
    "https://example.org/app.git", "https://API.Example.COM/team/app", "ssh://git@example.org:2222/a/b",
    "git@github.example:org/repo.git", "file:///srv/repo", "https://a.b/ c d.git",
    "https://example.org/it's \"quoted\".git", "git://host/ümlaut.git", "relative/path",
    "https://example.org/a.git?x=1#frag", "-u root",
)
_TEXT_POOL = ("Ada Lovelace", "O'Brien \"Bob\"", "zoë@example.org", "-u root", "a\nb",
              "  padded  ", "$(whoami)", "`id`", "🙂 emoji", "tab\there", "back\\slash")
_PROMPT_POOL = ("be brief", "it's \"quoted\"\n$(rm -rf /) `x`", "línea 1\nline 2\n",
                "--continue", "\t-u root", "🙂" * 10, "x" * 500, "\n", " ")


def _mostly(pooled: st.SearchStrategy, composed: st.SearchStrategy,
            weight: int = 7) -> st.SearchStrategy:
    """``pooled`` ``weight`` times out of ``weight + 1``, else ``composed``."""
    return st.one_of(*([pooled] * weight), composed)


@functools.cache
def names() -> st.SearchStrategy[str]:
    """Bottle names the loader accepts: ``[a-z0-9][a-z0-9-]{0,39}``, not
    ``bottles``; the odd ones (1 and 40 characters, digits only, trailing
    or doubled hyphens) and random short ones."""
    short = st.text(alphabet=_LOWER_DIGITS + "-", min_size=1, max_size=12).filter(
        lambda n: n[0] != "-" and n != "bottles")
    return _mostly(st.sampled_from(_NAME_POOL), short, 3)


@functools.cache
def _labels() -> st.SearchStrategy[str]:
    plain = st.text(alphabet=_ALNUM, min_size=1, max_size=8)
    return st.one_of(plain, st.sampled_from(_LABEL_POOL))


@functools.cache
def hostnames(*, wildcard: bool = True) -> st.SearchStrategy[str]:
    """DNS names: mixed case, digits, hyphens, 63-character labels, the
    agents' API hosts, ``*.``-prefixed (if ``wildcard``). Config strings
    only: nothing ever dials them."""
    pool = _HOST_POOL if wildcard else tuple(h for h in _HOST_POOL if not h.startswith("*."))
    composed = st.lists(_labels(), min_size=1, max_size=4).map(".".join).filter(
        lambda h: len(h) <= 253)
    if wildcard:
        composed = st.tuples(st.booleans(), composed).map(lambda t: ("*." if t[0] else "") + t[1])
    return _mostly(st.sampled_from(pool), composed)


def _env_ok(name: str) -> bool:
    return name not in _RESERVED_ENV and not name.startswith(_RESERVED_ENV_PREFIXES)


@functools.cache
def env_names() -> st.SearchStrategy[str]:
    """Host env var names (``[A-Za-z_][A-Za-z0-9_]*``), none a backend reads
    (not HOME, PATH, XDG_STATE_HOME, DOCKER_HOST, BOTTLE_*, CLAUDE_BOTTLE_*)."""
    composed = st.text(alphabet="ABCDEKNOTY_019az", min_size=1, max_size=12).filter(
        lambda n: not n[0].isdigit() and _env_ok(n))
    return _mostly(st.sampled_from(_ENV_POOL), composed)


@functools.cache
def _secret_body() -> st.SearchStrategy[str]:
    """16..40 random base64url characters from one cheap draw."""
    return st.binary(min_size=12, max_size=30).map(_b64url)


_TOKEN_PREFIXES = ("", "ghp_", "sk-", "glpat-")


@functools.cache
def tokens() -> st.SearchStrategy[str]:
    """A secret value: an optional vendor-looking prefix, `SECRET_MARK`, and
    a random body of 16..40 characters, so it never equals or sits inside
    any other argv word."""
    return st.binary(min_size=13, max_size=31).map(
        lambda b: f"{_TOKEN_PREFIXES[b[0] % 4]}{SECRET_MARK}{_b64url(b[1:])}")  # one draw


def _packed(*pools: tuple) -> st.SearchStrategy[tuple]:
    """One value from each pool, from ONE integer draw (mixed radix). It
    shrinks towards every pool's first entry, and costs a single choice where
    a tuple of sampled_froms costs one per field plus their spans."""
    sizes = [len(p) for p in pools]
    total = 1
    for n in sizes:
        total *= n

    def decode(index: int) -> tuple:
        out = []
        for pool, n in zip(pools, sizes):
            index, i = divmod(index, n)
            out.append(pool[i])
        return tuple(out)

    return st.integers(0, total - 1).map(decode)


@functools.cache
def routes() -> st.SearchStrategy[Route]:
    """An egress route: odd hosts, other header names, empty or odd schemes.
    Mostly from the curated pools (cheap), sometimes fully composed."""
    pooled = _packed(_HOST_POOL, _ENV_POOL, _HEADER_POOL, _SCHEME_POOL).map(lambda t: Route(*t))
    composed = st.builds(Route, host=hostnames(), token_env=env_names(),
                         header=st.sampled_from(_HEADER_POOL), scheme=st.sampled_from(_SCHEME_POOL))
    return _mostly(pooled, composed)


@functools.cache
def upstream_urls() -> st.SearchStrategy[str]:
    """git URLs in the shapes people write (https, ssh, scp-like, file), odd
    ones (spaces, quotes, unicode, a leading dash) and any text (the loader
    accepts any non-empty string)."""
    composed = st.builds(lambda scheme, h, p: f"{scheme}{h}/{p}",
                         st.sampled_from(["https://", "ssh://git@", "git://", "http://"]),
                         hostnames(wildcard=False),
                         st.text(alphabet=_ALNUM + "-_./", min_size=1, max_size=12))
    odd = _text(min_size=1, max_size=20).filter(lambda s: s.strip())
    return _mostly(st.sampled_from(_URL_POOL), st.one_of(composed, odd), 4)


_IDENTITY_POOL = (None, None, "/home/user/.ssh/id_ed25519", "/keys/deploy")


@functools.cache
def upstreams() -> st.SearchStrategy[Upstream]:
    """A git upstream: name ``[A-Za-z0-9._-]+`` (not ``.``/``..``), any URL.
    Mostly from the curated pools (cheap), sometimes fully composed."""
    pooled = _packed(_UPSTREAM_NAME_POOL, _URL_POOL, _IDENTITY_POOL).map(lambda t: Upstream(*t))
    name = st.text(alphabet=_ALNUM + "._-", min_size=1, max_size=10).filter(
        lambda n: n not in (".", ".."))
    composed = st.builds(Upstream, name=name, url=upstream_urls(),
                         identity=st.sampled_from(_IDENTITY_POOL))
    return _mostly(pooled, composed)


_GIT_VALUES = (None, None) + _TEXT_POOL


@functools.cache
def git_users() -> st.SearchStrategy[GitUser]:
    """Empty, name-only, email-only or both; unicode, quotes, newlines."""
    pooled = _packed(_GIT_VALUES, _GIT_VALUES).map(lambda t: GitUser(*t))
    value = st.one_of(st.none(), _text(min_size=1, max_size=20).filter(lambda s: s.strip()))
    return _mostly(pooled, st.builds(GitUser, name=value, email=value), 5)


@functools.cache
def prompts() -> st.SearchStrategy[str]:
    """Prompts: empty (often), unicode, quotes, newlines, shell metacharacters."""
    return st.one_of(st.just(""), st.sampled_from(_PROMPT_POOL), _text(max_size=40))


@functools.cache
def skill_paths(*, max_size: int = 3) -> st.SearchStrategy[tuple[Path, ...]]:
    """Skill dirs under `FAKE_SKILLS_ROOT` with distinct names. They do not
    exist: use `materialise` before launching."""
    return st.lists(st.sampled_from(_SKILL_NAMES), max_size=max_size, unique=True).map(
        lambda ns: tuple(FAKE_SKILLS_ROOT / n for n in ns))


@functools.cache
def images() -> st.SearchStrategy[str | None]:
    return st.sampled_from(_IMAGE_POOL)


_FLAGS = {None: st.booleans(), True: st.just(True), False: st.just(False)}
_IMAGE_POOL = (None, None, "claude-bottle:latest", "registry.local:5000/team/agent:v1.2",
               "agent@sha256:" + "ab" * 32)
_SKILL_NAMES = ("review", "a", "x-y_z", "Skill9", "s" * 40, "-dash", "_u")
_SKILL_SETS = ((), (), ("review",), ("a", "x-y_z"), _SKILL_NAMES[2:5])


def _sizes(min_size: int, max_size: int) -> tuple[int, ...]:
    """List sizes, small first (most bottles declare one or two of a thing)
    and the largest allowed often enough: a list's cost is its draws."""
    small = [n for n in (min_size, min_size + 1, min_size, min_size + 1, min_size + 2)
             if n <= max_size]
    return tuple(small + [max_size, (min_size + max_size + 1) // 2])


def _unique(draw, elements: st.SearchStrategy, key, n: int) -> tuple:
    """Up to ``n`` elements distinct by ``key``: a duplicate is redrawn
    (at most twice), then dropped, so the largest sizes really occur."""
    out, seen = [], set()
    for _ in range(n):
        for _attempt in range(3):
            item = draw(elements)
            if key(item) not in seen:
                seen.add(key(item))
                out.append(item)
                break
    return tuple(out)


def _route_key(r: Route) -> str:
    return r.host.lower()  # the loader refuses two routes for one host, case-insensitively


def _upstream_key(u: Upstream) -> str:
    return u.name


def _same(x):
    return x


def _choices(forced, *options) -> tuple:
    return options if forced is None else (forced,)


def specs(
    agent: str | None = None,
    routed: bool | None = None,
    *,
    forward_host_credentials: bool | None = None,
    with_routes: bool | None = None,
    with_upstreams: bool | None = None,
    supervise: bool | None = None,
    skills: bool = True,
    cwd: bool = True,
    max_routes: int = 8,
    max_upstreams: int = 6,
) -> st.SearchStrategy[BottleSpec]:
    """Strategy of BottleSpec objects the loader would accept.

    ``agent``: "claude", "codex" or None (either). ``routed``: True means at
    least one route, declared or auto (``forward_host_credentials``); False
    means none; None either. ``with_routes`` / ``with_upstreams`` /
    ``supervise`` / ``forward_host_credentials``: True forces that part on,
    False off, None either. ``skills`` / ``cwd`` False leave them out (the
    loader checks those directories exist, so `spec_yaml` round trips
    need that). Skills and cwd are fake paths: see `materialise`.
    """
    if agent not in (None, "claude", "codex"):
        raise ValueError(f"agent must be 'claude', 'codex' or None, not {agent!r}")
    if routed is False and (forward_host_credentials or with_routes):
        raise ValueError("routed=False contradicts forward_host_credentials/with_routes=True")
    if routed is True and forward_host_credentials is False and with_routes is False:
        raise ValueError("routed=True needs routes or forward_host_credentials")
    if max_routes < 1 or max_upstreams < 1:
        raise ValueError("max_routes and max_upstreams must be >= 1")
    return _specs(agent, routed, forward_host_credentials, with_routes, with_upstreams,
                  supervise, skills, cwd, max_routes, max_upstreams)


@functools.cache
def _specs(agent, routed, forward_host_credentials, with_routes, with_upstreams, supervise,
           skills, cwd, max_routes, max_upstreams) -> st.SearchStrategy[BottleSpec]:
    # The spec's shape (agent, flags, image, skills, cwd, list sizes) is ONE
    # packed choice: hypothesis pays per choice, and a packed integer still
    # shrinks towards the simplest shape (every pool's first entry). Strings
    # and list items are drawn from their own strategies.
    if routed is False:
        fhc_opts, routes_opts = (False,), (False,)
    else:
        fhc_opts = _choices(forward_host_credentials, False, True)
        routes_opts = _choices(with_routes, False, True)
    shape = _packed(
        _choices(agent, "claude", "codex"), fhc_opts, routes_opts,
        _choices(with_upstreams, False, True), _choices(supervise, False, True),
        _IMAGE_POOL, _SKILL_SETS if skills else ((),), (None, FAKE_CWD) if cwd else (None,),
        _sizes(1, max_routes), _sizes(1, max_upstreams), _sizes(0, 4), _sizes(0, 3),
    )

    @st.composite
    def build(draw) -> BottleSpec:
        (kind, fhc, want_routes, want_upstreams, sup, image, skill_set, cwd_path,
         n_routes, n_upstreams, n_allow, n_pass) = draw(shape)
        if routed and not (fhc or want_routes):
            # Force on whichever part the caller left open.
            if forward_host_credentials is None:
                fhc = True
            if with_routes is None and (not fhc or n_routes % 2):
                want_routes = True
        return BottleSpec(
            name=draw(names()),
            agent=kind,
            image=image,
            prompt=draw(prompts()),
            skills=tuple(FAKE_SKILLS_ROOT / n for n in skill_set),
            cwd=cwd_path,
            git_user=draw(git_users()),
            upstreams=(_unique(draw, upstreams(), _upstream_key, n_upstreams)
                       if want_upstreams else ()),
            routes=_unique(draw, routes(), _route_key, n_routes) if want_routes else (),
            allow=_unique(draw, hostnames(), _same, n_allow),
            tls_passthrough=_unique(draw, hostnames(), _same, n_pass),
            forward_host_credentials=fhc,
            supervise=sup,
        )

    return build()


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


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(obj: Any) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


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
# how the id token's exp relates to the access token's).
_CODEX_DETAILS = _packed(("2025-05-01T12:00:00.000000Z", "1970-01-01T00:00:00Z"), (None, 2),
                         ("same", "same", "other", "none"))
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
        last_refresh, indent, id_kind = draw(_CODEX_DETAILS)
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


# -- host -----------------------------------------------------------------------------


_INDEXES = st.integers(0, 7)
_NOISE_COUNT = st.integers(0, 2)
_NOISE_VALUES = st.sampled_from(["1", "C.UTF-8", "/usr/bin:/bin", ""])


def _draw_host(draw, spec: BottleSpec, missing_tokens: bool | None,
               credentials: bool | None) -> HostContext:
    env_keys = list(dict.fromkeys(r.token_env for r in spec.routes))
    drop: set[str] = set()
    if env_keys and missing_tokens is not False:
        if missing_tokens or draw(_FLAGS[None]):
            # One variable surely missing, the others each maybe.
            first = draw(_INDEXES) % len(env_keys)
            drop = {k for i, k in enumerate(env_keys) if i == first or draw(_FLAGS[None])}
    env = {}
    for _ in range(draw(_NOISE_COUNT)):  # unrelated variables a backend must ignore
        name = draw(env_names())
        if name not in env_keys:
            env[name] = draw(_NOISE_VALUES)
    env.update({k: draw(tokens()) for k in env_keys if k not in drop})
    home_files: dict[str, str] = {}
    if spec.forward_host_credentials and draw(_FLAGS[credentials]):
        if spec.agent == "codex":
            home_files[CODEX_AUTH] = draw(codex_auth_json())
        else:
            home_files[CLAUDE_CREDENTIALS] = draw(claude_credentials_json())
    return HostContext(env=env, home=FAKE_HOME, cwd=FAKE_CWD, home_files=home_files,
                       state_root=FAKE_STATE_ROOT)


def host_contexts(spec: BottleSpec, *, missing_tokens: bool | None = False,
                  credentials: bool | None = True) -> st.SearchStrategy[HostContext]:
    """Strategy of fake HostContext objects for ``spec``: a distinctive `tokens` value per
    route ``token_env``, a few unrelated variables, and the agent's
    credential file in ``home_files`` when ``forward_host_credentials``.

    ``missing_tokens``: True drops at least one route's variable (None:
    maybe, False: never). ``credentials``: False leaves the credential file
    out (None: maybe). Paths are fixed fakes under `FAKE_ROOT`.
    """
    return st.composite(lambda draw: _draw_host(draw, spec, missing_tokens, credentials))()


def bottle_cases(*, missing_tokens: bool | None = False, credentials: bool | None = True,
                 **spec_kwargs: Any) -> st.SearchStrategy[tuple[BottleSpec, HostContext]]:
    """``(spec, host)`` pairs; ``spec_kwargs`` go to `specs`, the rest to
    `host_contexts`. By default every token is set and every forwarded
    credential file exists, so the case launches."""
    return _cases(specs(**spec_kwargs), missing_tokens, credentials)


@functools.cache
def _cases(spec_strategy, missing_tokens, credentials):
    @st.composite
    def build(draw) -> tuple[BottleSpec, HostContext]:
        spec = draw(spec_strategy)
        return spec, _draw_host(draw, spec, missing_tokens, credentials)

    return build()


def secret_values(spec: BottleSpec, host: HostContext) -> frozenset[str]:
    """Every secret in a case, computed from the spec and host alone: each
    route's token value and the forwarded credential file's material."""
    out = {host.env[r.token_env] for r in spec.routes if host.env.get(r.token_env)}
    if spec.forward_host_credentials:
        for rel in (CODEX_AUTH, CLAUDE_CREDENTIALS):
            if rel in host.home_files:
                out |= credential_material(host.home_files[rel])
    return frozenset(out)


# -- YAML -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecYaml:
    """A spec as YAML text, and the 1-based line of every key path in it
    (``egress.routes[0].token_env``), as the loader records them."""

    text: str
    lines: Mapping[str, int]


def _q(value: str) -> str:
    """A YAML double-quoted scalar with everything outside printable ASCII
    escaped, so any string round-trips exactly."""
    out = ['"']
    for ch in value:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def spec_yaml(spec: BottleSpec) -> SpecYaml:
    """Render ``spec`` as the YAML a user would write, with its line map.

    Written by hand, not with a YAML library, so the line numbers are an
    independent oracle for errors that must name a line."""
    lines: list[str] = []
    where: dict[str, int] = {}

    def put(text: str, key: str | None = None) -> None:
        lines.append(text)
        if key is not None:
            where[key] = len(lines)

    put(f"name: {_q(spec.name)}", "name")
    put(f"agent: {_q(spec.agent)}", "agent")
    if spec.image is not None:
        put(f"image: {_q(spec.image)}", "image")
    put(f"prompt: {_q(spec.prompt)}", "prompt")
    if spec.skills:
        put("skills:", "skills")
        for i, p in enumerate(spec.skills):
            put(f"  - {_q(str(p))}", f"skills[{i}]")
    if spec.cwd is not None:
        put(f"cwd: {_q(str(spec.cwd))}", "cwd")
    if not spec.git_user.is_empty():
        put("git_user:", "git_user")
        for k in ("name", "email"):
            v = getattr(spec.git_user, k)
            if v is not None:
                put(f"  {k}: {_q(v)}", f"git_user.{k}")
    if spec.upstreams:
        put("git:", "git")
        put("  upstreams:", "git.upstreams")
        for i, u in enumerate(spec.upstreams):
            base = f"git.upstreams[{i}]"
            put(f"    - name: {_q(u.name)}", base)
            where[f"{base}.name"] = len(lines)
            put(f"      url: {_q(u.url)}", f"{base}.url")
            if u.identity is not None:
                put(f"      identity: {_q(u.identity)}", f"{base}.identity")
    if spec.routes or spec.allow or spec.tls_passthrough:
        put("egress:", "egress")
        for key in ("routes", "allow", "tls_passthrough"):
            items = getattr(spec, key)
            if not items:
                continue
            put(f"  {key}:", f"egress.{key}")
            for i, item in enumerate(items):
                base = f"egress.{key}[{i}]"
                if key != "routes":
                    put(f"    - {_q(item)}", base)
                    continue
                put(f"    - host: {_q(item.host)}", base)
                where[f"{base}.host"] = len(lines)
                put(f"      token_env: {_q(item.token_env)}", f"{base}.token_env")
                put(f"      header: {_q(item.header)}", f"{base}.header")
                put(f"      scheme: {_q(item.scheme)}", f"{base}.scheme")
    put(f"forward_host_credentials: {'true' if spec.forward_host_credentials else 'false'}",
        "forward_host_credentials")
    put(f"supervise: {'true' if spec.supervise else 'false'}", "supervise")
    return SpecYaml("\n".join(lines) + "\n", where)


# -- launching a generated case -------------------------------------------------------


def materialise(spec: BottleSpec, host: HostContext, root: Path) -> tuple[BottleSpec, HostContext]:
    """Move a case under the real directory ``root`` so it can be launched
    with a recording runner: ``state_root`` becomes ``root/state``, each
    skill a real directory ``root/skills/<name>`` (with a SKILL.md), and a
    cwd a real directory with a ``.git`` inside. Only paths change."""
    skills_root = root / "skills"
    skills = []
    for p in spec.skills:
        d = skills_root / Path(p).name
        d.mkdir(parents=True, exist_ok=True)
        (d / "SKILL.md").write_text(f"# {d.name}\n", encoding="utf-8")
        skills.append(d)
    cwd = None
    if spec.cwd is not None:
        cwd = root / "work"
        (cwd / ".git").mkdir(parents=True, exist_ok=True)
        (cwd / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    spec = dataclasses.replace(spec, skills=tuple(skills), cwd=cwd)
    host = dataclasses.replace(host, home=root / "home", cwd=cwd or root,
                               state_root=root / "state" / "bottle-ref")
    return spec, host
