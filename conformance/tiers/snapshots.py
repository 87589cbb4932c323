"""Tier 1: argv snapshots of every external command a backend runs.

Launch, provisioning, exec framing and teardown go through an injected
`RecordingRunner` with scripted replies and deterministic names, so the
recorded argv is reproducible and can be compared with snapshots kept in
the backend author's repository (`Settings.snapshot_path`).
"""

from __future__ import annotations

from bottle_ref.host import HostContext
from bottle_ref.runner import RecordingRunner
from bottle_ref.spec import BottleSpec

from ..markers import clause


class SnapshotTier:
    """Argv-snapshot tests; mixed into `BackendConformance`."""

    @clause("EXEC-ABI")
    def test_agent_argv_on_every_bottle(self, backend, tmp_path):
        """A recorded launch yields a Bottle whose agent_argv is plain host argv,
        and recording the same launch twice gives the same commands."""
        host = HostContext(state_root=tmp_path / "state")
        spec = BottleSpec(name="demo")

        def recorded_launch():
            plan = backend.prepare(spec, host)
            runner = RecordingRunner()
            backend.script(runner, plan)
            bottle = backend.launch(plan, runner)
            try:
                argv = bottle.agent_argv(["--version"], tty=False)
            finally:
                bottle.close()
            return argv, runner.argvs

        argv, first = recorded_launch()
        assert isinstance(argv, list) and argv, "agent_argv must return a non-empty list"
        assert all(isinstance(a, str) for a in argv), f"agent_argv holds non-strings: {argv!r}"
        assert "--version" in argv, f"agent_argv dropped the agent's arguments: {argv!r}"
        _, second = recorded_launch()
        assert first == second, "two recorded launches of one plan ran different commands"
