"""Snapshot-tier checks for PROV-MCP."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from bottle_api.runner import RecordingRunner

from bottle_api.conventions import PORTS

from ...recording import Recording, contains_seq, reply_when, subcommand
from ..invariants.topology import _topology, relay_addresses
from ...scenarios import Scenario, scenario_params
from .facts import _CLAUDE_ONLY, _SUPERVISED
from .readers import command_at, joined, launch_failed, launched, node_problem, show


SUPERVISE_PORT = PORTS["supervise"]



class McpSnapshots:
    """PROV-MCP."""

    # -- PROV-MCP --------------------------------------------------------------------

    @staticmethod
    def _mcp_adds(rec: Recording) -> list[tuple[int, tuple[str, ...], int]]:
        out = []
        for i, call in rec.indexed():
            if call.kind == "run":
                at = command_at(call.argv, ["claude", "mcp", "add"])
                if at >= 0:
                    out.append((i, call.argv, at))
        return out

    @pytest.mark.parametrize("scenario", scenario_params("PROV-MCP", tier="snapshot",
                                                         **_CLAUDE_ONLY))
    def test_mcp_registered_iff_supervise(self, backend, scenario: Scenario, bottle_recorder):
        """supervise on: exactly one `claude mcp add --scope user`; off: none."""
        rec = launched(bottle_recorder(scenario))
        adds = self._mcp_adds(rec)
        if not rec.spec.supervise:
            assert not adds, ("supervise is off, yet an MCP server is registered: "
                              + "; ".join(show(rec, a) for _, a, _ in adds))
            return
        assert len(adds) == 1, (
            f"supervise is on: expected one `claude mcp add`, saw {len(adds)}: "
            + ("; ".join(show(rec, a) for _, a, _ in adds) or "none"))
        _, argv, at = adds[0]
        tail = argv[at:]
        assert (contains_seq(tail, ["--scope", "user"]) >= 0 or "--scope=user" in tail
                or contains_seq(tail, ["-s", "user"]) >= 0
                or "--scope user" in joined(tail)), (
            f"`claude mcp add` must use --scope user (the agent reads its user config): "
            f"{show(rec, argv)}")
        urls = [t for t in tail if t.startswith(("http://", "https://"))]
        assert len(urls) == 1, f"`claude mcp add` must name one http(s) URL: {show(rec, argv)}"
        url = urlsplit(urls[0])
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            port = None
        reachable = self._supervise_addresses(rec)
        assert reachable, "no supervise address the agent can reach was found in the launch"
        assert f"{url.hostname}:{port}" in reachable, (
            f"supervise is registered at {urls[0]!r}, not at an address the agent reaches "
            f"({sorted(reachable)}): {show(rec, argv)}")

    @staticmethod
    def _supervise_addresses(rec: Recording) -> set[str]:
        """``host:port`` addresses at which the agent reaches supervise: an
        alias (or the name) of a container running supervise on the agent's
        network, at its port 9100; or, for a smolvm guest (no network,
        SMOLVM-NO-NET), the guest loopback address of a relay started with
        ``tcp:HOST:PORT=unix:GUEST`` where GUEST is the guest end of the
        ``--mount-socket`` whose host end is ``supervise.sock``."""
        containers, machine = _topology(rec)
        out: set[str] = set()
        agent_nets = set().union(*(c.networks for c in containers.values() if c.is_agent))
        for c in containers.values():
            if "supervise" in c.daemons and c.networks & agent_nets:
                out |= {f"{alias}:{SUPERVISE_PORT}" for alias in c.aliases | {c.name}}
        if machine is None:
            return out
        out |= relay_addresses(rec, machine, "supervise")
        return out

    @pytest.mark.parametrize("scenario", scenario_params("PROV-MCP", tier="snapshot",
                                                         **_SUPERVISED))
    def test_mcp_failure_logged_not_fatal(self, backend, scenario: Scenario, bottle_recorder):
        """A failing `claude mcp add` is reported through progress and the
        launch still succeeds."""

        def failing_mcp(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: command_at(argv, ["claude", "mcp", "add"]) >= 0,
                       returncode=1, stderr="error: simulated MCP registration failure")

        rec = bottle_recorder(scenario, script=failing_mcp)
        assert not launch_failed(rec), (
            f"a failed MCP registration must not fail the launch: {rec.describe_error()}")
        adds = self._mcp_adds(rec)
        assert adds and all(rec.runner.calls[i].returncode != 0 for i, _, _ in adds), (
            "the scripted MCP failure was never hit (no `claude mcp add` ran)")
        logged = [m for m in rec.progress
                  if re.search(r"fail|error", m, re.I) and re.search(r"mcp|supervise", m, re.I)]
        assert logged, (
            "the MCP registration failure is not logged: launch's progress callback "
            f"said {list(rec.progress)}")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-MCP-USER", **_SUPERVISED))
    def test_mcp_add_as_node(self, backend, scenario: Scenario, bottle_recorder):
        """`claude mcp add` runs as node with HOME=/home/node."""
        rec = launched(bottle_recorder(scenario))
        adds = self._mcp_adds(rec)
        assert adds, "supervise is on but no `claude mcp add` ran"
        for _, argv, at in adds:
            problem = node_problem(argv, at)
            assert problem is None, (
                f"`claude mcp add` must run as node with HOME=/home/node (else the entry "
                f"lands in /root/.claude.json and /mcp shows no server), but {problem}: "
                f"{show(rec, argv)}")
