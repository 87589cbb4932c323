"""From pytest test reports to per-clause results.

Everything the controller needs travels in ``report.user_properties``
(``clause``, ``clause_sentence``, ``bottle_backend``...), which pytest-xdist
ships back from workers and JUnit XML writes as ``<property>`` elements; so
aggregation works the same with and without ``-n``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .capabilities import Capability, Profile, parse_capabilities, parse_profiles, sorted_profiles
from .clauses import Clause, by_id
from .outcomes import NOT_APPLICABLE_PREFIX, State, state_of_skip, worst
from .report import ClauseResult, Report, aggregate
from .selection import BackendIdentity

PROP_CLAUSE = "clause"
PROP_SENTENCE = "clause_sentence"
PROP_TIER = "clause_tier"  # "ID=tier": the tier this test checks the clause in
PROP_BACKEND = "bottle_backend"
PROP_BACKEND_VERSION = "bottle_backend_version"
PROP_CAPABILITIES = "bottle_capabilities"
PROP_PROFILES = "bottle_profiles"  # comma-separated declared profiles (core included)
# Per clause of a test, "ID=profile": JUnit readers see which profile it is in.
PROP_PROFILE = "clause_profile"
PROP_BROKEN = "bottle_backend_broken"
# JSON {tool: description} of the test-only stand-ins a live test ran on
# (`Backend.standins`, set by the live harness); merged into the report.
PROP_STANDINS = "bottle_standins"

HEAD_SEP = " -- "
SECTION = "bottle-conformance clause"
UNKNOWN_BACKEND = "unknown"


def headline(clauses: Sequence[Clause]) -> str:
    """``[ID] sentence`` for each clause, joined: the failure message prefix."""
    return "; ".join(c.headline for c in clauses)


def clause_ids(report_or_item: Any) -> list[str]:
    return [v for k, v in report_or_item.user_properties if k == PROP_CLAUSE]


def clause_tiers(report_or_item: Any) -> dict[str, str]:
    """Clause ID -> the tier this test checks it in (from its marks)."""
    out = {}
    for k, v in report_or_item.user_properties:
        if k == PROP_TIER and isinstance(v, str) and "=" in v:
            cid, _, tier = v.partition("=")
            out[cid] = tier
    return out


def annotate_failure(report: Any, clauses: Sequence[Clause]) -> None:
    """Make a failed report name its clauses: crash message (short summary,
    JUnit ``message``), a longrepr section, or the text of a string longrepr."""
    head = headline(clauses)
    longrepr = report.longrepr
    if isinstance(longrepr, str):
        if not longrepr.startswith(head):
            report.longrepr = f"{head}\n{longrepr}"
        return
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and not crash.message.startswith(head):
        crash.message = f"{head}{HEAD_SEP}{crash.message}"
    sections = getattr(longrepr, "sections", None)
    if isinstance(sections, list) and not any(s[0] == SECTION for s in sections):
        sections.insert(0, (SECTION, head, "-"))


def _first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _failure_text(report: Any, head: str) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr or "failed")
    for prefix in (head + HEAD_SEP, head + "\n"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return _first_line(text)


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr or "")
    return text.removeprefix("Skipped: ").strip()


def classify(report: Any, clauses: Sequence[Clause] = ()) -> tuple[State, str] | None:
    """The state one phase report shows, or None if it says nothing
    (a passing setup or teardown)."""
    if report.passed:
        return (State.PASSED, "") if report.when == "call" else None
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return State.XFAIL, f"xfail: {report.wasxfail}"
        return state_of_skip(_skip_reason(report))
    text = _failure_text(report, headline(clauses))
    if report.when != "call":
        text = f"{report.when}: {text}"
    return State.FAILED, text


@dataclass
class _TestRecord:
    nodeid: str
    clause_ids: tuple[str, ...]
    tiers: dict[str, str] = field(default_factory=dict)
    backend: str | None = None
    state: State | None = None
    reason: str = ""
    duration: float = 0.0

    def merge(self, state: State, reason: str) -> None:
        if self.state is None or worst(self.state, state) != self.state:
            self.state, self.reason = state, reason


class ResultCollector:
    """Accumulates phase reports of clause tests (controller side)."""

    def __init__(self) -> None:
        self._tests: dict[str, _TestRecord] = {}
        self._identities: dict[str, BackendIdentity] = {}
        self._standins: dict[str, dict[str, str]] = {}

    @property
    def seen(self) -> bool:
        """Whether any clause test reported."""
        return bool(self._tests)

    def add(self, report: Any) -> None:
        ids = clause_ids(report)
        if not ids:
            return
        props = dict((k, v) for k, v in report.user_properties if k != PROP_CLAUSE)
        rec = self._tests.get(report.nodeid)
        if rec is None:
            rec = self._tests[report.nodeid] = _TestRecord(report.nodeid, tuple(ids),
                                                           clause_tiers(report))
        if PROP_BACKEND in props:
            name = str(props[PROP_BACKEND])
            rec.backend = name
            caps = str(props.get(PROP_CAPABILITIES, ""))
            try:
                profiles = parse_profiles(str(props.get(PROP_PROFILES, "")))
            except ValueError:
                profiles = frozenset({Profile.CORE})
            self._identities.setdefault(name, BackendIdentity(
                name, str(props.get(PROP_BACKEND_VERSION, "0")), parse_capabilities(caps),
                str(props.get(PROP_BROKEN, "")), profiles,
            ))
        if PROP_STANDINS in props:
            try:
                used = json.loads(str(props[PROP_STANDINS]))
            except ValueError:
                used = {"?": str(props[PROP_STANDINS])}
            self._standins.setdefault(rec.backend or "", {}).update(
                {str(k): str(v) for k, v in dict(used).items()})
        rec.duration += float(getattr(report, "duration", 0.0) or 0.0)
        clauses = [by_id(i) for i in ids]
        found = classify(report, clauses)
        if found is not None:
            rec.merge(*found)

    def backends(self, default: str | None) -> list[str]:
        """Backend names seen, tests with no identity counted under ``default``."""
        names = {rec.backend or default or UNKNOWN_BACKEND for rec in self._tests.values()}
        return sorted(names)

    def identity(self, name: str) -> BackendIdentity | None:
        return self._identities.get(name)

    def standins(self, backend: str, default: str | None) -> dict[str, str]:
        """Stand-ins the tests against ``backend`` ran on (tool -> description)."""
        out: dict[str, str] = {}
        for name, used in self._standins.items():
            if (name or default or UNKNOWN_BACKEND) == backend:
                out.update(used)
        return dict(sorted(out.items()))

    def results(self, backend: str, default: str | None) -> tuple[ClauseResult, ...]:
        """Aggregated clause results of the tests run against ``backend``."""
        per_test = []
        ident = self._identities.get(backend)
        declared = ident.profiles if ident else frozenset(Profile)
        for rec in self._tests.values():
            if (rec.backend or default or UNKNOWN_BACKEND) != backend or rec.state is None:
                continue
            short = rec.nodeid.split("::", 1)[-1]
            for cid in rec.clause_ids:
                c = by_id(cid)
                reason = f"{short}: {rec.reason}" if rec.reason else ""
                # The tier THIS test checks the clause in (never the
                # clause's other tiers: their tests report for themselves).
                tier = rec.tiers.get(cid)
                state = rec.state
                if c.profile not in declared and state is not State.NOT_APPLICABLE:
                    # A test shared with a clause of a declared profile ran;
                    # what it showed does not count for this one.
                    state = State.NOT_APPLICABLE
                    reason = f"{short}: {NOT_APPLICABLE_PREFIX} {not_applicable_reason(c, ident)}"
                per_test.append(ClauseResult(
                    cid, c.level, (tier,) if tier else c.tiers[:1], state, reason,
                    round(rec.duration, 6),
                ))
        return aggregate(per_test)


def not_applicable_reason(c: Clause, ident: BackendIdentity | None) -> str:
    """Why ``c`` is NOT_APPLICABLE to the backend ``ident``."""
    who = f"backend {ident.name}" if ident else "the backend"
    return f"clause of the {c.profile} profile, which {who} does not declare (Backend.profiles)"


def build_reports(
    collector: ResultCollector,
    *,
    selected: BackendIdentity | None,
    suite_version: str,
    hypothesis_profile: str,
    hypothesis_seed: str | None,
    started_at: str,
) -> list[Report]:
    """One `Report` per backend the run exercised (usually exactly one).

    With a backend selected and no clause test run, that backend gets an
    empty report (so `verify` can say every MUST clause is missing).
    """
    default = selected.name if selected else None
    names = collector.backends(default) if collector.seen else ([default] if default else [])
    reports = []
    for name in names:
        ident = collector.identity(name) or (selected if selected and selected.name == name else None)
        results = collector.results(name, default)
        reports.append(Report(
            suite_version=suite_version,
            backend=name,
            backend_version=ident.version if ident else "unknown",
            capabilities=tuple(sorted(str(c) for c in ident.capabilities)) if ident else (),
            profiles=sorted_profiles(ident.profiles) if ident else (Profile.CORE.value,),
            hypothesis_profile=hypothesis_profile,
            hypothesis_seed=hypothesis_seed,
            started_at=started_at,
            results=results,
            capabilities_absent=absent_capabilities(ident, results),
            standins=collector.standins(name, default),
        ))
    return reports


def _declared_tiers(clause_id: str) -> tuple[str, ...]:
    try:
        return by_id(clause_id).tiers
    except KeyError:
        return ()


def absent_capabilities(ident: BackendIdentity | None,
                        results: Sequence[ClauseResult]) -> tuple[tuple[str, str], ...]:
    """Each capability the run could not use, with why: not declared, the
    backend's identity broken, or ``live`` declared but no live test able to
    run here (every one ERROR or NOT_SUPPORTED: the first reason is given)."""
    if ident is None:
        return ()
    out = []
    for cap in Capability:
        if ident.broken:
            out.append((str(cap), f"backend unusable: {ident.broken}"))
        elif cap not in ident.capabilities:
            out.append((str(cap), "not declared by the backend"))
        elif cap is Capability.LIVE:
            # Clauses only the live tier checks (a result's own tier lists
            # only the tiers that ran, so the registry's is read instead).
            live = [r for r in results if _declared_tiers(r.clause_id) == ("live",)]
            if live and all(r.state in (State.ERROR, State.NOT_SUPPORTED) for r in live):
                first = next((r for r in live if r.state is State.ERROR), live[0])
                out.append((str(cap), f"declared, but no live test could run here "
                                      f"({first.state}): {first.reason}"))
    return tuple(out)


def summary_line(report: Report, clauses: Iterable[Clause]) -> str:
    """``backend 1.0: 12 clauses: 9 PASSED, 3 NOT_SUPPORTED; 20 MUST clauses not run``."""
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n) or "none run"
    ran = {r.clause_id for r in report.results}
    missing = sum(1 for c in clauses if c.level == "MUST" and c.id not in ran)
    n = len(report.results)
    line = f"{report.backend} {report.backend_version}: {n} clause{'s' if n != 1 else ''}: {counts}"
    if missing:
        line += f"; {missing} MUST clause{'s' if missing != 1 else ''} not run"
    return line
