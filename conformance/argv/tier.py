"""Snapshot-tier tests of the static argv clauses (SMOLVM-*, DOCKER-ARGV,
GUEST-*, PORT-NO-FIXED, SMOLVM-NO-NET, SMOLVM-SOCKETS).

Each test records every scenario the backend supports (the snapshot tier's
``bottle_recorder``) and hands the argvs to one `conformance.argv.checks`
function. A check that cannot read the launch (no such tool, a vocabulary
the suite lacks, no agent exec it can parse) makes the test NOT_SUPPORTED
with that reason: a clause is never PASSED on zero evidence.
"""

from __future__ import annotations

import os
import stat

import pytest

from ..recording import Recording, reply_when
from ..outcomes import not_supported
from ..markers import clause
from ..scenarios import SCENARIOS, Scenario, scenario_params
from ..selection import identify
from . import checks
from .checks import Verdict


def _argvs(rec: Recording) -> list[tuple[str, ...]]:
    return rec.runs() + [rec.agent_argvs[t] for t in (False, True) if t in rec.agent_argvs]


def _launched(rec: Recording) -> Recording:
    __tracebackhide__ = True
    assert rec.error is None or rec.error_phase in ("agent_argv", "close"), (
        f"recorded launch of scenario {rec.scenario!r} failed, so nothing can be checked: "
        f"{rec.describe_error()}")
    return rec


def _judge(rec: Recording, verdict: Verdict) -> None:
    __tracebackhide__ = True
    if verdict.na is not None:
        not_supported(verdict.na)
    assert not verdict.problems, (
        f"scenario {rec.scenario!r}: " + "; ".join(rec.normalise(p) for p in verdict.problems[:4])
        + (f" (and {len(verdict.problems) - 4} more)" if len(verdict.problems) > 4 else ""))


def _judge_all(verdict: Verdict) -> None:
    __tracebackhide__ = True
    if verdict.na is not None:
        not_supported(verdict.na)
    assert not verdict.problems, "; ".join(verdict.problems)


def _kind(path: str) -> str:
    try:
        st = os.lstat(path)
    except OSError:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if stat.S_ISREG(st.st_mode) else "other"


class ArgvTier:
    """The static argv clauses, over every recorded scenario."""

    # -- smolvm ----------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("SMOLVM-ARGV"))
    def test_smolvm_argv_parses_under_a_supported_version(self, backend, scenario: Scenario,
                                                          bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_smolvm_grammar(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("SMOLVM-FROM-SIDECAR"))
    def test_smolvm_from_is_a_pack_sidecar(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_from_sidecar(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("SMOLVM-VERSION-FIRST"))
    def test_smolvm_version_checked_before_create(self, backend, scenario: Scenario,
                                                  bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_version_first(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("SMOLVM-CP-FILE"))
    def test_smolvm_cp_copies_regular_files(self, backend, scenario: Scenario, bottle_recorder):
        kinds: dict[str, str] = {}

        def observe(argv) -> bool:
            # Called as each command runs: what is the upload source right now?
            for _, src in checks.cp_sources([argv]):
                kinds.setdefault(src, _kind(src))
            return False  # never answers; the backend's own script does

        rec = _launched(bottle_recorder(scenario, script=lambda runner, plan: reply_when(
            runner, observe)))
        _judge(rec, checks.check_cp_regular_file(_argvs(rec), kinds))

    # -- profiles (issue 18) -----------------------------------------------------

    @clause("PROFILE-DECLARED")
    def test_declared_profiles_are_the_driven_ones(self, backend, bottle_recorder):
        # Every scenario the backend's capabilities admit, taken together:
        # one that drives a tool in only some scenarios still drives it.
        declared = identify(backend).profiles
        caps = identify(backend).capabilities
        launches = {}
        for scenario in SCENARIOS.values():
            if scenario.needs <= caps:
                launches[scenario.name] = _argvs(_launched(bottle_recorder(scenario)))
        if not launches:
            not_supported("no scenario applies to the backend's capabilities")
        _judge_all(checks.check_profiles_declared(launches, sorted(declared)))

    # -- docker family ----------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("DOCKER-ARGV"))
    def test_engine_argv_parses(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_docker_grammar(_argvs(rec)))

    # -- guest confinement --------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("GUEST-NET-INTERNAL"))
    def test_agent_networks_internal(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_networks_internal(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("GUEST-NET-NO-HOST-ADDR"))
    def test_agent_networks_give_host_no_address(self, backend, scenario: Scenario,
                                                 bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_networks_no_host_address(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("GUEST-NO-PRIVILEGE"))
    def test_agent_unprivileged(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_no_privilege(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("GUEST-NO-HOST-NS"))
    def test_agent_no_host_namespaces(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_no_host_namespaces(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("GUEST-NO-HOST-MOUNTS"))
    def test_agent_no_host_mounts(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        # What the backend declares (Bottle.guest_mounts) is allowed, as
        # LIVE-CONFINE allows it in the running guest.
        declared = tuple(rec.bottle.guest_mounts()) if rec.bottle is not None else ()
        _judge(rec, checks.check_no_host_mounts(_argvs(rec), declared))

    @pytest.mark.parametrize("scenario", scenario_params("GUEST-NO-HOST-GATEWAY"))
    def test_agent_no_host_gateway(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_no_host_gateway(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("PORT-NO-FIXED"))
    def test_publishes_ephemeral_loopback(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_publish_ephemeral_loopback(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("SMOLVM-NO-NET"))
    def test_smolvm_guest_has_no_network(self, backend, scenario: Scenario, bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_smolvm_no_net(_argvs(rec)))

    @pytest.mark.parametrize("scenario", scenario_params("SMOLVM-SOCKETS"))
    def test_smolvm_sockets_are_the_agent_facing_daemons(self, backend, scenario: Scenario,
                                                         bottle_recorder):
        rec = _launched(bottle_recorder(scenario))
        _judge(rec, checks.check_smolvm_sockets(_argvs(rec), rec.plan))

