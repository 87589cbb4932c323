"""Sessions: `unit` (no engine), `integration` (live tier), `conformance` (any backend), `lint`.

    nox -s lint                                   # the package layering (import-linter)
    nox -s unit                                   # static tiers + meta-tests, needs no engine
    nox -s integration                            # live probes wherever docker answers
    nox -s conformance -- --bottle-backend docker # the suite against any backend, prints the table
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["unit"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
BUNDLE_REQUIREMENTS = "bottle_bundle/requirements.txt"
REPORTS = ROOT / "reports"


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-e", ".[dev]", *extra)


def _engine_reason() -> str | None:
    """Why the live tier cannot run here, or None when docker answers."""
    if shutil.which("docker") is None:
        return "no docker client on PATH (on Debian as root: bash scripts/engine.sh)"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "docker engine not answering (on Debian as root: bash scripts/engine.sh)"
    return None


def _image_env(session: nox.Session) -> dict[str, str]:
    """Build (or find, by content hash) the registry-free images; return the
    env naming them. Progress shows; an unchanged image is never rebuilt."""
    session.run("python", "-m", "bottle_ref.images", "all")
    out = session.run("python", "-m", "bottle_ref.images", "all", "--print-env", silent=True)
    return dict(line.split("=", 1) for line in (out or "").splitlines() if "=" in line)


@nox.session
def lint(session: nox.Session) -> None:
    """The layering in pyproject's [tool.importlinter]: bottle_api imports none
    of the others, conformance never bottle_ref or bottle_bundle, and the
    bundle daemons only bottle_api.conventions."""
    _install(session)
    session.run("lint-imports", "--no-cache", *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """Everything that needs no engine: seam, backends recorded, suite, meta-tests."""
    _install(session, "-r", BUNDLE_REQUIREMENTS)
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """The live tier against the reference docker backend (skips without an engine)."""
    reason = _engine_reason()
    if reason:
        session.skip(reason)
    _install(session)
    env = _image_env(session)
    REPORTS.mkdir(exist_ok=True)
    report = str(REPORTS / "integration.json")
    session.run("pytest", "tests/integration", "--bottle-report", report,
                *session.posargs, env=env)
    session.run("bottle-conformance", "report", report)
    # Every docker clause, live ones included, must have PASSED: a live probe
    # that skipped (ERROR, NOT_SUPPORTED) fails the session here.
    session.run("bottle-conformance", "verify", "--strict", report)


@nox.session
def conformance(session: nox.Session) -> None:
    """Run the suite and print its table.

    `nox -s conformance` runs both reference backends; pass pytest arguments
    to pick your own: `nox -s conformance -- --bottle-backend mypkg.mod:factory`.
    Where docker answers, the images are built first so the live tier runs;
    elsewhere live clauses report ERROR with the reason, never PASSED.
    """
    _install(session)
    reason = _engine_reason()
    env = {} if reason else _image_env(session)
    if reason:
        session.log(f"live tier will report ERROR: {reason}")
    REPORTS.mkdir(exist_ok=True)
    if any(a.startswith("--bottle-backend") for a in session.posargs):
        runs = [("conformance", list(session.posargs))]
    else:
        runs = [(name, ["--bottle-backend", name, *session.posargs])
                for name in ("docker", "smolmachines")]
    for label, args in runs:
        report = str(REPORTS / f"{label}.json")
        session.run("pytest", "--pyargs", "conformance",
                    "--bottle-report", report, *args, env=env)
        session.run("bottle-conformance", "report", report)
