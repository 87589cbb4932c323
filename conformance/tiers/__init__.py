"""The three tiers of the suite, as mixin classes of test methods.

Each mixin's tests take a ``backend`` fixture (a `Backend` instance) and are
marked with ``@clause(ID)``; `conformance.base.BackendConformance` combines
all three, so a new test here enrols in every backend's run automatically.
Asserts in this package are rewritten by pytest (see the plugin).
"""

from .invariants import InvariantTier
from .live import LiveTier
from .snapshots import SnapshotTier

__all__ = ["SnapshotTier", "InvariantTier", "LiveTier"]
