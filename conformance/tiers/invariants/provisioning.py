"""Invariant properties for PROV-CA-SELECT, PROV-GITUSER, PROV-GITGATE."""

from __future__ import annotations

import os

from hypothesis import given

from ... import strategies as bst
from ...markers import clause
from ...recording import Recording, is_guest_copy, mount_pairs, subcommand
from .facts import CA_GUEST_FILE, EGRESS_CA_MOUNT, GIT_GATE_PORT, PIPELOCK_CA_MOUNT
from .support import (
    _LAUNCH,
    _fit,
    _git_config_calls,
    _launched,
    _recorded,
    _routed,
    _show,
    _node_problem,
)
from .topology import _topology, relay_addresses


class ProvisionInvariants:
    """PROV-CA-SELECT, PROV-GITUSER, PROV-GITGATE."""

    # -- provisioning ------------------------------------------------------------------

    @clause("PROV-CA-SELECT", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2, max_upstreams=2))
    def test_guest_trusts_the_first_hops_ca(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            mounted: dict[str, set[str]] = {}
            for argv in rec.runs("launch"):
                for src, dst in mount_pairs(argv):
                    mounted.setdefault(dst, set()).add(os.path.realpath(src))
            copies = [a for a in rec.runs("launch")
                      if is_guest_copy(a) and a[-1].endswith(":" + CA_GUEST_FILE)]
            assert len(copies) == 1, (f"expected one copy of a CA to {CA_GUEST_FILE}, found "
                                      f"{len(copies)}")
            copied = os.path.realpath(copies[0][-2])
            which, target = (("egress", EGRESS_CA_MOUNT) if _routed(spec)
                             else ("pipelock", PIPELOCK_CA_MOUNT))
            want = mounted.get(target, set())
            assert want, f"no CA is mounted at {target} for {which} (mounts: {sorted(mounted)})"
            assert copied in want, (
                f"the guest was given {rec.normalise(copied)}, but the first hop is {which}, "
                f"whose CA is {rec.normalise(sorted(want)[0])}")

    @clause("PROV-GITUSER", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=1, max_upstreams=2))
    def test_one_git_user_config_per_set_field(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        want = [(f"user.{k}", v) for k, v in (("name", spec.git_user.name),
                                                ("email", spec.git_user.email)) if v]
        with _recorded(backend, case) as rec:
            _launched(rec)
            calls = _git_config_calls(rec, "user.")
            got = [(key, value) for _, _, key, value in calls]
            assert sorted(got) == sorted(want), (
                f"git config --global user.* calls {got}, expected {want} (one per set field)")
            for argv, at, _, _ in calls:
                why = _node_problem(argv, at)
                assert why is None, f"git user config runs wrongly: {why}: {_show(argv)}"

    @clause("PROV-GITGATE")
    @_LAUNCH
    @given(case=bst.bottle_cases(with_upstreams=True, max_routes=1))
    def test_every_upstream_rewrites_to_the_gate(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            calls = [(argv, at, key, value) for argv, at, key, value in _git_config_calls(rec, "url.")
                     if key.endswith(".insteadOf")]
            gates = self._gate_addresses(rec)
        assert len(calls) == len(spec.upstreams), (
            f"{len(calls)} insteadOf rewrites for {len(spec.upstreams)} upstreams: "
            f"{[(k, v) for _, _, k, v in calls]}")
        assert gates, "no git-gate address the agent can reach was found in the launch"
        for u in spec.upstreams:
            mine = [(argv, at, key) for argv, at, key, value in calls if value == u.url
                    and key.endswith(f"/{u.name}.git.insteadOf")]
            assert len(mine) == 1, (f"upstream {u.name!r} ({u.url!r}) has {len(mine)} insteadOf "
                                    f"rewrites, expected 1: {[(k, v) for _, _, k, v in calls]}")
            argv, at, key = mine[0]
            gate = key[len("url."):-len(f"/{u.name}.git.insteadOf")]
            assert gate.rstrip("/") in gates, (
                f"upstream {u.name!r} is rewritten to {gate!r}, not to a git-gate address "
                f"the agent reaches ({sorted(gates)})")
            why = _node_problem(argv, at)
            assert why is None, f"insteadOf config runs wrongly: {why}: {_show(argv)}"

    @staticmethod
    def _gate_addresses(rec: Recording) -> set[str]:
        """git:// addresses at which the agent reaches git-gate: a network
        alias of the git-gate container on the agent's network (port 9418),
        or the host address and port `docker port` reported for 9418, or a
        smolvm guest's loopback relay to git-gate's mounted socket."""
        containers, machine = _topology(rec)
        out: set[str] = set()
        agent_nets = set().union(*(c.networks for c in containers.values() if c.is_agent))
        for c in containers.values():
            if "git-gate" in c.daemons and c.networks & agent_nets:
                for alias in c.aliases | {c.name}:
                    out |= {f"git://{alias}:{GIT_GATE_PORT}", f"git://{alias}"}
        for i, call in rec.indexed("launch"):
            if call.kind == "run" and subcommand(call.argv) == ("port",) and any(
                    t.split("/")[0] == str(GIT_GATE_PORT) for t in call.argv[3:]):
                line = rec.runner.stdout_of(i).strip().splitlines()
                if line:
                    out.add(f"git://{line[0].strip()}")
        out |= {f"git://{a}" for a in relay_addresses(rec, machine, "git-gate")}
        return out
