"""The invariant tier (hypothesis properties) against both reference backends.

Each class is what a backend author writes: subclass the tier, give it a
``backend`` fixture. Only `InvariantTier` is mixed in here (not the whole
`BackendConformance`), so this file times and reports exactly tier 2; the
snapshot and live tiers have their own test files.
"""

from __future__ import annotations

import pytest

from bottle_ref.backends.docker import DockerBackend
from bottle_ref.backends.smolmachines import SmolmachinesBackend
from conformance.tiers import InvariantTier


class TestDockerInvariants(InvariantTier):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return DockerBackend()


class TestSmolmachinesInvariants(InvariantTier):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return SmolmachinesBackend()
