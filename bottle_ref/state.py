"""The per-bottle state dir on the host: config files launch writes from
the plan (prepare is pure and writes nothing), CAs, staged guest files.

Layout (BRIEF "Naming"): ``<state_dir>/pipelock.yaml``,
``<state_dir>/egress-routes.yaml``, ``<state_dir>/pipelock-ca/``,
``<state_dir>/egress-ca/``. The dir is 0700; close() removes it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bottle_api.plan import Plan
from .provision import write_file

PIPELOCK_YAML = "pipelock.yaml"
EGRESS_ROUTES_YAML = "egress-routes.yaml"
PIPELOCK_CA_DIR = "pipelock-ca"
EGRESS_CA_DIR = "egress-ca"


@dataclass(frozen=True)
class StateFiles:
    """Host paths of a bottle's state files (pure: computing them writes nothing)."""

    dir: Path

    @property
    def pipelock_yaml(self) -> Path:
        return self.dir / PIPELOCK_YAML

    @property
    def egress_routes_yaml(self) -> Path:
        return self.dir / EGRESS_ROUTES_YAML

    @property
    def pipelock_ca_dir(self) -> Path:
        return self.dir / PIPELOCK_CA_DIR

    @property
    def egress_ca_dir(self) -> Path:
        return self.dir / EGRESS_CA_DIR


def state_files(plan: Plan) -> StateFiles:
    return StateFiles(Path(plan.state_dir))


def write_state(plan: Plan) -> StateFiles:
    """Create the state dir (0700), empty (whatever an earlier launch of
    this name left is removed first, so each launch has fresh CA keys), and
    write the plan's rendered configs.

    The configs hold no secret (token *names* only), so they are 0644: they
    are bind-mounted and a bundle daemon need not run as the host user to
    read them. The 0700 dir keeps other host users out.
    """
    files = state_files(plan)
    # A fresh dir per launch: one left behind (a kill, a failed teardown)
    # must not hand its CA private keys to this launch (issue 17).
    shutil.rmtree(files.dir, ignore_errors=True)
    files.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(files.dir, 0o700)
    write_file(files.pipelock_yaml, plan.pipelock.config_yaml, mode=0o644)
    write_file(files.egress_routes_yaml, plan.egress.routes_yaml, mode=0o644)
    return files


def remove_state(state_dir: str | Path) -> None:
    """Remove the state dir; a dir that is already gone is fine (idempotent)."""
    shutil.rmtree(state_dir, ignore_errors=True)
