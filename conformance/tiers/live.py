"""Tier 3: live probes against a running bottle.

Traffic goes only to loopback and the suite's own containers. A test that
cannot run because the environment is missing something (no engine, no
image) ends as ERROR via `environment_broken`, never as PASSED.
"""

from __future__ import annotations

import os

from bottle_ref.host import HostContext
from bottle_ref.runner import SubprocessRunner
from bottle_ref.spec import BottleSpec

from ..markers import clause
from ..outcomes import environment_broken

# Host variables a live launch may need (engine address, image refs); never
# credentials: nothing in the suite reads the real host's tokens.
PASS_ENV = ("PATH", "DOCKER_HOST", "CLAUDE_BOTTLE_IMAGE", "BOTTLE_BUNDLE_IMAGE",
            "BOTTLE_SMOL_PUBLISH_HOST")


def live_host(state_root) -> HostContext:
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    return HostContext(env=env, state_root=state_root)


class LiveTier:
    """Live tests; mixed into `BackendConformance`. Need capability ``live``."""

    @clause("LIVE-SMOKE")
    def test_exec_echo_round_trips(self, backend, tmp_path, bottle_settings):
        runner = SubprocessRunner()
        why = backend.live_unavailable(runner)
        if why:
            environment_broken(why)
        plan = backend.prepare(BottleSpec(name="conformance-smoke"), live_host(tmp_path))
        with backend.launch(plan, runner) as bottle:
            result = bottle.exec(["echo", "bottle-conformance-smoke"],
                                 timeout=bottle_settings.live_timeout)
        assert result.returncode == 0, f"echo exited {result.returncode}: {result.stderr}"
        assert result.stdout.strip() == "bottle-conformance-smoke"
