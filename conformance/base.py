"""The umbrella class a backend author subclasses (DESIGN §6).

    from conformance.base import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture(scope="class")
        @classmethod
        def backend(cls):
            return MyBackend()

Every tier's tests are inherited, so clauses added to the suite later enrol
in your run without a change on your side. Without your own ``backend``
fixture the plugin's default applies (the backend chosen with
``--bottle-backend``).
"""

from __future__ import annotations

from .argv.tier import ArgvTier
from .tiers import InvariantTier, LiveTier, SnapshotTier


class BackendConformance(SnapshotTier, ArgvTier, InvariantTier, LiveTier):
    """All clauses of the contract, for one backend (the ``backend`` fixture)."""
