"""Snapshot-tier checks for PROV-CA."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from ...recording import (
    RunawayLaunch,
    created_resource,
    is_guest_copy,
    is_guest_exec,
    mentions,
    mount_pairs,
    removed_resources,
)
from ...scenarios import Scenario, scenario_params
from .facts import CA_GUEST_DIR, FIRST_HOP_CA_MOUNT
from .readers import _always_failing_ca, as_node, launched, show


class CaSnapshots:
    """PROV-CA."""

    # -- PROV-CA ---------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CA"))
    def test_ca_one_copy_one_shell(self, backend, scenario: Scenario, bottle_recorder):
        """One copy into the CA dir, then exactly one root `sh -c` with chown,
        chmod and update-ca-certificates."""
        rec = launched(bottle_recorder(scenario))
        updates = [(i, c.argv) for i, c in rec.indexed()
                   if c.kind == "run" and mentions(c.argv, "update-ca-certificates")]
        assert len(updates) == 1, (
            f"expected exactly one command running update-ca-certificates, saw "
            f"{len(updates)}: " + "; ".join(show(rec, a) for _, a in updates))
        at, argv = updates[0]
        sh = next((j for j in range(len(argv) - 2)
                   if PurePosixPath(argv[j]).name in ("sh", "bash", "ash", "dash")
                   and argv[j + 1] == "-c"), None)
        assert sh is not None, (
            f"update-ca-certificates must run inside one `sh -c` (one exec round trip): "
            f"{show(rec, argv)}")
        script = argv[sh + 2]
        for step in ("chown", "chmod", "update-ca-certificates"):
            assert re.search(rf"\b{step}\b", script), (
                f"the CA `sh -c` lacks {step} (chown, chmod and update-ca-certificates "
                f"belong in the one round trip): {script!r}")
        assert not as_node(argv, sh), (
            f"update-ca-certificates must run as root, not node: {show(rec, argv)}")
        # Only commands that reach into the guest count: an `-e VAR=<CA path>`
        # on the guest's create names the path, it copies nothing.
        touching = [(i, c.argv) for i, c in rec.indexed()
                    if c.kind == "run" and i != at
                    and (is_guest_copy(c.argv) or is_guest_exec(c.argv))
                    and any(CA_GUEST_DIR in tok for tok in c.argv)]
        before = [a for i, a in touching if i < at]
        assert len(before) == 1, (
            f"expected exactly one copy of the CA into {CA_GUEST_DIR} before "
            f"update-ca-certificates, saw {len(before)}: "
            + ("; ".join(show(rec, a) for a in before) or "none"))
        after = [a for i, a in touching if i > at]
        assert not after, (
            f"commands touch {CA_GUEST_DIR} after update-ca-certificates (an extra round "
            "trip): " + "; ".join(show(rec, a) for a in after))

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CA-SELECT", tier="snapshot"))
    def test_ca_trusts_first_hop(self, backend, scenario: Scenario, bottle_recorder):
        """The CA copied into the guest is the one mounted into the first hop
        (/etc/egress/ca.pem when routed, else /etc/pipelock/ca.pem)."""
        rec = launched(bottle_recorder(scenario))
        copies = [a for a in rec.runs("launch")
                  if is_guest_copy(a) and any(CA_GUEST_DIR in t for t in a)]
        assert len(copies) == 1, (
            f"expected one guest copy into {CA_GUEST_DIR}, saw {len(copies)}: "
            + "; ".join(show(rec, a) for a in copies))
        argv = copies[0]
        dest = next(i for i, t in enumerate(argv) if CA_GUEST_DIR in t)
        source = argv[dest - 1]
        hop = rec.plan.first_hop
        targets = sorted({dst for a in rec.runs() for src, dst in mount_pairs(a) if src == source})
        assert FIRST_HOP_CA_MOUNT[hop] in targets, (
            f"the guest trusts {rec.normalise(source)}, mounted at {targets or 'nowhere'}; "
            f"with first hop {hop} it must be the CA mounted at {FIRST_HOP_CA_MOUNT[hop]}")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CA-ONE-ADDED"))
    def test_ca_without_one_added_fails_and_cleans_up(self, backend, scenario: Scenario,
                                                      bottle_recorder):
        """update-ca-certificates answering '0 added' fails the launch with a
        message about the CA, and every resource launch created is removed."""
        rec = bottle_recorder(scenario, script=_always_failing_ca)
        assert rec.error is not None, (
            "launch succeeded although update-ca-certificates reported '0 added' "
            "(the guest would not trust the proxy CA, silently)")
        assert rec.error_phase == "launch" and isinstance(rec.error, Exception) \
            and not isinstance(rec.error, RunawayLaunch), rec.describe_error()
        message = str(rec.error)
        assert re.search(r"update-ca-certificates|1 added|\bCA\b|certificate", message, re.I), (
            f"the launch error does not say the CA step failed: {rec.describe_error()}")
        leftover = []
        calls = rec.indexed()
        for i, call in calls:
            res = call.kind == "run" and created_resource(call.argv)
            if not res:
                continue
            gone = any(c.kind == "run" and j > i and res in removed_resources(c.argv)
                       for j, c in calls)
            if not gone:
                leftover.append(f"{res.kind} {res.name}")
        assert not leftover, (
            f"after the failed launch these were created and never removed: {leftover}")
        state = Path(rec.plan.state_dir)
        assert not state.exists(), (
            f"the state dir {rec.normalise(str(state))} is left behind after the failed launch")
