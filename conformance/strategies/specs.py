"""Strategies for bottle specs and their pieces (names, hosts, routes, upstreams...)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from bottle_api.spec import BottleSpec, GitUser, Route, Upstream

from .pools import (
    _ALNUM,
    _LOWER_DIGITS,
    _RESERVED_ENV,
    _RESERVED_ENV_PREFIXES,
    FAKE_CWD,
    FAKE_SKILLS_ROOT,
    SECRET_MARK,
    _b64url,
    _text,
)

# -- spec pieces -----------------------------------------------------------------


# Curated odd values. Drawing one from a pool is a single hypothesis choice,
# far cheaper than composing a value from many; each pool is mixed half and
# half with a composed strategy (`_pooled_or_composed`), so values outside
# it still turn up.

_NAME_POOL = ("a", "0", "9a", "a-b", "demo", "claude", "codex", "x" * 40, "0-" * 19 + "01",
              "bottle-1", "my-bottle", "b0ttl3", "z-z-z", "1234567890", "api-anthropic-com")
_LABEL_POOL = ("x" * 63, "a" + "-" * 61 + "z", "0", "xn--bcher-kva", "API", "localhost", "a-b",
               "Z9", "internal", "git", "eu-west-1", "s3")
_HOST_POOL = (
    "a", "A.B", "example.org", "API.Example.COM", "api.github.com", "a-b.c-d.e", "0.0",
    "xn--bcher-kva.example", "registry.local", "localhost", "a.b.c.d.e.f",
    "x" * 63 + ".com", ".".join(["y" * 63] * 3) + ".org", "1.2.3.4", "svc-1.internal",
    "*.example.org", "*.a.b", "*.X" + "x" * 62 + ".io",
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


def _pooled_or_composed(pooled: st.SearchStrategy,
                        composed: st.SearchStrategy) -> st.SearchStrategy:
    """``pooled`` or ``composed``, about half and half.

    Half and half on purpose: the composed half is where the variety is.
    A trial that weighted the pool 7:1 (the composed share came out at
    1-10%; 1,800 cases) drew 36 distinct route hosts instead of 216, 72
    allow-list hosts instead of 208, 20 env names instead of 184. This was
    once written ``st.one_of(*[pooled] * 7, composed)``, meant as 7:1; but
    one_of drops repeated branches, so it always drew half and half."""
    return st.one_of(pooled, composed)


@functools.cache
def names() -> st.SearchStrategy[str]:
    """Bottle names the loader accepts: ``[a-z0-9][a-z0-9-]{0,39}``, not
    ``bottles``, no trailing or doubled hyphen (smolvm's validate_vm_name,
    issue 14); the odd ones (1 and 40 characters, digits only, alternating
    hyphens) and random short ones."""
    short = st.text(alphabet=_LOWER_DIGITS + "-", min_size=1, max_size=12).filter(
        lambda n: n[0] != "-" and n[-1] != "-" and "--" not in n and n != "bottles")
    return _pooled_or_composed(st.sampled_from(_NAME_POOL), short)


_LABEL_TEXT = st.text(alphabet=_ALNUM, min_size=1, max_size=8)
# One choice: below len(_LABEL_POOL) a composed label, else a pool entry
# (half and half, shrinking towards a composed "a").
_LABEL_PICK = st.integers(0, 2 * len(_LABEL_POOL) - 1)
_LABEL_COUNT = st.integers(1, 4)


@st.composite
def _composed_host(draw, wildcard: bool) -> str:
    """1-4 labels, each composed or from `_LABEL_POOL`, at most 253
    characters; ``*.``-prefixed about half the time when ``wildcard`` and
    there are two labels or more. Drawn by count, not as ``st.lists``: a
    list pays a continue-or-stop choice and a span per element, and a draw
    took 250 us that way, 110 us this way, for hosts as varied."""
    labels = []
    for _ in range(draw(_LABEL_COUNT)):
        i = draw(_LABEL_PICK)
        labels.append(draw(_LABEL_TEXT) if i < len(_LABEL_POOL)
                      else _LABEL_POOL[i - len(_LABEL_POOL)])
    while len(".".join(labels)) > 253:
        labels.pop()
    host = ".".join(labels)
    # never a wildcard over a whole TLD (*.com): the spec loader refuses it,
    # since pipelock's allowlist would then admit every host under it
    star = wildcard and draw(st.booleans()) and "." in host
    return "*." + host if star else host


@functools.cache
def hostnames(*, wildcard: bool = True) -> st.SearchStrategy[str]:
    """DNS names: mixed case, digits, hyphens, 63-character labels, the
    agents' API hosts, ``*.``-prefixed (if ``wildcard``; at least two labels
    after the ``*.``). Config strings
    only: nothing ever dials them."""
    pool = _HOST_POOL if wildcard else tuple(h for h in _HOST_POOL if not h.startswith("*."))
    return _pooled_or_composed(st.sampled_from(pool), _composed_host(wildcard))


def _env_ok(name: str) -> bool:
    return name not in _RESERVED_ENV and not name.startswith(_RESERVED_ENV_PREFIXES)


@functools.cache
def env_names() -> st.SearchStrategy[str]:
    """Host env var names (``[A-Za-z_][A-Za-z0-9_]*``), none a backend reads
    (not HOME, PATH, XDG_STATE_HOME, DOCKER_HOST, BOTTLE_*, CLAUDE_BOTTLE_*)."""
    composed = st.text(alphabet="ABCDEKNOTY_019az", min_size=1, max_size=12).filter(
        lambda n: not n[0].isdigit() and _env_ok(n))
    return _pooled_or_composed(st.sampled_from(_ENV_POOL), composed)


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


# Hypothesis draws an integer choice from a distribution that piles up near
# the minimum once the range is wide (over 0..19,007, half the draws fell
# below ~2,000), so a mixed-radix decode of one wide integer left its last
# pools on their first entry: a spec's tls_passthrough list came out empty
# 89% of the time, not the 2 in 7 `_sizes` asks for. Over a range up to
# this wide its draws are close to uniform (0..175: every eighth of the
# range 11-14%), so `_packed` draws one integer per group of pools no wider.
_NEAR_UNIFORM = 256


def _groups(sizes: Sequence[int]) -> list[list[int]]:
    """Pool indexes, in order, cut into runs whose sizes multiply to at most
    `_NEAR_UNIFORM` (a larger pool alone)."""
    groups: list[list[int]] = []
    width = 0
    for i, n in enumerate(sizes):
        if groups and width * n <= _NEAR_UNIFORM:
            groups[-1].append(i)
            width *= n
        else:
            groups.append([i])
            width = n
    return groups


def _packed(*pools: tuple, make: Callable[..., Any] = lambda *values: values) -> st.SearchStrategy:
    """``make(*values)``, one value from each pool (a tuple by default), from
    few integer choices: one per group of pools (`_groups`), mixed radix
    within it. It shrinks towards every pool's first entry, and costs a
    choice per group where a tuple of sampled_froms costs one per pool plus
    their spans."""
    plan = []
    for group in _groups([len(p) for p in pools]):
        width = math.prod(len(pools[i]) for i in group)
        plan.append((st.integers(0, width - 1), [(i, pools[i]) for i in group]))
    return _draw_packed(tuple(plan), len(pools), make)


@st.composite
def _draw_packed(draw, plan, count: int, make: Callable[..., Any]) -> Any:
    out: list = [None] * count
    for choice, members in plan:
        index = draw(choice)
        for i, pool in members:
            index, j = divmod(index, len(pool))
            out[i] = pool[j]
    return make(*out)


@functools.cache
def routes() -> st.SearchStrategy[Route]:
    """An egress route: odd hosts, other header names, empty or odd schemes.
    From the curated pools (cheap) or fully composed, about half and half."""
    pooled = _packed(_HOST_POOL, _ENV_POOL, _HEADER_POOL, _SCHEME_POOL, make=Route)
    host, env, header, scheme = (hostnames(), env_names(), st.sampled_from(_HEADER_POOL),
                                 st.sampled_from(_SCHEME_POOL))

    @st.composite  # not st.builds: the same draws at ~3/4 of the cost (upstreams: 186 vs 256 us)
    def composed(draw) -> Route:
        return Route(draw(host), draw(env), draw(header), draw(scheme))

    return _pooled_or_composed(pooled, composed())


@functools.cache
def upstream_urls() -> st.SearchStrategy[str]:
    """git URLs in the shapes people write (https, ssh, scp-like, file), odd
    ones (spaces, quotes, unicode, a leading dash) and any text (the loader
    accepts any non-empty string)."""
    scheme = st.sampled_from(["https://", "ssh://git@", "git://", "http://"])
    host, path = hostnames(wildcard=False), st.text(alphabet=_ALNUM + "-_./", min_size=1,
                                                    max_size=12)

    @st.composite
    def composed(draw) -> str:
        return f"{draw(scheme)}{draw(host)}/{draw(path)}"

    odd = _text(min_size=1, max_size=20).filter(lambda s: s.strip())
    return _pooled_or_composed(st.sampled_from(_URL_POOL), st.one_of(composed(), odd))


_IDENTITY_POOL = (None, None, "/home/user/.ssh/id_ed25519", "/keys/deploy")


@functools.cache
def upstreams() -> st.SearchStrategy[Upstream]:
    """A git upstream: name ``[A-Za-z0-9._-]+`` (not ``.``/``..``), any URL.
    From the curated pools (cheap) or fully composed, about half and half."""
    pooled = _packed(_UPSTREAM_NAME_POOL, _URL_POOL, _IDENTITY_POOL, make=Upstream)
    name = st.text(alphabet=_ALNUM + "._-", min_size=1, max_size=10).filter(
        lambda n: n not in (".", ".."))
    url, identity = upstream_urls(), st.sampled_from(_IDENTITY_POOL)

    @st.composite
    def composed(draw) -> Upstream:
        return Upstream(draw(name), draw(url), draw(identity))

    return _pooled_or_composed(pooled, composed())


_GIT_VALUES = (None, None) + _TEXT_POOL


@functools.cache
def git_users() -> st.SearchStrategy[GitUser]:
    """Empty, name-only, email-only or both; unicode, quotes, newlines."""
    pooled = _packed(_GIT_VALUES, _GIT_VALUES, make=GitUser)
    value = st.one_of(st.none(), _text(min_size=1, max_size=20).filter(lambda s: s.strip()))

    @st.composite
    def composed(draw) -> GitUser:
        return GitUser(draw(value), draw(value))

    return _pooled_or_composed(pooled, composed())


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
    # The spec's shape (agent, flags, image, skills, cwd, list sizes) is one
    # `_packed` draw, a few integer choices: hypothesis pays per choice, and
    # it still shrinks towards the simplest shape (every pool's first entry).
    # Strings and list items are drawn from their own strategies.
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
