"""Tier 3: live probes against running bottles, asserted from INSIDE the guest.

Traffic goes only to loopback and to the bottle's and the harness's own
containers (the "internet" is a test upstream, see `conformance.live`).
A test that cannot run because the environment lacks something (no engine,
no image) ends as ERROR via `environment_broken`; a backend without an
optional live hook (`Bottle.outbound_network`, `internal_endpoints`,
`stop_daemon`, `ca_certificates`, `Backend.live_unsupported`) gets NOT_SUPPORTED. Never PASSED.

One bottle per scenario per test class (and xdist worker) is shared by the
probes that only look; LIVE-FAILCLOSED and LIVE-TEARDOWN launch their own,
LIVE-APART a second one beside the shared one.

One module per subject; `LiveTier` combines their mixins.
"""

from __future__ import annotations

import functools

from ...live import probes
from ...outcomes import environment_broken
from .agents import LiveAgents
from .codex import LiveCodexProvisioning
from .confinement import LiveConfinement
from .exposure import LiveExposure
from .gatekeepers import LiveGatekeepers
from .hardening import LiveHardening
from .provisioning import LiveProvisioning
from .support import LiveFixtures
from .teardown import LiveTeardown
from .traffic import LiveTraffic


class LiveTier(LiveFixtures, LiveTraffic, LiveAgents, LiveConfinement, LiveProvisioning,
               LiveTeardown, LiveCodexProvisioning, LiveGatekeepers, LiveExposure,
               LiveHardening):
    """Live tests; mixed into `BackendConformance`. Need capability ``live``."""


def _probe_errors_are_environment(fn):
    """A probe tool missing from the guest image (`probes.ProbeError`) is the
    environment's fault: ERROR, never FAILED or PASSED."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except probes.ProbeError as exc:
            environment_broken(str(exc))

    return wrapper


# Wrapped where each test is defined (never re-set on LiveTier, which would
# shadow the mixin's own attribute).
for _mixin in (LiveFixtures, LiveTraffic, LiveAgents, LiveConfinement, LiveProvisioning,
               LiveTeardown, LiveCodexProvisioning, LiveGatekeepers, LiveExposure,
               LiveHardening):
    for _name, _fn in list(vars(_mixin).items()):
        if _name.startswith("test_") and callable(_fn):
            setattr(_mixin, _name, _probe_errors_are_environment(_fn))


__all__ = ["LiveTier"]
