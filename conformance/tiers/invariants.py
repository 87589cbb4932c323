"""Tier 2: hypothesis properties over generated bottle specs and host states.

The active hypothesis profile (dev, ci, certify) is chosen by the plugin
before these tests are decorated; see `conformance.settings`.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bottle_ref.host import HostContext
from bottle_ref.spec import BottleSpec

from ..markers import clause

# A backend fixture of any scope is fine here: prepare() must not mutate it.
_fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


class InvariantTier:
    """Property tests; mixed into `BackendConformance`."""

    @clause("PLAN-PURE")
    @_fixture_ok
    @given(name=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
    def test_prepare_is_deterministic(self, backend, name):
        """Equal inputs give equal plans."""
        spec = BottleSpec(name=name)
        host = HostContext()
        assert backend.prepare(spec, host) == backend.prepare(spec, host)
