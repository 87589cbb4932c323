"""Sessions: `unit` (no engine), `integration` (live tier), `conformance` (any backend), `lint`.

    nox -s lint                                   # the package layering (import-linter)
    nox -s unit                                   # static tiers + meta-tests, needs no engine
    nox -s meta                                   # meta-tests' cross-check (CI runs it)
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
# Test-only stand-ins (never shipped): put on PATH only where the real tool is absent.
SMOLVM_STANDIN = ROOT / "tests" / "standins" / "smolvm"


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


# pytest caches its assertion-rewritten modules only where Python may write
# bytecode. With PYTHONDONTWRITEBYTECODE set (.ci/run sets it; some shells
# do), every xdist worker and every pytest subprocess a test starts rewrote
# the suite again: ~2 s of CPU each. Written to __pycache__ (gitignored).
_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


def xdist_args(posargs: list[str] | tuple[str, ...] = ()) -> list[str]:
    """pytest-xdist arguments for the unit and meta runs (bench/unit.py uses
    them too), unless the caller chose (``-n``, ``no:xdist``): one worker
    per usable core plus one, since about a tenth of the unit suite waits
    (daemons starting, timeouts the tests set), and ``--dist worksteal``, so
    a worker left with a queue of slow tests gives some away. Measured on
    an idle 2-core machine: 2 workers 72-75 s, 3 workers 64-75 s, 4: 71 s
    (within the machine's noise: a weak choice, kept for the waiting tests)."""
    own = any(a == "-n" or a.startswith(("-n", "--numprocesses")) or a == "no:xdist"
              for a in posargs)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [] if own else ["-n", str((cores or 1) + 1), "--dist", "worksteal"]


def _parallel(session: nox.Session) -> list[str]:
    return xdist_args(session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """The layering in pyproject's [tool.importlinter]: bottle_api imports none
    of the others, conformance never bottle_ref or bottle_bundle, and the
    bundle daemons only bottle_api.conventions and bottle_api.hostnames."""
    _install(session)
    session.run("lint-imports", "--no-cache", *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """Everything that needs no engine: seam, backends recorded, suite, meta-tests.

    On every core plus one worker (`xdist_args`); pass your own ``-n``/``-p no:xdist`` to
    override. The meta-tests run each broken backend against its own
    clause only; `meta` is their cross-check."""
    _install(session, "-r", BUNDLE_REQUIREMENTS)
    session.run("pytest", "tests/unit", *_parallel(session), *session.posargs, env=_BYTECODE)


@nox.session
def meta(session: nox.Session) -> None:
    """The meta-tests' cross-check: every broken backend also runs the whole
    snapshot tier and must PASS each snapshot clause not on its ``also``
    list (`tests/unit/test_meta.py`, ``BOTTLE_META=snapshot``). `unit` runs
    only the clause each one breaks, which is what keeps it fast; CI runs
    both. ``BOTTLE_META=full`` (every invariant too) is set by hand."""
    _install(session, "-r", BUNDLE_REQUIREMENTS)
    session.run("pytest", "tests/unit/test_meta.py", *_parallel(session), *session.posargs,
                env={**_BYTECODE, "BOTTLE_META": os.environ.get("BOTTLE_META") or "snapshot"})


def _smolvm_env(session: nox.Session) -> dict[str, str]:
    """A real `smolvm` on PATH is used as it is. Otherwise the test-only
    stand-in goes first on PATH (machines as containers of the engine; the
    report then says `smolvm: stand-in`), with its records in the session's
    tmp dir and the agent image's `docker save` archive cached across runs."""
    if shutil.which("smolvm"):
        session.log(f"smolvm: real ({shutil.which('smolvm')})")
        return {}
    session.log(f"smolvm: not on PATH; using the stand-in {SMOLVM_STANDIN}")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bottle-ref"
    return {
        "PATH": os.pathsep.join([str(SMOLVM_STANDIN), os.environ.get("PATH", "")]),
        "SMOLVM_STANDIN_HOME": str(Path(session.create_tmp()).resolve() / "smolvm-standin"),
        "BOTTLE_SMOL_CACHE": str(cache / "smolmachines"),
    }


# Issue 14: the smolvm stand-in models a guest with no network and its
# --mount-socket wiring, so these live clauses must PASS there: a
# NOT_SUPPORTED naming the stand-in is no longer accepted for them.
STANDIN_MUST_PASS: tuple[str, ...] = (
    "LIVE-SMOKE", "LIVE-AGENT", "LIVE-INTERACTIVE", "LIVE-LOOPBACK", "LIVE-BYPASS",
    "LIVE-PIPELOCK", "LIVE-AUTH", "LIVE-CA-TRUST", "LIVE-FAILCLOSED", "LIVE-HOST",
    "LIVE-ROUTES", "LIVE-CONFINE")


def _check_report(session: nox.Session, report: Path, *, standin: bool) -> None:
    """Every clause PASSED, except the clauses of profiles the backend does not
    declare (NOT_APPLICABLE: the report says so itself; no list here) and, on
    the smolvm stand-in, a NOT_SUPPORTED naming the stand-in for a clause
    outside `STANDIN_MUST_PASS`."""
    import json

    data = json.loads(report.read_text())
    if standin and "smolvm" not in data.get("standins", {}):
        session.error(f"{report}: ran on the smolvm stand-in but the report does not say so")
    bad = [f"{r['clause_id']}: {r['state']} {r.get('reason', '')}" for r in data["results"]
           if r["state"] not in ("PASSED", "NOT_APPLICABLE")
           and not (standin and r["state"] == "NOT_SUPPORTED"
                    and "stand-in" in r.get("reason", "")
                    and r["clause_id"] not in STANDIN_MUST_PASS)]
    if bad:
        session.error(f"{report}: not PASSED: " + "; ".join(bad))


@nox.session
def integration(session: nox.Session) -> None:
    """The live tier against both reference backends (skips without an engine);
    smolmachines runs on real smolvm where it is on PATH, else on the stand-in."""
    reason = _engine_reason()
    if reason:
        session.skip(reason)
    _install(session)
    env = _image_env(session)
    smolvm_env = _smolvm_env(session)
    env.update(smolvm_env)
    REPORTS.mkdir(exist_ok=True)
    for stale in REPORTS.glob("integration*.json"):
        stale.unlink()
    report = REPORTS / "integration.json"
    session.run("pytest", "tests/integration", "--bottle-report", str(report),
                *session.posargs, env=env)
    # One report per backend the run exercised (integration-<backend>.json).
    written = sorted(REPORTS.glob("integration-*.json")) or [report]
    for path in written:
        session.run("bottle-conformance", "report", str(path))
        # Certification per profile (core and each declared one: every MUST
        # clause PASSED) where no stand-in is involved; then every clause,
        # live ones included, PASSED but the NOT_APPLICABLE ones and what a
        # stand-in says it cannot show (`_check_report`).
        standin = path.name == "integration-smolmachines.json" and bool(smolvm_env)
        session.run("bottle-conformance", "verify", str(path), *([] if standin else ["--strict"]))
        _check_report(session, path, standin=standin)


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
