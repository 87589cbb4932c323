"""bottle_kit: the author's toolkit, a documented and versioned API.

An outside backend (a package of its own, e.g. ``examples/outside_backend``)
implements the seam in `bottle_api.backend` and may reuse the reference's
backend-neutral helpers instead of rewriting them. Those helpers live in
`bottle_ref`, whose module layout is free to change; this package is the
stable surface over them: import from ``bottle_kit``, never from
``bottle_ref.*``.

Versioning (`KIT_VERSION`, semantic): a change to a name below, a signature,
or **the argv a helper makes a backend run** (and so the argv snapshots of
every backend that uses it) bumps the version and gets a line in
CHANGELOG.md under "bottle_kit". A minor bump adds; a major bump breaks.
The layering (``nox -s lint``) keeps the kit off the reference backends
(`bottle_ref.backends`, `bottle_ref.cli`) and the suite off the kit.

What is here, by the order a backend uses it:

- planning (inside ``prepare``, pure): `build_plan` (every backend-neutral
  decision: hop order, daemons, pipelock lists, placeholders, egress routes
  and token slots), `agent_image_ref`, `bundle_image_ref`, `auto_routes`,
  `first_hop_for`, `daemons_for`;
- the bundle's config: `render_pipelock_config` (pipelock.yaml, pipelock's
  own keys), `render_egress_routes`, `egress_token_slot`;
- placeholders: `codex_placeholder`, `claude_placeholder` (the guest's
  credential files; no real token material; `CredentialError` for an
  unusable host file), `agent_api_hosts`;
- host state (inside ``launch``): `write_state`, `remove_state`,
  `state_files` (paths, a `StateFiles`); CA: `ensure_ca` (runs
  `ca_init_argv`, openssl, through the runner; an ECDSA P-256 CA, the only
  kind real pipelock loads; returns `CaFiles`);
- provisioning: `check_host_inputs` (before anything starts), `provision`
  (CA, guest files, prompt, skills, git user and gate, supervise MCP, Claude
  config, in that order), over a `GuestChannel` the backend implements (its
  exec and copy framing) and the `Addresses` it learned at launch;
  `ProvisionError`; `mcp_url`, `mcp_add_argv`.
"""

from __future__ import annotations

from bottle_ref.ca import CaFiles, ca_init_argv, ensure_ca
from bottle_ref.credentials import CredentialError, claude_placeholder, codex_placeholder
from bottle_ref.credentials import api_hosts as agent_api_hosts
from bottle_ref.egress import render_routes as render_egress_routes
from bottle_ref.egress import token_slot as egress_token_slot
from bottle_ref.pipelock import render_config as render_pipelock_config
from bottle_ref.planning import (
    agent_image_ref,
    auto_routes,
    build_plan,
    bundle_image_ref,
    daemons_for,
    first_hop_for,
)
from bottle_ref.provision import (
    Addresses,
    GuestChannel,
    ProvisionError,
    check_host_inputs,
    provision,
)
from bottle_ref.state import StateFiles, remove_state, state_files, write_state
from bottle_ref.supervise import mcp_add_argv, mcp_url

# Semantic version of this surface (not of the distribution). Bump it, and
# add a CHANGELOG.md line under "bottle_kit", when a name, a signature or the
# argv a helper runs changes.
KIT_VERSION = "1.2.0"

__all__ = [
    "KIT_VERSION",
    # planning
    "build_plan", "agent_image_ref", "bundle_image_ref", "auto_routes", "first_hop_for",
    "daemons_for",
    # bundle config
    "render_pipelock_config", "render_egress_routes", "egress_token_slot",
    # placeholders
    "codex_placeholder", "claude_placeholder", "agent_api_hosts", "CredentialError",
    # host state and CA
    "write_state", "remove_state", "state_files", "StateFiles", "ensure_ca", "ca_init_argv",
    "CaFiles",
    # provisioning
    "provision", "check_host_inputs", "GuestChannel", "Addresses", "ProvisionError",
    "mcp_url", "mcp_add_argv",
]
