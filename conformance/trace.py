"""Traceability: per clause, the suite's tests that check it and the
reference functions that implement it.

Tests are read from the umbrella class itself (`clause_tests`): every
``test_*`` method `BackendConformance` exposes, with the ``clause`` marks it
carries directly or on its parametrize cases. `shadowed_tests` names a tier
method another tier's method of the same name hides (pytest collects one
test per name, so a shadowed test never runs).

The reference side is data (`REFERENCE`): ``"module:qualname"`` strings,
never imported here (the suite does not import ``bottle_ref``); a unit test
resolves every name. ``bottle-conformance contract`` renders both.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping

from .clauses import TIERS
from .markers import MARKER, resolve

# Clause ID -> where the reference implements it ("package.module:Qual.name").
# The bundle daemons (bottle_bundle) are part of the reference implementation.
_DOCKER = "bottle_ref.backends.docker"
_SMOL = "bottle_ref.backends.smolmachines"
REFERENCE: Mapping[str, tuple[str, ...]] = {
    "PLAN-PURE": ("bottle_ref.planning:build_plan", f"{_DOCKER}:DockerBackend.prepare",
                  f"{_SMOL}:SmolmachinesBackend.prepare"),
    "PLAN-HOP": ("bottle_ref.planning:auto_routes", "bottle_ref.planning:first_hop_for"),
    "PLAN-DAEMONS": ("bottle_ref.planning:daemons_for",),
    "LAUNCH-PACK-IN-LAUNCH": ("bottle_ref.planning:agent_image_ref",
                              f"{_SMOL}:SmolmachinesBackend.launch", f"{_SMOL}:docker_save_argv"),
    "SNAP-MATCH": (f"{_DOCKER}:DockerBackend.launch", f"{_SMOL}:SmolmachinesBackend.launch"),
    "EXEC-ABI": (f"{_DOCKER}:DockerBottle.agent_argv", f"{_SMOL}:SmolmachinesBottle.agent_argv"),
    "EXEC-USER": (f"{_DOCKER}:docker_exec_argv", f"{_SMOL}:SmolvmChannel.exec_argv"),
    "EXEC-TTY": (f"{_DOCKER}:docker_exec_argv", f"{_SMOL}:SmolmachinesBottle.agent_argv"),
    "EXEC-PTY-ABS": ("bottle_ref.pty_resize:main", f"{_SMOL}:SmolmachinesBottle.agent_argv"),
    "EXEC-RESUME": ("bottle_ref.resume:resume_with_fallback",),
    "SECRET-ARGV": ("bottle_ref.egress:token_slot", f"{_SMOL}:token_slots"),
    "SECRET-FILES": ("bottle_ref.state:write_state", f"{_DOCKER}:_bring_up"),
    "SECRET-PLAN": ("bottle_api.plan:to_json", "bottle_api.plan:to_dict"),
    "PORT-LOOPBACK": (f"{_DOCKER}:_bring_up", f"{_SMOL}:bundle_run_argv"),
    "PORT-EGRESS-ONLY-WHEN-ROUTED": (f"{_DOCKER}:agent_facing_daemons", f"{_SMOL}:socket_daemons"),
    "LAUNCH-PROXY-ENV": (f"{_DOCKER}:agent_env", f"{_SMOL}:agent_env"),
    "CRED-EXP": ("bottle_ref.credentials:codex_placeholder", "bottle_ref.jwt:exp_of"),
    "CRED-SHAPE": ("bottle_ref.credentials:codex_placeholder",
                   "bottle_ref.credentials:claude_placeholder"),
    "CRED-CA": ("bottle_ref.planning:build_plan", f"{_DOCKER}:agent_env", f"{_SMOL}:agent_env"),
    "CRED-CA-CLAUDE": ("bottle_ref.planning:build_plan", f"{_DOCKER}:agent_env",
                       f"{_SMOL}:agent_env"),
    "PIPELOCK-PASS": ("bottle_ref.planning:pipelock_hosts",),
    "PIPELOCK-PASS-CODEX": ("bottle_ref.credentials:pipelock_extra_hosts",
                            "bottle_ref.planning:pipelock_hosts"),
    "PIPELOCK-SCHEMA": ("bottle_ref.pipelock:build_config", "bottle_ref.pipelock:render_config"),
    "PIPELOCK-ENFORCE": ("bottle_ref.pipelock:render_config",
                         "bottle_ref.pipelock:wildcard_breadth_error",
                         "bottle_ref.planning:pipelock_hosts"),
    "PROV-CA": ("bottle_ref.provision:provision_ca",),
    "PROV-CA-ONE-ADDED": ("bottle_ref.provision:provision_ca",),
    "PROV-CA-SELECT": (f"{_DOCKER}:_bring_up", f"{_SMOL}:SmolmachinesBackend.launch"),
    "PROV-GITUSER": ("bottle_ref.provision:provision_git",),
    "PROV-GITGATE": ("bottle_ref.git_gate:insteadof_pairs", "bottle_ref.git_gate:render_gitconfig"),
    "PROV-GIT-CWD": ("bottle_ref.provision:provision_git",),
    "PROV-PROMPT": ("bottle_ref.provision:provision_prompt", f"{_DOCKER}:DockerBottle.agent_argv"),
    "PROV-SKILLS": ("bottle_ref.provision:provision_skills",),
    "PROV-MCP": ("bottle_ref.provision:provision_supervise", "bottle_ref.supervise:mcp_add_argv"),
    "PROV-MCP-USER": ("bottle_ref.provision:provision_supervise",),
    "LAUNCH-READY": ("bottle_api.runner:poll", f"{_DOCKER}:_bring_up",
                     f"{_SMOL}:ready_probe_argv"),
    "LAUNCH-MISSING-TOKEN": ("bottle_ref.egress:resolve_tokens", f"{_DOCKER}:missing_token_message"),
    "LAUNCH-CA-WHEN-ROUTED": ("bottle_ref.ca:ensure_ca", f"{_DOCKER}:_bring_up"),
    "LIVE-SMOKE": (f"{_DOCKER}:DockerBottle.exec", f"{_SMOL}:SmolmachinesBottle.exec"),
    "LIVE-LOOPBACK": (f"{_DOCKER}:_bring_up", f"{_SMOL}:machine_create_argv"),
    "LIVE-BYPASS": (f"{_DOCKER}:DockerBottle.internal_endpoints",
                    f"{_SMOL}:SmolmachinesBottle.internal_endpoints"),
    "LIVE-PIPELOCK": ("bottle_bundle.pipelock_proxy:PipelockSettings.from_config",
                      "bottle_bundle.pipelock_proxy:PipelockPolicy.allowed"),
    "LIVE-AGENT": ("bottle_ref.planning:pipelock_hosts", "bottle_ref.planning:auto_routes",
                   "bottle_bundle.egress_proxy:EgressInjector.header_for"),
    "LIVE-INTERACTIVE": ("bottle_ref.provision:provision_claude_config",
                         f"{_DOCKER}:DockerBottle.agent_argv"),
    "LIVE-AUTH": ("bottle_bundle.egress_proxy:EgressInjector.header_for",),
    # issue 15
    "LIVE-EGRESS-ONE-NAME": ("bottle_bundle.egress_proxy:decide",
                             "bottle_bundle.egress_proxy:EgressAddon.tls_clienthello"),
    "LIVE-NO-FRONTING": ("bottle_bundle.pipelock_proxy:PipelockPolicy.sni_mismatch",
                         "bottle_bundle.pipelock_proxy:PipelockPolicy.authority_mismatch",
                         "bottle_bundle.pipelock_proxy:PipelockAddon.request"),
    "LIVE-HOST-CANON": ("bottle_api.hostnames:canonical", "bottle_bundle.egress_proxy:decide"),
    "LIVE-ALLOWLIST-ONLY": ("bottle_bundle.pipelock_proxy:main",
                            "bottle_bundle.pipelock_proxy:PipelockPolicy.allowed"),
    # issue 15, second pass
    "LIVE-SSRF": ("bottle_bundle.pipelock_proxy:PipelockPolicy.ssrf",
                  "bottle_ref.planning:trusted_hosts"),
    "LIVE-CA-TRUST": ("bottle_ref.provision:provision_ca",),
    "LIVE-FAILCLOSED": (f"{_DOCKER}:DockerBottle.stop_daemon",
                        f"{_SMOL}:SmolmachinesBottle.stop_daemon"),
    "LIVE-TEARDOWN": (f"{_DOCKER}:DockerBottle.close", f"{_DOCKER}:DockerBottle.resources",
                      f"{_SMOL}:SmolmachinesBottle.close"),
    "LIVE-HOST": (f"{_DOCKER}:_bring_up", f"{_DOCKER}:agent_hardening_args"),
    "LIVE-ROUTES": (f"{_DOCKER}:_bring_up",),
    "LIVE-CONFINE": (f"{_DOCKER}:_bring_up",),
    # --- issue 20 ---
    "LIVE-DNS": (f"{_DOCKER}:_bring_up",),
    "LIVE-ENDPOINTS": (f"{_DOCKER}:_bring_up", f"{_DOCKER}:docker_addresses"),
    "LIVE-CA-KEY": ("bottle_ref.provision:provision_ca", "bottle_ref.ca:bottle_ca_certificates"),
    "LIVE-APART": (f"{_DOCKER}:_bring_up",),
    "TEARDOWN-OWN": (f"{_DOCKER}:DockerBottle.close", f"{_SMOL}:SmolmachinesBottle.close"),
    "TEARDOWN-IDEMPOTENT": (f"{_DOCKER}:DockerBottle.close",
                            f"{_SMOL}:SmolmachinesBottle.close"),
    "TEARDOWN-LOUD": (f"{_DOCKER}:DockerBottle.close", f"{_DOCKER}:remaining",
                      f"{_SMOL}:SmolmachinesBottle.close"),
    "SMOLVM-ARGV": (f"{_SMOL}:machine_create_argv", f"{_SMOL}:machine_delete_argv",
                    f"{_SMOL}:SmolvmChannel.exec_argv"),
    "SMOLVM-FROM-SIDECAR": (f"{_SMOL}:machine_create_argv",),
    "SMOLVM-CP-FILE": (f"{_SMOL}:SmolvmChannel.copy_argv",),
    "SMOLVM-VERSION-FIRST": (f"{_SMOL}:SmolmachinesBackend.launch",),
    "DOCKER-ARGV": (f"{_DOCKER}:_bring_up", f"{_DOCKER}:docker_exec_argv"),
    "GUEST-NET-INTERNAL": (f"{_DOCKER}:_bring_up",),
    "GUEST-NET-NO-HOST-ADDR": (f"{_DOCKER}:_bring_up",),
    "GUEST-NO-PRIVILEGE": (f"{_DOCKER}:_bring_up", f"{_DOCKER}:docker_exec_argv"),
    "GUEST-NO-HOST-NS": (f"{_DOCKER}:_bring_up",),
    "GUEST-NO-HOST-MOUNTS": (f"{_DOCKER}:_bring_up", f"{_SMOL}:machine_create_argv"),
    "GUEST-NO-HOST-GATEWAY": (f"{_DOCKER}:_bring_up",),
    "PORT-NO-FIXED": (f"{_SMOL}:bundle_run_argv", f"{_SMOL}:machine_create_argv"),
    # issue 14 item 5
    "PROV-CODEX-PROMPT": ("bottle_ref.provision:provision_codex_prompt",
                          "bottle_api.conventions:prompt_path_for"),
    "PROV-CODEX-SKILLS": ("bottle_ref.provision:provision_skills",
                          "bottle_api.conventions:skills_dir_for"),
    "PROV-CODEX-MCP": ("bottle_ref.provision:provision_supervise",
                       "bottle_ref.supervise:codex_mcp_add_argv"),


    # issue 16
    "SECRET-STDIN": (f"{_DOCKER}:_bring_up", f"{_SMOL}:bundle_run_argv"),
    "SECRET-ERRORS": (f"{_DOCKER}:missing_token_message", "bottle_api.runner:CommandError"),
    "TEARDOWN-STATE": ("bottle_ref.state:remove_state", f"{_DOCKER}:DockerBottle.close",
                       f"{_SMOL}:SmolmachinesBottle.close"),
    "PROV-WORKDIR": (f"{_DOCKER}:DockerBottle.agent_argv", f"{_SMOL}:SmolmachinesBottle.agent_argv"),
    "PROV-CRED-OWNER": ("bottle_ref.provision:provision_guest_files",),
    "PROV-CA-KEYS": ("bottle_ref.ca:ensure_ca", f"{_DOCKER}:_bring_up", f"{_SMOL}:bundle_run_argv"),


    "PROFILE-DECLARED": (f"{_DOCKER}:DockerBackend", f"{_SMOL}:SmolmachinesBackend"),


    # issue 16
    "LIVE-PRIVS": (f"{_DOCKER}:agent_hardening_args", f"{_DOCKER}:DockerBottle.guest_privileges"),
    "LIVE-ROOT-EXEC-CLEAN": (f"{_DOCKER}:docker_exec_argv", f"{_SMOL}:SmolvmChannel.exec_argv"),


    # --- issue 14 ---
    "SMOLVM-NO-NET": (f"{_SMOL}:machine_create_argv", f"{_SMOL}:machine_start_argv"),
    "SMOLVM-SOCKETS": (f"{_SMOL}:mount_socket_specs", f"{_SMOL}:socket_daemons"),
}


# The argv vocabularies the static tiers read (container engines, smolvm).
ARGV_VOCABULARIES: tuple[str, ...] = ("docker", "podman", "nerdctl", "smolvm")


def _umbrella() -> type:
    from .base import BackendConformance

    return BackendConformance


def tier_classes(cls: type | None = None) -> list[type]:
    """The classes in ``cls``'s MRO (default `BackendConformance`) that
    define ``test_*`` methods themselves, ``cls`` excluded."""
    cls = cls or _umbrella()
    return [k for k in cls.__mro__[1:]
            if k is not object and any(n.startswith("test_") for n in vars(k))]


def shadowed_tests(cls: type | None = None) -> list[str]:
    """``"Owner.test_x (hidden by Other.test_x)"`` for every test method of
    a base class that ``cls`` does not resolve to: pytest collects one test
    per name, so the hidden one never runs."""
    cls = cls or _umbrella()
    out = []
    for base in cls.__mro__[1:]:
        for name, fn in vars(base).items():
            if not name.startswith("test_"):
                continue
            seen = inspect.getattr_static(cls, name)
            if seen is not fn:
                owner = next(k for k in cls.__mro__ if name in vars(k))
                out.append(f"{base.__name__}.{name} (hidden by {owner.__name__}.{name})")
    return sorted(out)


def _marks_of(fn: object) -> Iterator[tuple[str, str | None, object]]:
    """``(clause id, tier or None, needs)`` of every clause mark on ``fn``
    and on its parametrize cases."""
    for mark in getattr(fn, "pytestmark", ()):
        if mark.name == MARKER and mark.args:
            yield mark.args[0], mark.kwargs.get("tier"), mark.kwargs.get("needs", ())
        elif mark.name == "parametrize" and len(mark.args) >= 2:
            for case in mark.args[1]:
                for sub in getattr(case, "marks", ()):
                    if sub.name == MARKER and sub.args:
                        yield sub.args[0], sub.kwargs.get("tier"), sub.kwargs.get("needs", ())


def clause_tests(cls: type | None = None) -> dict[tuple[str, str], tuple[str, ...]]:
    """``(clause id, tier) -> ("Owner.test_name", ...)`` for the tests ``cls``
    (default `BackendConformance`) collects, in name order."""
    cls = cls or _umbrella()
    out: dict[tuple[str, str], set[str]] = {}
    for name in dir(cls):
        if not name.startswith("test_"):
            continue
        fn = inspect.getattr_static(cls, name)
        owner = next(k for k in cls.__mro__ if name in vars(k))
        for cid, tier, needs in _marks_of(fn):
            mark = resolve(cid, tier, needs)
            out.setdefault((mark.clause.id, mark.tier), set()).add(f"{owner.__name__}.{name}")
    return {k: tuple(sorted(v)) for k, v in out.items()}


def uncovered(pairs: Iterable[tuple[str, str]],
              tests: Mapping[tuple[str, str], object]) -> list[tuple[str, str]]:
    """The ``(clause, tier)`` pairs of ``pairs`` with no test in ``tests``."""
    return [p for p in pairs if p not in tests]


def declared_pairs(clauses: Iterable) -> list[tuple[str, str]]:
    """Every ``(clause id, tier)`` the registry declares, in tier order."""
    return [(c.id, t) for c in clauses for t in TIERS if t in c.tiers]
