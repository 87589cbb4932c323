"""Invariant properties for PIPELOCK-PASS, PIPELOCK-PASS-CODEX, PIPELOCK-SCHEMA
and PIPELOCK-ENFORCE.

pipelock's rules come from the suite's own oracle
(`conformance.oracles.pipelock`, written from pipelock's source), never from
a backend's validator.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from bottle_api.conventions import PIPELOCK_TRUSTED_HOSTS_ENV

from ... import strategies as bst
from ...markers import clause
from ...oracles import pipelock as oracle
from .facts import CODEX_PIPELOCK_HOSTS
from .support import _PLAN, _api_hosts, _fit, _pipelock_config


def needed_passthrough(spec) -> set[str]:
    """The hosts a bottle must pass through pipelock, and no others: every
    host egress injects for (declared routes; the agent's API hosts when
    forwarding, plus *.chatgpt.com for Codex) and the spec's tls_passthrough."""
    hosts = [r.host for r in spec.routes] + list(spec.tls_passthrough)
    if spec.forward_host_credentials:
        hosts += list(CODEX_PIPELOCK_HOSTS if spec.agent == "codex" else _api_hosts(spec.agent))
    return {_norm(h) for h in hosts}


def _norm(host: str) -> str:
    return host.lower().rstrip(".")


class PipelockInvariants:
    """PIPELOCK-PASS, PIPELOCK-PASS-CODEX, PIPELOCK-SCHEMA, PIPELOCK-ENFORCE."""

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
    def test_pipelock_would_load_the_config(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        plan = backend.prepare(spec, host)
        data, problems = oracle.parse(plan.pipelock.config_yaml)
        assert not problems, f"pipelock would refuse this pipelock.yaml: {problems}"
        assert (data.get("forward_proxy") or {}).get("enabled") is True, (
            f"forward_proxy.enabled is {(data.get('forward_proxy') or {}).get('enabled')!r}, "
            "must be true (the agent uses pipelock as its forward proxy)")

    @clause("PIPELOCK-ENFORCE")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_pipelock_enforces_the_bottle_policy(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        data = _pipelock_config(backend.prepare(spec, host))
        tls = data.get("tls_interception") or {}
        listed = {_norm(h) for h in tls.get("passthrough_domains") or []}
        problems = oracle.enforcement_problems(
            {**data, "tls_interception": {**tls, "passthrough_domains": sorted(listed)}},
            agent_hosts=_api_hosts(spec.agent), passthrough=needed_passthrough(spec))
        assert not problems, "pipelock would not enforce this bottle's policy: " + "; ".join(problems)

    # issue 15: a separate property (the one above keeps its derandomized examples)
    @clause("PIPELOCK-ENFORCE")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None))
    def test_pipelock_dlp_catches_the_bottle_credentials(self, backend, case):
        case = _fit(backend, case)
        spec, host = case
        data = _pipelock_config(backend.prepare(spec, host))
        samples = oracle.credential_samples(
            codex_forwarded=spec.agent == "codex" and spec.forward_host_credentials,
            agent=spec.agent)
        missed = oracle.dlp_misses(data, samples)
        assert not missed, (
            f"the rendered dlp.patterns catch none of the bottle's credential shapes {missed} "
            "(a JWT when Codex credentials are forwarded, the Anthropic key for Claude): "
            "pipelock would pass them to any host it decrypts")

    # issue 15 (second pass): the SSRF guard is exempted only where asked
    @clause("PIPELOCK-ENFORCE")
    @_PLAN
    @given(case=bst.bottle_cases(missing_tokens=None, credentials=None),
           asked=st.lists(st.sampled_from(["upstream.example.test", "Plain.Example.TEST.",
                                           "api.anthropic.com"]), max_size=3, unique=True))
    def test_pipelock_ssrf_guard_exempts_only_what_was_asked(self, backend, case, asked):
        case = _fit(backend, case)
        spec, host = case
        if asked:
            host = dataclasses.replace(host, env={**host.env,
                                                  PIPELOCK_TRUSTED_HOSTS_ENV: ",".join(asked)})
        data = _pipelock_config(backend.prepare(spec, host))
        problems = oracle.ssrf_exemption_problems(data, oracle.asked_trusted_hosts(host.env))
        assert not problems, (
            "pipelock's SSRF guard is weakened beyond what the host context asked "
            f"({PIPELOCK_TRUSTED_HOSTS_ENV}): " + "; ".join(problems))
