"""Tier 2: hypothesis properties over generated bottle specs and host states.

Inputs come from `conformance.strategies` (odd names, up to 8 routes and 6
upstreams, any token exp, missing tokens...). Two kinds of property:

- *plan* properties call ``backend.prepare`` only (pure, cheap);
- *recorded* properties launch the case with a recording runner
  (`conformance.recording.record`) under a fresh temporary directory and
  read the argv the backend ran, the way `recording` reads argv: docker /
  podman / nerdctl and smolvm shapes plus the bundle image interface.

Oracles are computed from the spec and host (expected daemons, hop, hosts,
exp, git config calls), not by calling the helpers the reference backends
use, so a property cannot agree with a bug it shares.

Example budgets scale with the active hypothesis profile (dev, ci, certify),
which the plugin loads before this module is imported and decorated: each
property runs half the profile's ``max_examples`` (25 under ci, 500 under
certify); every other setting is the profile's. Generated cases are cut to
the backend's declared capabilities (`_fit`), so a backend without
``supervise`` never sees a supervised spec.

Failure messages say what was seen (the argv, the value, the key); the
plugin prefixes them with ``[CLAUSE-ID] sentence``. Assertion messages show
at most a 6-character prefix of a secret (argv goes through the recording's
normaliser, ``<SECRET>``); the generated tokens are fakes anyway.

One module per subject; `InvariantTier` combines their mixins.
"""

from .codex import CodexInvariants
from .credentials import CredentialInvariants
from .exec_framing import ExecInvariants
from .pipelock import PipelockInvariants
from .plan import PlanInvariants
from .ports import PortInvariants
from .provisioning import ProvisionInvariants
from .secrets import SecretInvariants


class InvariantTier(PlanInvariants, ExecInvariants, SecretInvariants, PortInvariants,
                    CredentialInvariants, PipelockInvariants, ProvisionInvariants,
                    CodexInvariants):
    """Property tests; mixed into `BackendConformance`."""


__all__ = ["InvariantTier"]
