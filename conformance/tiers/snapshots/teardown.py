"""Snapshot-tier checks for TEARDOWN-OWN and TEARDOWN-IDEMPOTENT: what a
recorded ``close()`` runs, judged by name (`conformance.teardown`); and
TEARDOWN-LOUD: a close() whose engine cannot answer must fail loudly."""

from __future__ import annotations

import pytest

from bottle_api.runner import RecordingRunner

from ...scenarios import Scenario, scenario_params
from ...teardown import created_names, is_destructive, problems
from .readers import launched, show


class TeardownSnapshots:
    """TEARDOWN-*."""

    @pytest.mark.parametrize("scenario", scenario_params("TEARDOWN-OWN"))
    def test_close_removes_only_its_own_names(self, backend, scenario: Scenario,
                                              bottle_recorder):
        """Every destructive command of close() names only resources the
        launch created; none prunes or selects by a label key alone."""
        rec = launched(bottle_recorder(scenario))
        created = created_names(rec.runs("launch"))
        close = rec.runs("close")
        assert close, "close() ran no command: it cannot have removed what launch created"
        bad = problems(close, created)
        assert not bad, "close() reaches beyond what its launch created:\n  " + "\n  ".join(
            rec.normalise(str(p)) for p in bad)

    @pytest.mark.parametrize("scenario", scenario_params(
        "TEARDOWN-IDEMPOTENT", names=("minimal-claude", "supervise-prompt-skills")))
    def test_second_close_is_a_no_op(self, backend, scenario: Scenario, bottle_recorder):
        """close() again on a closed bottle succeeds and destroys nothing (by
        then a name may belong to someone else's new bottle)."""
        rec = launched(bottle_recorder(scenario, fresh=True))
        assert rec.bottle is not None
        before = len(rec.runner.calls)
        try:
            rec.bottle.close()
        except Exception as exc:
            raise AssertionError(f"a second close() raised {type(exc).__name__}: "
                                 f"{rec.normalise(str(exc))}") from None
        again = [c.argv for c in rec.runner.calls[before:] if c.kind == "run"]
        destroying = [show(rec, a) for a in again if is_destructive(a)]
        assert not destroying, f"a second close() ran destructive commands again: {destroying}"

    @pytest.mark.parametrize("scenario", scenario_params(
        "TEARDOWN-LOUD", names=("minimal-claude", "supervise-prompt-skills")))
    def test_close_against_a_dead_engine_fails_loudly(self, backend, scenario: Scenario,
                                                      tmp_path):
        """Launch (recorded), then every command fails as if the engine were
        unreachable: close() must raise naming a resource the launch created,
        not return as if the bottle were gone."""
        inputs = scenario.build(tmp_path / "scenario")
        plan = backend.prepare(inputs.spec, inputs.host)
        runner = RecordingRunner()
        backend.script(runner, plan)
        bottle = backend.launch(plan, runner)
        created = sorted(r.name for r in created_names(runner.argvs))
        runner.reply("*", returncode=1, first=True,
                     stderr="Cannot connect to the engine: dial unix /nonexistent.sock: "
                            "connect: no such file or directory")
        try:
            bottle.close()
        except Exception as exc:
            message = str(exc)
        else:
            raise AssertionError(
                "close() returned normally although every engine command failed (engine "
                "unreachable): it reported the bottle gone with no proof")
        finally:
            runner.replies.pop(0)
            try:
                bottle.close()  # the engine is back: clean up the recording's state dir
            except Exception:
                pass
        assert not created or any(name in message for name in created), (
            f"close() failed but named nothing the launch created ({', '.join(created)}): "
            f"{message}")
