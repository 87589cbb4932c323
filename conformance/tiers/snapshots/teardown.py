"""Snapshot-tier checks for TEARDOWN-OWN and TEARDOWN-IDEMPOTENT: what a
recorded ``close()`` runs, judged by name (`conformance.teardown`)."""

from __future__ import annotations

import pytest

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
