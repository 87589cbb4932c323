"""Snapshot-tier checks for LAUNCH-*."""

from __future__ import annotations

import pytest

from bottle_api.runner import READY, RecordingRunner

from ...outcomes import not_supported
from ...recording import (
    Recording,
    RunawayLaunch,
    contains_seq,
    guest_target,
    is_guest_copy,
    is_guest_exec,
    mentions,
    mount_pairs,
    prog,
    reply_when,
)
from ...scenarios import Scenario, scenario_params
from .facts import EGRESS_CA_MOUNTS, READY_BOUND_S, READY_FAILURES
from .readers import first_index, launch_failed, launched, show


class LaunchSnapshots:
    """LAUNCH-*."""

    # -- LAUNCH ----------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-READY"))
    def test_no_fixed_sleep(self, backend, scenario: Scenario, bottle_recorder):
        """No time.sleep outside the runner, and no runner.sleep right after
        a command that succeeded (a wait nothing asked for)."""
        rec = launched(bottle_recorder(scenario))
        assert not rec.direct_sleeps, (
            f"the backend called time.sleep({', '.join(f'{s:g}' for s in rec.direct_sleeps)}) "
            "directly: wait with runner.sleep inside a bounded poll instead")
        calls = rec.indexed()
        for (_, prev), (i, call) in zip(calls, calls[1:]):
            if call.kind == "sleep" and prev.kind == "run" and prev.returncode == 0:
                raise AssertionError(
                    f"sleep {call.seconds:g} right after a command that succeeded "
                    f"({show(rec, prev.argv)}): a fixed wait, not a poll")

    @staticmethod
    def _ready_probe(rec: Recording) -> tuple[str, ...]:
        """The launch's readiness probe: the command the backend marked
        ``purpose=READY`` (`bottle_api.runner.READY`). The clause asks for
        the mark, so a launch that marks none fails (an unmarked probe
        cannot be told from a provisioning exec); with no guest command of
        a tool the suite reads either, NOT_SUPPORTED, never PASSED."""
        marked = [c.argv for _, c in rec.indexed("launch")
                  if c.kind == "run" and c.purpose == READY]
        if marked:
            assert len(set(marked)) == 1, (
                "more than one command is marked purpose=READY; mark the one readiness "
                "probe: " + "; ".join(show(rec, a) for a in dict.fromkeys(marked)))
            return marked[0]
        i = first_index(rec, "launch", lambda a: is_guest_exec(a) or is_guest_copy(a))
        if i is None:
            not_supported("no command is marked purpose=READY and no guest exec of a known "
                          "tool (docker, podman, nerdctl, smolvm) was recorded: mark the "
                          "readiness probe with runner.run(..., purpose=READY)")
        raise AssertionError(
            f"no command of the launch is marked purpose=READY, so nothing shows the guest "
            f"was polled for readiness before provisioning (the first guest command is "
            f"{show(rec, rec.runner.calls[i].argv)}): mark the readiness probe with "
            "runner.run(..., purpose=READY)")

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-READY"))
    def test_nothing_reaches_the_guest_before_ready(self, backend, scenario: Scenario,
                                                   bottle_recorder):
        """No exec or copy into the probed guest (the CA copy above all)
        runs before the first readiness probe."""
        rec = launched(bottle_recorder(scenario))
        probe = self._ready_probe(rec)
        target = guest_target(probe)
        start = next(i for i, c in rec.indexed("launch") if c.kind == "run" and c.argv == probe)
        early = [c.argv for i, c in rec.indexed("launch") if i < start and c.kind == "run"
                 and (is_guest_exec(c.argv) or is_guest_copy(c.argv))
                 and (target is None or guest_target(c.argv) == target)]
        assert not early, (
            "commands reach the guest before its first readiness probe "
            f"({show(rec, probe)}): " + "; ".join(show(rec, a) for a in early))

    @pytest.mark.parametrize("scenario", scenario_params(
        "LAUNCH-READY", names=("minimal-claude", "supervise-prompt-skills")))
    def test_readiness_failures_survived(self, backend, scenario: Scenario, bottle_recorder):
        """The first guest exec (the readiness probe) failing a few times is
        polled through, with a runner.sleep between tries and no other guest
        command until it succeeds."""
        probe = self._ready_probe(launched(bottle_recorder(scenario)))

        def warming(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: argv == probe, returncode=1,
                       stderr="exec channel not ready", times=READY_FAILURES)

        rec = bottle_recorder(scenario, script=warming)
        assert not launch_failed(rec), (
            f"launch gave up after the first guest exec failed {READY_FAILURES} times "
            f"({show(rec, probe)}): poll readiness instead of assuming it: "
            f"{rec.describe_error()}")
        assert not rec.direct_sleeps, "the readiness wait used time.sleep, not runner.sleep"
        tries = [(i, c) for i, c in rec.indexed("launch") if c.kind == "run" and c.argv == probe]
        assert len(tries) >= READY_FAILURES + 1, (
            f"the probe ran {len(tries)} times; {READY_FAILURES} failures need "
            f"{READY_FAILURES + 1} tries")
        first_ok = next(i for i, c in tries if c.returncode == 0)
        window = [(i, c) for i, c in rec.indexed("launch") if tries[0][0] <= i < first_ok]
        early = [c.argv for _, c in window if c.kind == "run" and c.argv != probe
                 and (is_guest_exec(c.argv) or is_guest_copy(c.argv))]
        assert not early, (
            "guest commands ran before the guest answered: "
            + "; ".join(show(rec, a) for a in early))
        for (a, _), (b, _) in zip(tries, tries[1:]):
            if a >= first_ok:
                break
            assert any(rec.runner.calls[k].kind == "sleep" for k in range(a + 1, b)), (
                "the readiness probe is retried without runner.sleep in between "
                "(a busy loop)")

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-READY",
                                                         names=("minimal-claude",)))
    def test_readiness_wait_is_bounded(self, backend, scenario: Scenario, bottle_recorder):
        """A guest that never answers fails the launch after a bounded wait."""
        probe = self._ready_probe(launched(bottle_recorder(scenario)))

        def dead(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: argv == probe, returncode=1,
                       stderr="exec channel not ready")

        rec = bottle_recorder(scenario, script=dead)
        assert not isinstance(rec.error, RunawayLaunch), (
            f"launch never gave up on a guest that does not answer: {rec.describe_error()}")
        assert rec.error is not None, "launch succeeded although the guest never answered"
        waited = sum(c.seconds for c in rec.calls if c.kind == "sleep") + sum(rec.direct_sleeps)
        assert 0 < waited <= READY_BOUND_S, (
            f"the readiness wait slept {waited:g}s in total before failing; expected a "
            f"bounded poll (0 < total <= {READY_BOUND_S:g}s)")

    @pytest.mark.parametrize("scenario", scenario_params(
        "LAUNCH-READY", names=("minimal-claude", "supervise-prompt-skills")))
    def test_readiness_probe_targets_the_provisioned_guest(self, backend, scenario: Scenario,
                                                          bottle_recorder):
        """The readiness probe waits for the guest that provisioning then
        uses: the CA copy and the update-ca-certificates exec (and every
        later copy into a guest) address the probe's guest, so a probe of a
        bundle container cannot stand in for the agent's readiness."""
        rec = launched(bottle_recorder(scenario))
        probe = self._ready_probe(rec)
        target = guest_target(probe)
        if target is None:
            not_supported(f"cannot read which guest the readiness probe addresses (not a "
                          f"docker/podman/nerdctl/smolvm exec): {show(rec, probe)}")
        start = next(i for i, c in rec.indexed("launch") if c.kind == "run" and c.argv == probe)
        provisioning = [c.argv for i, c in rec.indexed("launch") if i > start and c.kind == "run"
                        and (is_guest_copy(c.argv) or (is_guest_exec(c.argv)
                             and mentions(c.argv, "update-ca-certificates")))]
        assert provisioning, (
            f"no provisioning (a copy into the guest, update-ca-certificates) follows the "
            f"readiness probe {show(rec, probe)}")
        elsewhere = [(guest_target(a), a) for a in provisioning if guest_target(a) != target]
        assert not elsewhere, (
            f"the readiness probe waits for {target!r} but provisioning then uses another "
            "guest: " + "; ".join(f"{t!r}: {show(rec, a)}" for t, a in elsewhere))

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-CA-WHEN-ROUTED"))
    def test_egress_ca_only_when_routed(self, backend, scenario: Scenario, bottle_recorder):
        """Unrouted: no egress CA is generated or mounted. Routed: egress has
        its CA mounted (it cannot intercept without one)."""
        rec = launched(bottle_recorder(scenario))
        mounted = [(a, dst) for a in rec.runs() for _, dst in mount_pairs(a)
                   if dst in EGRESS_CA_MOUNTS]
        if rec.plan.routed:
            assert mounted, (f"the bottle is routed but no CA is mounted at "
                             f"{EGRESS_CA_MOUNTS[0]} for egress")
            return
        assert not mounted, (
            "the bottle is not routed, yet an egress CA is mounted: "
            + "; ".join(show(rec, a) for a, _ in mounted))
        made = [a for a in rec.runs()
                if (prog(a) == "openssl" and "-x509" in a or contains_seq(a, ["tls", "init"]) >= 0)
                and any("egress" in t for t in a)]
        assert not made, (
            "the bottle is not routed, yet an egress CA is generated: "
            + "; ".join(show(rec, a) for a in made))
