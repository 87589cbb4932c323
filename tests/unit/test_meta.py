"""Meta-tests: the conformance suite catches deliberately broken backends.

For each backend in `broken_backends.BROKEN`, the static tiers run against
it through the plugin as an author runs them (a `BackendConformance`
subclass, ``--bottle-tier snapshot,invariant``, ``--bottle-report``, the ci
hypothesis profile), and the JSON report must show the intended clause
FAILED for the named reason; any other FAILED clause must be on that
backend's documented ``also`` allow-list, and nothing may be ERROR. How
many other clauses run is the scope (below). The reference backends,
through the same harness, must pass every static clause.

Snapshot equality (SNAP-MATCH): a broken backend runs with a snapshot
directory of its own, written by ``--snapshot-update``, so equality cannot
be what fails it: a clause counts as caught only if a structural check
catches it, which is all a third-party backend gets (its snapshots are its
own, DESIGN §6). The one exception is SNAP-MATCH's own broken backend
(``reference_snapshots``), compared with the reviewed ``snapshots/<name>``,
which the meta-tests only ever read. The reference backends are compared
with those reviewed snapshots too.

Scope (``BOTTLE_META``), the cost of a run against what it cross-checks:

- ``clause`` (the default, ``nox -s unit``): a broken backend runs only
  the tests of the clause it is meant to break, in every static tier
  (one recorded launch per scenario and the property's examples, well
  under a second). What it proves: that clause FAILED, for the named
  reason, and nothing ERRORed.
- ``snapshot`` (``nox -s meta``, run by CI): as ``clause``, plus the whole
  snapshot tier, so a broken backend must also PASS every snapshot
  clause not on its ``also`` allow-list: no clause over-fires on a defect
  that is not its own.
- ``full``: every invariant too, against every broken backend (minutes);
  how the ``also`` lists were established: run it after changing a tier.

The reference backends and the backends that must pass (`PASSING`) run
the same way in every scope: the references the whole static suite.

Each inner run is one in-process pytester session (the plugin keeps its
state per config and restores the hypothesis profile), so the tests here
are independent of each other and the module runs under ``-n auto``.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import pytest

from bottle_api.backend import Backend
from bottle_ref.backends.docker import DockerBackend
from bottle_ref.backends.smolmachines import SmolmachinesBackend
from conformance.clauses import CLAUSES, LIVE, MUST
from conformance.outcomes import State
from conformance.report import Report
from conformance.settings import hypothesis_profile_name, register_hypothesis_profiles

import broken_backends
from broken_backends import BROKEN, PASSING, PENDING_REFERENCE_FIXES, Broken, broken_cases

pytest_plugins = ["pytester"]

REFERENCES = (DockerBackend, SmolmachinesBackend)
REFERENCE_SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"

# BOTTLE_META: how much of the suite a broken backend runs (see above).
SCOPES = ("clause", "snapshot", "full")
SCOPE = os.environ.get("BOTTLE_META", "").strip() or "clause"
if SCOPE not in SCOPES:
    raise pytest.UsageError(f"BOTTLE_META={SCOPE!r}: expected one of {', '.join(SCOPES)}")

INNER_TEST = '''
import importlib

import pytest

from conformance.base import BackendConformance

BACKEND = getattr(importlib.import_module({module!r}), {name!r})


class TestBackend(BackendConformance):
    """The whole suite, as an author enrols; --bottle-tier keeps the static tiers."""

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return BACKEND()
'''

# Keeps the tests of WANTED clauses (every tier) and, when SNAPSHOT_TIER,
# the whole snapshot tier. WANTED None keeps everything. A test function
# whose own clause marks rule it out is not even collected (half of a
# one-clause run was building the other ~360 parametrised items); the
# items hook then picks by every mark an item carries.
INNER_CONFTEST = '''
import pytest

WANTED = {wanted!r}
SNAPSHOT_TIER = {snapshot_tier!r}


def _chosen(marks):
    return any(m.args[0] in WANTED or (SNAPSHOT_TIER and m.kwargs.get("tier") == "snapshot")
               for m in marks)


def _own_clause_marks(obj):
    """The function's clause marks; else, when every parameter set of its
    parametrize marks carries some (the snapshot tier's scenarios), theirs;
    else None (unknown here: the items hook decides)."""
    own = getattr(obj, "pytestmark", ())
    marks = [m for m in own if m.name == "clause"]
    if marks:
        return marks
    params = [ps for m in own if m.name == "parametrize"
              for ps in (m.args[1] if len(m.args) > 1 else m.kwargs.get("argvalues", ()))]
    per_param = [[getattr(x, "mark", x) for x in getattr(ps, "marks", ())] for ps in params]
    if per_param and all(any(m.name == "clause" for m in ms) for ms in per_param):
        return [m for ms in per_param for m in ms if m.name == "clause"]
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    if WANTED is None or not name.startswith("test") or not callable(obj):
        return None
    marks = _own_clause_marks(obj)
    return [] if marks and not _chosen(marks) else None


def pytest_collection_modifyitems(config, items):
    if WANTED is None:
        return
    keep, drop = [], []
    for item in items:
        (keep if _chosen(item.iter_markers("clause")) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
'''

# Modules whose hypothesis settings are fixed when they are imported (the
# invariant tier scales its example budgets from the active profile).
_PROFILE_BOUND = ("conformance.base", "conformance.tiers")

META_PROFILE = "bottle-conformance-meta"

# Plugins a meta run does not need. hypothesispytest above all: for every
# failing property it parses the test's source with libcst to write a patch
# file (about a second each; broken backends fail properties by design).
_UNNEEDED = tuple(arg for name in (
    "cacheprovider", "randomly", "benchmark", "xdist", "xdist.looponfail", "anyio",
    "platformdirs", "hypothesispytest", "unraisableexception", "threadexception",
) for arg in ("-p", f"no:{name}"))


def static_clauses() -> list[str]:
    """Clause IDs with at least one static (snapshot or invariant) tier."""
    return [c.id for c in CLAUSES if any(t != LIVE for t in c.tiers)]


@dataclass(frozen=True)
class MetaRun:
    """One static-tier run of the suite against one backend."""

    backend: type[Backend]
    report: Report

    def states(self) -> dict[str, State]:
        return {r.clause_id: r.state for r in self.report.results}

    def with_state(self, state: State) -> set[str]:
        return {cid for cid, s in self.states().items() if s == state}

    def reasons(self, clause_id: str) -> list[str]:
        """The reason text of every result reported for ``clause_id``."""
        return [r.reason or "" for r in self.report.results if r.clause_id == clause_id]

    def explain(self) -> str:
        rows = [f"  {r.clause_id}: {r.state} {r.reason}" for r in self.report.results
                if r.state != State.PASSED]
        return f"{self.backend.__name__}:\n" + ("\n".join(rows) or "  every clause PASSED")


def run_static_suite(pytester: pytest.Pytester, backend: type[Backend], *,
                     clauses: Iterable[str] | None = None, snapshot_tier: bool = False,
                     snapshot_dir: Path | None = None) -> MetaRun:
    """Run the static tiers against ``backend`` (a class importable by name)
    in-process and return the parsed report.

    ``clauses``: run only these clauses' tests (every static tier), plus the
    whole snapshot tier when ``snapshot_tier``; None runs everything.
    ``snapshot_dir``: the reviewed snapshots to compare with (never
    written); None: a fresh directory this run writes, so snapshot
    equality (SNAP-MATCH) passes."""
    pytester.makepyfile(test_static=INNER_TEST.format(module=backend.__module__,
                                                      name=backend.__qualname__))
    wanted = None if clauses is None else sorted(clauses)
    pytester.makeconftest(INNER_CONFTEST.format(wanted=wanted, snapshot_tier=snapshot_tier))
    args = [*_UNNEEDED, "-q", "--tb=native", "--bottle-tier=snapshot,invariant",
            "--bottle-report=report.json", "--bottle-hypothesis-profile=ci"]
    if snapshot_dir is None:
        args += [f"--bottle-snapshot-dir={pytester.path / 'snapshots'}", "--snapshot-update"]
    else:
        args += [f"--bottle-snapshot-dir={snapshot_dir}"]
    result = pytester.runpytest_inprocess(*args)
    path = pytester.path / "report.json"
    assert path.is_file(), f"the inner run wrote no report:\n{result.stdout.str()[-3000:]}"
    return MetaRun(backend, Report.from_json(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module", autouse=True)
def _tiers_under_ci_profile():
    """Import the tiers once, under the ci profile, for every inner run.

    The invariant tier fixes its settings when it is imported, so it must be
    imported under the profile the inner runs use. Imported here (not in
    each inner run) because re-importing means re-rewriting its asserts,
    most of a meta run's cost. Whatever this process had imported before is
    put back afterwards.

    The profile is ci minus the shrink and explain phases: they only polish
    a failure's report, and explain alone costs ~25 s per failing property
    (broken backends fail properties by design). Examples, derandomisation
    and budgets are ci's, so what is caught is what ci catches."""
    saved = {n: m for n, m in sys.modules.items() if n.startswith(_PROFILE_BOUND)}
    for name in saved:
        del sys.modules[name]
    register_hypothesis_profiles()
    hypothesis.settings.register_profile(
        META_PROFILE, parent=hypothesis.settings.get_profile(hypothesis_profile_name("ci")),
        phases=[p for p in hypothesis.Phase
                if p not in (hypothesis.Phase.shrink, hypothesis.Phase.explain)])
    previous = hypothesis.settings.get_current_profile_name()
    hypothesis.settings.load_profile(META_PROFILE)
    try:
        importlib.import_module("conformance.base")
    finally:
        hypothesis.settings.load_profile(previous)
    yield
    for name in [n for n in sys.modules if n.startswith(_PROFILE_BOUND)]:
        del sys.modules[name]
    sys.modules.update(saved)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """The outer shell's BOTTLE_* settings must not reach the inner runs."""
    for name in ("BOTTLE_BACKEND", "BOTTLE_REQUIRE", "BOTTLE_CERTIFY", "BOTTLE_REPORT",
                 "BOTTLE_SNAPSHOT_DIR", "BOTTLE_HYPOTHESIS_PROFILE", "BOTTLE_LIVE_TIMEOUT",
                 "BOTTLE_SMOL_SOCKET_ROUTE", "CLAUDE_BOTTLE_IMAGE", "BOTTLE_BUNDLE_IMAGE"):
        monkeypatch.delenv(name, raising=False)


# -- the reference backends pass -------------------------------------------------

# Clauses of a profile a reference backend does not declare (it drives no
# such tool): NOT_APPLICABLE, a state of its own (never PASSED, never FAILED).
def not_applicable(backend: type[Backend]) -> set[str]:
    return {c.id for c in CLAUSES if c.profile != "core" and c.profile not in backend.profiles}


def _reference_of(backend: type[Backend]) -> str:
    return next(ref.name for ref in REFERENCES if issubclass(backend, ref))


def test_reference_backends_profiles():
    """docker drives the engine for its agent container; smolmachines runs its
    guest in smolvm and its bundle on the engine. Neither is in the other's
    guest profile, so each has clauses NOT_APPLICABLE."""
    assert DockerBackend.profiles == {"docker-cli", "container-guest"}
    assert SmolmachinesBackend.profiles == {"docker-cli", "smolvm"}
    assert not_applicable(DockerBackend) >= {"SMOLVM-ARGV", "SMOLVM-NO-NET"}
    assert not_applicable(SmolmachinesBackend) >= {"GUEST-NET-INTERNAL", "GUEST-NO-HOST-NS"}


@pytest.mark.parametrize("backend", REFERENCES, ids=lambda b: b.name)
def test_reference_backend_passes_every_static_clause(pytester, backend):
    run = run_static_suite(pytester, backend, snapshot_dir=REFERENCE_SNAPSHOTS / backend.name)
    pending = PENDING_REFERENCE_FIXES.get(backend.name, {})
    assert run.with_state(State.FAILED) == set(pending), (
        f"FAILED beyond the pending fixes {sorted(pending)}, or a pending fix landed "
        f"(remove it from PENDING_REFERENCE_FIXES):\n{run.explain()}")
    missing = [cid for cid in static_clauses() if cid not in run.states()]
    assert not missing, f"static clauses no test reported: {missing}"
    na = not_applicable(backend) & set(static_clauses())
    assert run.with_state(State.NOT_APPLICABLE) == na, run.explain()
    assert not run.with_state(State.NOT_SUPPORTED), run.explain()
    assert run.with_state(State.PASSED) == set(run.states()) - na - set(pending), run.explain()
    assert tuple(run.report.profiles) == ("core", *sorted(backend.profiles, key=[
        "docker-cli", "container-guest", "smolvm"].index)), run.report.profiles
    # Certification of the static tiers passes per profile: nothing asked of
    # an undeclared profile, every MUST of the declared ones PASSED.
    if not pending:
        from conformance.report import profile_verdicts, verify
        assert verify(run.report, strict=True, tiers=("snapshot", "invariant")) == []
        verdicts = profile_verdicts(run.report, tiers=("snapshot", "invariant"))
        assert [v.profile for v in verdicts] == list(run.report.profiles)
        assert all(v.passed and v.must for v in verdicts), [v.line() for v in verdicts]


# -- each broken backend fails its clause ----------------------------------------


def _broken_params() -> list:
    """One param per table entry; a known suite gap is a strict xfail."""
    return [pytest.param(cid, cls, id=f"{cid}-{cls.__name__}",
                         marks=[pytest.mark.xfail(strict=True, reason=f"suite gap: {cls.suite_gap}")]
                         if cls.suite_gap else [])
            for cid, cls in broken_cases()]


@pytest.mark.parametrize(("clause_id", "broken"), _broken_params())
def test_broken_backend_fails_intended_clause(pytester, clause_id, broken):
    run = run_static_suite(
        pytester, broken, clauses=None if SCOPE == "full" else [clause_id],
        snapshot_tier=SCOPE == "snapshot",
        snapshot_dir=REFERENCE_SNAPSHOTS / broken.name if broken.reference_snapshots else None)
    failed = run.with_state(State.FAILED)
    assert clause_id in failed, (
        f"suite gap: {broken.__name__} ({broken.__doc__.splitlines()[0]}) "
        f"was not failed with {clause_id}\n{run.explain()}")
    if broken.reason:
        reasons = run.reasons(clause_id)
        assert any(re.search(broken.reason, r, re.S) for r in reasons), (
            f"{broken.__name__} failed {clause_id}, but not for the named reason "
            f"(/{broken.reason}/):\n{run.explain()}")
    pending = set(PENDING_REFERENCE_FIXES.get(_reference_of(broken), {}))
    unexpected = failed - {clause_id} - set(broken.also) - pending
    assert not unexpected, (
        f"{broken.__name__} also failed {sorted(unexpected)}, not on its `also` "
        f"allow-list\n{run.explain()}")
    assert not run.with_state(State.ERROR), run.explain()


# -- backends that must pass (issue 16: the wrong-reason failures) -----------------


@pytest.mark.parametrize(("clause_id", "backend"), [
    pytest.param(cid, cls, id=f"{cid}-{cls.__name__}")
    for cid, classes in PASSING.items() for cls in classes])
def test_backend_passes_clause_it_used_to_fail(pytester, clause_id, backend):
    """A clause that failed for the wrong reason (or would fail a hardened
    backend) PASSES a backend that only does what the clause allows."""
    run = run_static_suite(pytester, backend, clauses=[clause_id])
    assert run.states().get(clause_id) == State.PASSED, run.explain()
    assert not run.with_state(State.ERROR), run.explain()


# -- the inner runs' collection ------------------------------------------------------


def test_inner_prune_drops_only_what_the_items_hook_drops(pytester):
    """INNER_CONFTEST's collection-time prune is only a shortcut: for every
    static clause, with and without the snapshot tier, no item it prunes is
    one the items hook would keep (a pruned item would be a clause check a
    broken backend never meets). And it prunes all but a handful: items
    outside the clause are only those whose function names no clause."""
    pytester.makepyfile(test_static=INNER_TEST.format(module=DockerBackend.__module__,
                                                      name=DockerBackend.__qualname__))
    items, _ = pytester.inline_genitems(*_UNNEEDED, "--bottle-tier=snapshot,invariant")
    assert len(items) > 200, f"collected only {len(items)} items"
    for snapshot_tier in (False, True):
        for cid in static_clauses():
            hooks: dict = {}
            exec(INNER_CONFTEST.format(wanted=[cid], snapshot_tier=snapshot_tier), hooks)
            prune, chosen = hooks["pytest_pycollect_makeitem"], hooks["_chosen"]
            pruned = {i.nodeid for i in items if prune(None, i.originalname, i.obj) == []}
            kept = {i.nodeid for i in items if chosen(i.iter_markers("clause"))}
            assert not pruned & kept, f"{cid} (snapshot tier {snapshot_tier}): pruned " \
                                      f"{sorted(pruned & kept)[:3]}"
            unnamed = {i.nodeid for i in items if hooks["_own_clause_marks"](i.obj) is None}
            assert {i.nodeid for i in items} - pruned <= kept | unnamed
    assert len(unnamed) < 10, sorted(unnamed)


# -- the table ---------------------------------------------------------------------


def test_every_static_must_clause_has_a_broken_backend():
    static_must = {c.id for c in CLAUSES if c.level == MUST and any(t != LIVE for t in c.tiers)}
    uncovered = sorted(static_must - {cid for cid, classes in BROKEN.items() if classes})
    assert not uncovered, f"static MUST clauses no broken backend is meant to fail: {uncovered}"


def test_broken_table_is_well_formed():
    known = {c.id for c in CLAUSES}
    assert set(BROKEN) <= known, sorted(set(BROKEN) - known)
    classes = [cls for _, cls in broken_cases()]
    assert len(classes) == len(set(classes)), "a broken backend is listed twice"
    for cls in classes:
        assert issubclass(cls, Broken) and issubclass(cls, REFERENCES), cls
        assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} must say what it breaks"
        assert set(cls.also) <= known, (cls.__name__, sorted(set(cls.also) - known))
        assert not set(cls.also) & {cid for cid, c in broken_cases() if c is cls}, (
            f"{cls.__name__}: its intended clause is on its own allow-list")
        if cls.reference_snapshots:
            assert (REFERENCE_SNAPSHOTS / cls.name).is_dir(), f"no snapshots/{cls.name}"
        assert all(reason.strip() for reason in cls.also.values()), cls.__name__
    declared = {obj for obj in vars(broken_backends).values()
                if isinstance(obj, type) and issubclass(obj, Broken) and issubclass(obj, Backend)
                and not obj.__name__.startswith("_") and obj.__module__ == broken_backends.__name__}
    assert declared == set(classes), f"broken backends missing from BROKEN: {declared - set(classes)}"


# -- issue 18: an unparseable argv is NOT_SUPPORTED naming the flag ----------------


NOT_SUPPORTED_WHERE_UNPARSEABLE = ("DOCKER-ARGV", "GUEST-NET-INTERNAL", "GUEST-NO-PRIVILEGE",
                                   "GUEST-NO-HOST-NS")


def test_unparseable_network_create_is_not_supported_naming_the_flag(pytester):
    run = run_static_suite(pytester, broken_backends.AgentNetworkFlagOutsideGrammar,
                           clauses=NOT_SUPPORTED_WHERE_UNPARSEABLE)
    assert run.states()["DOCKER-ARGV"] == State.FAILED, run.explain()
    for cid in NOT_SUPPORTED_WHERE_UNPARSEABLE[1:]:
        r = run.report.result(cid)
        assert r.state == State.NOT_SUPPORTED and "--disable-dns" in r.reason, run.explain()
