"""Strategies for host contexts and whole (spec, host) cases; the secrets a case plants."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import strategies as st

from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH, HostContext
from bottle_api.spec import BottleSpec

from .credentials import claude_credentials_json, codex_auth_json, credential_material
from .pools import FAKE_CWD, FAKE_HOME, FAKE_STATE_ROOT
from .specs import _FLAGS, env_names, specs, tokens

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
