"""The pytest11 plugin: options, the ``clause`` marker, capability gating,
result mapping, the run summary, the JSON report and certification.

Inert by construction: unless a backend is selected (flag, env or
pyproject) or a collected test carries a ``clause`` marker, no hook here
changes an item, a report or a line of output. Hypothesis is not even
imported (importing it alone adds a header line to every run).

Result mapping for a clause test:
    pass                               PASSED
    fail                               FAILED, message prefixed ``[ID] sentence``
    clause of an undeclared profile    skipped ``NOT_APPLICABLE: clause of the P profile ...``
    capability not declared            skipped ``NOT_SUPPORTED: capability X not declared``
      ... but named in --bottle-require   setup failure (FAILED)
    `environment_broken(reason)`       skipped ``ERROR: reason``
    strict xfail with a reason         XFAIL
"""

from __future__ import annotations

import gc
import linecache

from dataclasses import dataclass

import pytest

from bottle_api.backend import Backend

from . import redaction, watchdog
from .capabilities import UnknownCapabilityError
from .clauses import LIVE, TIERS, by_id
from .markers import MARKER_HELP, ClauseMarkError, clause_marks
from .outcomes import NOT_SUPPORTED_PREFIX, environment_broken, not_applicable
from .results import (
    PROP_BACKEND,
    PROP_BACKEND_VERSION,
    PROP_BROKEN,
    PROP_CAPABILITIES,
    PROP_CLAUSE,
    PROP_PROFILE,
    PROP_PROFILES,
    PROP_SENTENCE,
    PROP_TIER,
    annotate_failure,
    clause_ids,
    not_applicable_reason,
)
from .selection import BackendIdentity, BackendSelectionError, identify, load_backend
from .settings import (
    PROFILES,
    Settings,
    SettingsError,
    hypothesis_profile_name,
    register_hypothesis_profiles,
)

# Tier mixins hold the suite's asserts; rewrite them although they are not
# test modules. Nothing imported above imports them, so this is in time.
pytest.register_assert_rewrite("conformance.tiers", "conformance.base")

GATE = "_bottle_clause_gate"
SELECTED_MARKER = "bottle_selected_backend"
RUN_LAST_MARKER = "bottle_run_last"
NO_BACKEND = (
    "no backend selected: pass --bottle-backend=NAME (an entry point of the "
    "bottle.backends group, or package.module:factory), set BOTTLE_BACKEND, or "
    "subclass conformance.base.BackendConformance with a `backend` fixture"
)


@dataclass
class PluginState:
    """Per-config state (never module-global: pytester runs share the module)."""

    settings: Settings
    selected: Backend | None = None
    identity: BackendIdentity | None = None
    previous_profile: str | None = None
    gc_frozen: bool = False


STATE = pytest.StashKey[PluginState]()


def state_of(config: pytest.Config) -> PluginState:
    return config.stash[STATE]


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


# -- options and configuration ------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bottle-conformance", "bottle-conformance backend conformance suite")
    group.addoption(
        "--bottle-backend", dest="bottle_backend", metavar="NAME", default=None,
        help="backend to test: entry-point name (bottle.backends group) or "
             "package.module:factory [env BOTTLE_BACKEND]",
    )
    group.addoption(
        "--bottle-require", dest="bottle_require", metavar="CAP[,CAP...]", action="append",
        default=None,
        help="capabilities that must be declared; NOT_SUPPORTED for them fails "
             "[env BOTTLE_REQUIRE]",
    )
    group.addoption(
        "--bottle-certify", dest="bottle_certify", action="store_true", default=None,
        help="fail the session unless every MUST clause PASSED [env BOTTLE_CERTIFY]",
    )
    group.addoption(
        "--bottle-report", dest="bottle_report", metavar="PATH", default=None,
        help="write the JSON conformance report here [env BOTTLE_REPORT]",
    )
    group.addoption(
        "--bottle-snapshot-dir", dest="bottle_snapshot_dir", metavar="DIR", default=None,
        help="the backend's own argv snapshot folder, holding <scenario>.txt directly "
             "(default snapshots/<backend name> under pytest's rootdir) [env BOTTLE_SNAPSHOT_DIR]",
    )
    group.addoption(
        "--bottle-hypothesis-profile", dest="bottle_hypothesis_profile", choices=PROFILES,
        default=None,
        help="hypothesis profile for the invariant tier [env BOTTLE_HYPOTHESIS_PROFILE]",
    )
    group.addoption(
        "--bottle-tier", dest="bottle_tier", metavar="TIER[,TIER...]", action="append",
        default=None,
        help="run only clause tests of these tiers (snapshot, invariant, live); "
             "e.g. --bottle-tier snapshot,invariant for the static tiers on every save",
    )
    group.addoption(
        "--bottle-call-timeout", dest="bottle_call_timeout", metavar="SECS", type=float,
        default=None,
        help="seconds any one backend or bottle call (prepare, launch, script, agent_argv, "
             "exec, close, ...) may take before its tests end as ERROR; default "
             f"{watchdog.DEFAULT_STATIC:g} s in the static tiers, {watchdog.DEFAULT_LIVE:g} s "
             "live [env BOTTLE_CALL_TIMEOUT]",
    )
    group.addoption(
        "--bottle-live-timeout", dest="bottle_live_timeout", metavar="SECS", type=float,
        default=None,
        help="seconds the live tier waits for a bottle [env BOTTLE_LIVE_TIMEOUT]",
    )
    group.addoption(
        "--bottle-fixture-engine", dest="bottle_fixture_engine", metavar="CLI", default=None,
        help="docker-compatible CLI for the live harness's own fixtures (test upstream, "
             "sentinels): docker (default), podman, ... [env BOTTLE_FIXTURE_ENGINE]",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line(
        "markers", f"{SELECTED_MARKER}: tests of the backend chosen by --bottle-backend",
    )
    config.addinivalue_line(
        "markers", f"{RUN_LAST_MARKER}: run after the other tests of its class (a live "
        "probe that wants the engine to itself, once the class's launches are done)",
    )
    try:
        settings = Settings.resolve(config)
    except SettingsError as exc:
        raise pytest.UsageError(f"bottle-conformance: {exc}") from None
    state = PluginState(settings)
    redaction.REGISTRY.plant_host_env()
    if settings.backend is not None:
        try:
            state.selected = load_backend(settings.backend)
            state.identity = identify(state.selected)
        except (BackendSelectionError, UnknownCapabilityError) as exc:
            raise pytest.UsageError(f"bottle-conformance: {exc}") from None
    if settings.loads_profile and not config.getoption("hypothesis_profile", None):
        from hypothesis import settings as hypothesis_settings

        register_hypothesis_profiles()
        state.previous_profile = hypothesis_settings.get_current_profile_name()
        hypothesis_settings.load_profile(hypothesis_profile_name(settings.effective_profile))
    config.stash[STATE] = state
    if not is_xdist_worker(config):
        from .session import RunSession

        config.pluginmanager.register(RunSession(config, state), RunSession.PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.gc_frozen:
        gc.unfreeze()
        state.gc_frozen = False
    if state is not None and state.previous_profile is not None:
        from hypothesis import settings as hypothesis_settings

        hypothesis_settings.load_profile(state.previous_profile)


# -- collection -----------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Where a backend is under test, move everything alive after collection
    (modules, items, strategies, the backend) out of the cyclic garbage
    collector's reach until the run ends (`gc.freeze`; undone in
    `pytest_unconfigure`). The tiers allocate heavily, and each full
    collection otherwise walks that whole heap again: about 0.3 s of a static
    run. The cost: a reference cycle among those objects that becomes garbage
    during the run is freed at unconfigure, not sooner."""
    state = session.config.stash.get(STATE, None)
    if state is not None and state.selected is not None and not state.gc_frozen:
        gc.freeze()
        state.gc_frozen = True


def _enforce_strict_xfail(item: pytest.Item) -> None:
    """XFAIL is only a state when it is strict and says why (DESIGN §6)."""
    marks = list(item.iter_markers(name="xfail"))
    for mark in marks:
        if not mark.kwargs.get("reason"):
            raise pytest.UsageError(
                f"bottle-conformance: {item.nodeid}: xfail on a clause test needs reason=..."
            )
    if marks and any(m.kwargs.get("strict") is not True for m in marks):
        for mark in reversed(marks):
            item.add_marker(
                pytest.mark.xfail(*mark.args, **{**mark.kwargs, "strict": True}), append=False,
            )


def _select_tiers(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect clause tests outside ``--bottle-tier``; unmarked tests stay."""
    raw = config.getoption("bottle_tier", None)
    if not raw:
        return
    wanted = {t.strip() for chunk in raw for t in chunk.split(",") if t.strip()}
    unknown = wanted - set(TIERS)
    if unknown:
        raise pytest.UsageError(
            f"bottle-conformance: --bottle-tier: unknown tier(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(TIERS)}"
        )
    keep, drop = [], []
    for item in items:
        try:
            tiers = {m.tier for m in clause_marks(item)}
        except ClauseMarkError:
            tiers = set()  # reported by the main loop below
        (keep if not tiers or tiers & wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _run_last(items: list[pytest.Item]) -> None:
    """Move the items marked `RUN_LAST_MARKER` behind the other items of
    their class (or module), keeping every other order as collected."""
    if not any(i.get_closest_marker(RUN_LAST_MARKER) for i in items):
        return
    first: dict[int, int] = {}
    for n, item in enumerate(items):
        first.setdefault(id(item.parent), n)
    items.sort(key=lambda i: (first[id(i.parent)], bool(i.get_closest_marker(RUN_LAST_MARKER))))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    state = state_of(config)
    _select_tiers(config, items)
    _run_last(items)
    for item in items:
        if item.get_closest_marker(SELECTED_MARKER) and state.selected is None:
            item.add_marker(pytest.mark.skip(reason=NO_BACKEND))
            continue
        try:
            marks = clause_marks(item)
        except ClauseMarkError as exc:
            raise pytest.UsageError(f"bottle-conformance: {item.nodeid}: {exc}") from None
        if not marks:
            continue
        for m in marks:
            item.user_properties.append((PROP_CLAUSE, m.clause.id))
            item.user_properties.append((PROP_SENTENCE, m.clause.sentence))
            item.user_properties.append((PROP_TIER, f"{m.clause.id}={m.tier}"))
            item.user_properties.append((PROP_PROFILE, f"{m.clause.id}={m.clause.profile}"))
        _enforce_strict_xfail(item)
        names = getattr(item, "fixturenames", None)
        if names is None:
            raise pytest.UsageError(
                f"bottle-conformance: {item.nodeid}: clause marks only work on test functions"
            )
        if GATE not in names:
            # First, so a missing capability skips before any costly fixture
            # (a live bottle) is set up. (The list is shared by parametrized
            # copies of one function, hence the membership check.)
            names.insert(0, GATE)


# -- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def bottle_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved `Settings` of this run."""
    return state_of(pytestconfig).settings


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> Backend:
    """The backend chosen with --bottle-backend (or env/pyproject).

    Only a default: a test class's own ``backend`` fixture overrides it.
    With no backend anywhere, clause tests end as ERROR, never PASSED.
    """
    state = state_of(pytestconfig)
    if state.selected is None:
        environment_broken(NO_BACKEND)
    return state.selected


def _record_identity(item: pytest.Item, ident: BackendIdentity) -> None:
    if any(k == PROP_BACKEND for k, _ in item.user_properties):
        return
    item.user_properties.append((PROP_BACKEND, ident.name))
    item.user_properties.append((PROP_BACKEND_VERSION, ident.version))
    item.user_properties.append((PROP_CAPABILITIES, ",".join(sorted(ident.capabilities))))
    item.user_properties.append((PROP_PROFILES, ",".join(sorted(ident.profiles))))
    if ident.broken:
        item.user_properties.append((PROP_BROKEN, ident.broken))


@pytest.fixture
def _bottle_clause_gate(request: pytest.FixtureRequest) -> None:
    """Skip (NOT_APPLICABLE) a clause test whose clauses are all outside the
    backend's profiles; skip (NOT_SUPPORTED) or fail (--bottle-require) one
    whose backend lacks a capability it needs; record the backend's identity."""
    item = request.node
    marks = clause_marks(item)
    if not marks:
        return
    backend = request.getfixturevalue("backend")
    try:
        ident = identify(backend)
    except UnknownCapabilityError as exc:
        pytest.fail(str(exc), pytrace=False)
    _record_identity(item, ident)
    if ident.broken:
        environment_broken(ident.broken)
    outside = [m.clause for m in marks if m.clause.profile not in ident.profiles]
    if outside and len(outside) == len(marks):
        not_applicable(not_applicable_reason(outside[0], ident))
    needed = frozenset().union(*(m.required for m in marks))
    missing = sorted(needed - ident.capabilities)
    if not missing:
        return
    required = [c for c in missing if c in state_of(request.config).settings.require]
    if required:
        pytest.fail(
            f"NOT_SUPPORTED: capability {', '.join(required)} not declared by backend "
            f"{ident.name}, but --bottle-require demands it",
            pytrace=False,
        )
    # Reported at the test's own location (as skip marks are), not this fixture's.
    raise pytest.skip.Exception(
        f"{NOT_SUPPORTED_PREFIX} capability {', '.join(missing)} not declared",
        _use_item_location=True,
    )


# -- the per-call watchdog ---------------------------------------------------------


def _call_timeout(item: pytest.Item) -> float | None:
    """The watchdog deadline for ``item``'s backend calls (None: not a clause test)."""
    try:
        marks = clause_marks(item)
    except ClauseMarkError:
        return None
    if not marks:
        return None
    configured = state_of(item.config).settings.call_timeout
    if configured is not None:
        return configured
    live = any(m.tier == LIVE for m in marks)
    return watchdog.DEFAULT_LIVE if live else watchdog.DEFAULT_STATIC


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    watchdog.set_timeout(_call_timeout(item))


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    watchdog.set_timeout(None)
    redaction.REGISTRY.end_test()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Put the watchdog on every ``backend`` fixture value a clause test uses
    (the plugin's own or a test class's override, whatever its scope)."""
    result = yield
    if fixturedef.argname == "backend" and isinstance(result, Backend) \
            and watchdog.CLOCK.timeout is not None:
        watchdog.guard_backend(result)
    return result


# -- reports --------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    ids = clause_ids(item)
    if report.failed and ids:
        annotate_failure(report, [by_id(i) for i in ids])
    # Only where the plugin is active: an unrelated run's output is untouched.
    if ids or state_of(item.config).selected is not None:
        redact_report(report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message, when, nodeid, location) -> None:
    """Redact a warning before pytest's warnings summary (and any other
    reporter) sees it: its message, and the source line it quotes."""
    redact_warning(warning_message)


def redact_warning(warning_message) -> None:
    text = str(warning_message.message)
    if redaction.find(text):
        try:
            warning_message.message = warning_message.category(redaction.redact(text))
        except Exception:  # a category that takes other arguments
            warning_message.message = UserWarning(redaction.redact(text))
    line = warning_message.line
    if line is None and warning_message.filename and warning_message.lineno:
        line = linecache.getline(str(warning_message.filename), int(warning_message.lineno))
    if line and redaction.find(line):
        warning_message.line = redaction.redact(line)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Last sweep before the summaries print: every recorded warning's text
    (a value planted by an earlier test included)."""
    for report in terminalreporter.stats.get("warnings", []):
        message = getattr(report, "message", None)
        if isinstance(message, str) and redaction.find(message):
            report.message = redaction.redact(message)
    return (yield)


def redact_report(report: pytest.TestReport) -> None:
    """Remove every secret the suite planted (and its encodings) from what
    the terminal, JUnit XML, xdist and the JSON report get from ``report``:
    failure text (assert messages, a backend's exception text, hypothesis'
    falsifying example, traceback source lines), captured output and user
    properties. The failure's structure (crash message, sections) is kept."""
    longrepr = report.longrepr
    if longrepr is not None and redaction.find(str(longrepr)):
        report.longrepr = _redacted(longrepr, 0)
    report.sections = [(title, redaction.redact(body)) for title, body in report.sections]
    props = report.user_properties
    for i, (key, value) in enumerate(props):
        if isinstance(value, str) and redaction.find(value):
            props[i] = (key, redaction.redact(value))


def _redacted(value, depth: int):
    """``value`` with its strings redacted: strings, lists and tuples are
    rebuilt, pytest's repr objects (plain attribute holders) edited in place."""
    if isinstance(value, str):
        return redaction.redact(value)
    if depth > 12 or value is None or isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, list):
        value[:] = [_redacted(v, depth + 1) for v in value]
        return value
    if isinstance(value, tuple):
        return type(value)(_redacted(v, depth + 1) for v in value) if not hasattr(
            value, "_fields") else type(value)(*(_redacted(v, depth + 1) for v in value))
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict) and type(value).__module__.startswith("_pytest"):
        for key, item in list(attrs.items()):
            try:
                setattr(value, key, _redacted(item, depth + 1))
            except (AttributeError, TypeError):  # frozen: bypass, it is our copy
                object.__setattr__(value, key, _redacted(item, depth + 1))
        return value
    return redaction.redact(str(value)) if redaction.find(str(value)) else value
