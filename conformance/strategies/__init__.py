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
- Cheap to draw. Hypothesis pays per choice, so about half the strings come
  from curated pools of odd values (one choice each), the other half are
  composed (where the variety is),
  and a spec's shape (agent, flags, image, list sizes) is a few packed
  integer choices (`_packed`) that still shrink towards the simplest spec.

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
    as_loaded(spec) -> BottleSpec (hosts canonical, as the loader returns them)
    materialise(spec, host, root) -> (spec, host)        (plain function)

One module per subject (`pools`, `specs`, `credentials`, `hosts`,
`yaml_text`, `launching`); this package re-exports the API.
"""

from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH

from .pools import (  # noqa: F401
    FAKE_CWD,
    FAKE_HOME,
    FAKE_ROOT,
    FAKE_SKILLS_ROOT,
    FAKE_STATE_ROOT,
    SECRET_CLAIM,
    SECRET_MARK,
)
from .specs import (  # noqa: F401
    _HOST_POOL,
    env_names,
    git_users,
    hostnames,
    images,
    names,
    prompts,
    routes,
    skill_paths,
    specs,
    tokens,
    upstream_urls,
    upstreams,
)
from .credentials import (  # noqa: F401
    _NOW,
    claude_credentials_json,
    codex_auth_json,
    credential_material,
    decode_jwt,
    exps,
    jwt_tokens,
)
from .hosts import (  # noqa: F401
    bottle_cases,
    host_contexts,
    secret_values,
)
from .yaml_text import (  # noqa: F401
    SpecYaml,
    as_loaded,
    spec_yaml,
)
from .launching import (  # noqa: F401
    materialise,
)

__all__ = [
    "FAKE_ROOT",
    "FAKE_HOME",
    "FAKE_CWD",
    "FAKE_STATE_ROOT",
    "FAKE_SKILLS_ROOT",
    "SECRET_MARK",
    "SECRET_CLAIM",
    "CODEX_AUTH",
    "CLAUDE_CREDENTIALS",
    "names",
    "hostnames",
    "env_names",
    "tokens",
    "routes",
    "upstream_urls",
    "upstreams",
    "git_users",
    "prompts",
    "skill_paths",
    "images",
    "specs",
    "exps",
    "jwt_tokens",
    "codex_auth_json",
    "claude_credentials_json",
    "host_contexts",
    "bottle_cases",
    "secret_values",
    "credential_material",
    "decode_jwt",
    "SpecYaml",
    "spec_yaml",
    "as_loaded",
    "materialise",
]
