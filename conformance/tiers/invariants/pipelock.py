"""Invariant properties for PIPELOCK-PASS, PIPELOCK-SCHEMA."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given

from bottle_ref.pipelock import load_config, validate_config

from ... import strategies as bst
from ...markers import clause
from .facts import CODEX_PIPELOCK_HOSTS, PIPELOCK_KEYS
from .support import _PLAN, _api_hosts, _fit, _pipelock_config


class PipelockInvariants:
    """PIPELOCK-PASS, PIPELOCK-SCHEMA."""

    # -- pipelock ------------------------------------------------------------------------

    @clause("PIPELOCK-PASS")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_injected_hosts_pass_through_pipelock(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        data = _pipelock_config(plan)
        allow = data.get("api_allowlist") or []
        passthrough = (data.get("tls_interception") or {}).get("passthrough_domains") or []
        injected = [r.host for r in spec.routes]
        if spec.forward_host_credentials:
            injected += list(_api_hosts(spec.agent))
        for h in injected:
            assert h in passthrough, (
                f"egress injects a token for {h!r}, but it is not in passthrough_domains "
                f"{passthrough}")
            assert h in allow, f"egress injects a token for {h!r}, but it is not in api_allowlist"

    @clause("PIPELOCK-PASS-CODEX")
    @_PLAN
    @given(case=bst.bottle_cases(agent="codex", forward_host_credentials=True,
                                 missing_tokens=None, credentials=None, max_routes=3))
    def test_codex_api_hosts_pass_through_pipelock(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        data = _pipelock_config(backend.prepare(spec, host))
        allow = data.get("api_allowlist") or []
        passthrough = (data.get("tls_interception") or {}).get("passthrough_domains") or []
        for h in CODEX_PIPELOCK_HOSTS:
            assert h in passthrough, f"Codex API host {h!r} missing from passthrough_domains {passthrough}"
            assert h in allow, f"Codex API host {h!r} missing from api_allowlist {allow}"

    @clause("PIPELOCK-SCHEMA")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_pipelock_yaml_uses_only_pipelock_keys(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        data = _pipelock_config(plan)
        unknown: list[str] = []

        def walk(value: Any, schema: Mapping[str, Any], path: str) -> None:
            for key, sub in value.items():
                here = f"{path}.{key}" if path else str(key)
                if key not in schema:
                    unknown.append(here)
                elif schema[key] is not None:
                    assert isinstance(sub, dict), f"{here} must be a mapping, got {sub!r:.60}"
                    walk(sub, schema[key], here)

        walk(data, PIPELOCK_KEYS, "")
        assert not unknown, f"pipelock.yaml has keys pipelock does not know: {unknown}"
        problems = validate_config(data)
        assert not problems, f"pipelock would refuse this config: {problems}"
        assert (data.get("forward_proxy") or {}).get("enabled") is True, (
            f"forward_proxy.enabled is {(data.get('forward_proxy') or {}).get('enabled')!r}, "
            "must be true")
        try:
            load_config(plan.pipelock.config_yaml)
        except ValueError as exc:
            raise AssertionError(f"pipelock.yaml does not load strictly: {exc}") from None
