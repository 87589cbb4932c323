"""Snapshot-tier checks for PORT-* and LAUNCH-PROXY-ENV."""

from __future__ import annotations

import re

import pytest

from bottle_api.plan import EGRESS, PIPELOCK, PORTS

from ...recording import engine_topology, env_assignments, publish_all_flags
from ...scenarios import Scenario, scenario_params
from .readers import agent_env_argvs, daemon_of, launched, port_map, published, show


class PortSnapshots:
    """PORT-* and LAUNCH-PROXY-ENV."""

    # -- PORT ------------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PORT-LOOPBACK", tier="snapshot"))
    def test_published_ports_on_loopback(self, backend, scenario: Scenario, bottle_recorder):
        """Every -p/--publish binds a loopback address; no -P, no host network."""
        rec = launched(bottle_recorder(scenario))
        for argv, pub in published(rec):
            assert pub.loopback, (
                f"port {pub.container_port} is published as {pub.raw!r}, which binds "
                f"{pub.host_ip or 'every host interface'}; bind 127.x.y.z or [::1]: "
                f"{show(rec, argv)}")
        images = {rec.plan.agent_image_ref, rec.plan.bundle_image_ref}
        for argv in rec.runs():
            bad = publish_all_flags(argv, stop_at=images)
            assert not bad, (
                f"{bad} exposes ports on every host interface: {show(rec, argv)}")

    @pytest.mark.parametrize("scenario",
                             scenario_params("PORT-EGRESS-ONLY-WHEN-ROUTED", tier="snapshot"))
    def test_only_first_hop_reachable(self, backend, scenario: Scenario, bottle_recorder):
        """Routed: pipelock's port is not published, shares no engine network
        with the agent, and no agent env value dials it; unrouted: the same
        for egress."""
        rec = launched(bottle_recorder(scenario))
        hop = rec.plan.first_hop
        other = PIPELOCK if hop == EGRESS else EGRESS
        why = ("routed: pipelock stays bundle-internal, egress is the only way out"
               if hop == EGRESS else "not routed: the agent dials pipelock, never egress")
        for argv, pub in published(rec):
            assert pub.container_port != str(PORTS[other]), (
                f"{other}'s port {PORTS[other]} is published ({pub.raw}) ({why}): "
                f"{show(rec, argv)}")
        nets, daemons, agents = engine_topology(
            rec.runs(), agent_image=rec.plan.agent_image_ref,
            agent_argvs=[rec.agent_argvs[t] for t in (False, True) if t in rec.agent_argvs])
        for agent in agents:
            for container, runs_here in daemons.items():
                shared = nets.get(agent, set()) & nets.get(container, set())
                if other in runs_here and hop not in runs_here:
                    assert not shared, (
                        f"{other} (container {container}) shares network(s) {sorted(shared)} "
                        f"with the agent container {agent} ({why})")
        ports = port_map(rec)
        for argv in agent_env_argvs(rec):
            for name, value in env_assignments(argv):
                reaches = [daemon_of(v, ports) for v in re.split(r"[,\s]+", value) if v]
                assert other not in reaches, (
                    f"the agent's env {name}={rec.normalise(value)} points at {other} "
                    f"({why}): {show(rec, argv)}")

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-PROXY-ENV", tier="snapshot"))
    def test_proxy_env_points_at_first_hop(self, backend, scenario: Scenario, bottle_recorder):
        """HTTPS_PROXY and HTTP_PROXY reach the plan's first hop (by alias,
        container port, or the host port `docker port` discovered)."""
        rec = launched(bottle_recorder(scenario), agent=True)
        hop, ports = rec.plan.first_hop, port_map(rec)
        for name in ("HTTPS_PROXY", "HTTP_PROXY"):
            values = [(argv, v) for argv in agent_env_argvs(rec)
                      for k, v in env_assignments(argv) if k == name]
            assert values, (
                f"{name} is not set on any argv that starts or execs the agent "
                f"(looked for {name}=... in the agent's create/run/exec commands)")
            for argv, value in values:
                seen = daemon_of(value, ports)
                assert seen == hop, (
                    f"{name}={rec.normalise(value)} reaches {seen or 'no bundle daemon'}, "
                    f"but the first hop is {hop} "
                    f"({'routes are declared' if hop == EGRESS else 'no routes'}): "
                    f"{show(rec, argv)}")
