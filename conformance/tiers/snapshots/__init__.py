"""Tier 1: argv snapshots of every external command a backend runs.

Each scenario (`conformance.scenarios`) is launched through a recording
runner with the backend's own scripted replies (`Backend.script`) and
deterministic names (`conformance.recording.record`). Two kinds of test:

- the whole recording must equal the snapshot kept in the backend author's
  repository (``snapshots/<backend>/<scenario>.txt``, see
  `conformance.snapshot_ext`); ``pytest --snapshot-update`` records it;
- structural assertions that hold for ANY backend (TTY framing, loopback
  publishing, one CA round trip, node framing, readiness polling...), each
  under its own clause, so a backend learns which rule it broke without
  reading a diff.

Tests over scenarios are gated per scenario on the capabilities the
scenario needs (`conformance.scenarios.scenario_params`).

One module per subject; `SnapshotTier` combines their mixins.
"""

from .ca import CaSnapshots
from .codex import CodexSnapshots
from .exec_framing import ExecSnapshots
from .fixtures import SnapshotFixtures
from .gaps import GapSnapshots
from .git import GitSnapshots
from .launch import LaunchSnapshots
from .match import SnapshotMatch
from .mcp import McpSnapshots
from .ports import PortSnapshots
from .prompt_skills import PromptSkillSnapshots
from .teardown import TeardownSnapshots


class SnapshotTier(SnapshotFixtures, SnapshotMatch, ExecSnapshots, PortSnapshots, CaSnapshots,
                   GitSnapshots, PromptSkillSnapshots, McpSnapshots, LaunchSnapshots,
                   TeardownSnapshots, CodexSnapshots, GapSnapshots):
    """Argv-snapshot tests; mixed into `BackendConformance`."""


__all__ = ["SnapshotTier"]
