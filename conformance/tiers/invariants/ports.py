"""Invariant properties for PORT-LOOPBACK, PORT-EGRESS-ONLY-WHEN-ROUTED."""

from __future__ import annotations

from hypothesis import given

from ... import strategies as bst
from ...markers import clause
from ...recording import parse_publish, prog, publish_all_flags, publish_values
from .facts import EGRESS_PORT, PIPELOCK_PORT
from .support import _LAUNCH, _fit, _launched, _recorded, _routed, _show
from .topology import _reaches, _topology


class PortInvariants:
    """PORT-LOOPBACK, PORT-EGRESS-ONLY-WHEN-ROUTED."""

    # -- PORT-LOOPBACK / PORT-EGRESS-ONLY-WHEN-ROUTED ------------------------------------

    @clause("PORT-LOOPBACK", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2))
    def test_published_ports_bind_loopback_only(self, backend, case):
        case = _fit(backend, case)
        with _recorded(backend, case) as rec:
            _launched(rec)
            stops = {rec.plan.bundle_image_ref, rec.plan.agent_image_ref}
            for argv in rec.runs():
                if prog(argv) not in ("docker", "podman", "nerdctl"):
                    continue
                for value in publish_values(argv, stop_at=stops):
                    p = parse_publish(value)
                    assert p.loopback, (
                        f"port {p.container_port} is published on "
                        f"{p.host_ip or 'every interface'} ({value!r}), not host loopback: "
                        f"{rec.normalise(_show(argv))}")
                flags = publish_all_flags(argv, stop_at=stops)
                assert not flags, (f"{flags} exposes every port on the host: "
                                   f"{rec.normalise(_show(argv))}")

    @clause("PORT-EGRESS-ONLY-WHEN-ROUTED", tier="invariant")
    @_LAUNCH
    @given(case=bst.bottle_cases(max_routes=2, max_upstreams=2))
    def test_agent_reaches_egress_iff_routed(self, backend, case):
        case = _fit(backend, case)
        spec = case[0]
        with _recorded(backend, case) as rec:
            _launched(rec)
            containers, machine = _topology(rec)
        egress, why_e = _reaches(containers, machine, "egress", EGRESS_PORT)
        pipelock, why_p = _reaches(containers, machine, "pipelock", PIPELOCK_PORT)
        if _routed(spec):
            assert egress, f"routed bottle, but the agent cannot reach egress: {why_e}"
            assert not pipelock, f"routed bottle, but the agent can reach pipelock: {why_p}"
        else:
            assert pipelock, f"unrouted bottle, but the agent cannot reach pipelock: {why_p}"
            assert not egress, f"unrouted bottle, but the agent can reach egress: {why_e}"
