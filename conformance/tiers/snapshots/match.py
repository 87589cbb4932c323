"""Snapshot-tier checks for SNAP-MATCH."""

from __future__ import annotations

import pytest

from ...scenarios import Scenario, scenario_params
from ...snapshot_ext import extension_for, missing_snapshot_message, snapshot_file
from .readers import launched


class SnapshotMatch:
    """SNAP-MATCH."""

    # -- the snapshot itself ---------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("SNAP-MATCH"))
    def test_recording_matches_snapshot(self, backend, scenario: Scenario, bottle_recorder,
                                        bottle_settings, snapshot):
        """The full recording (launch, provisioning, agent argv, teardown)
        equals ``<snapshot dir>/<scenario>.txt``."""
        rec = launched(bottle_recorder(scenario), agent=True)
        directory = bottle_settings.snapshot_path(rec.backend_name)
        path = snapshot_file(directory, scenario.name)
        if not path.is_file() and not snapshot.update_snapshots:
            pytest.fail(missing_snapshot_message(path, rec.backend_name, scenario.name),
                        pytrace=False)
        text = rec.text()
        assert text == snapshot(extension_class=extension_for(directory), name=scenario.name), (
            f"the recorded commands differ from {path}; if the change is intended, run "
            "with --snapshot-update and review the diff before committing it")
