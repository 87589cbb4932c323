"""Snapshot-tier checks for The recorder fixtures every snapshot-tier mixin uses."""

from __future__ import annotations

import pytest

from ...recording import Recorder


class SnapshotFixtures:
    """The recorder fixtures every snapshot-tier mixin uses."""

    # -- fixtures ----------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def _bottle_recordings(cls):
        """Recordings shared by the tests of one class (keyed by backend)."""
        return {}

    @pytest.fixture
    def bottle_recorder(self, backend, tmp_path_factory, _bottle_recordings) -> Recorder:
        """Records scenarios for ``backend`` in fresh scratch directories."""
        return Recorder(backend, lambda name: tmp_path_factory.mktemp(name),
                        _bottle_recordings)
