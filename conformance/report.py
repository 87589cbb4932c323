"""The typed result of a run: JSON for machines, a markdown table for people.

One `ClauseResult` per clause. A clause checked by several tests gets the
worst of their states (`aggregate`): one failing test is a failed clause.
`verify` is what CI and certification ask of a report.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .capabilities import Profile, sorted_profiles
from .clauses import CLAUSES, LEVELS, MUST, TIERS, Clause
from .outcomes import State, clause_state

SCHEMA = 1


class ReportError(ValueError):
    """A report file that is not a bottle-conformance report."""


@dataclass(frozen=True)
class ClauseResult:
    """How one clause fared. ``reason`` explains any state but PASSED.

    ``tier`` lists only the tiers whose tests of the clause actually ran
    (any state but NOT_SUPPORTED), in registry order; () when none did.
    """

    clause_id: str
    level: str
    tier: tuple[str, ...]
    state: State
    reason: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True)
class Report:
    """One run of the suite against one backend."""

    suite_version: str
    backend: str
    backend_version: str
    capabilities: tuple[str, ...]
    hypothesis_profile: str
    hypothesis_seed: str | None
    started_at: str
    results: tuple[ClauseResult, ...] = field(default_factory=tuple)
    # Capabilities the backend does not declare here, with why (the report
    # header shows them: an absent `live` is a statement about the host).
    capabilities_absent: tuple[tuple[str, str], ...] = ()
    # Test-only stand-ins the run used, tool -> description (e.g. smolvm):
    # a run on a stand-in is never a run on the real tool.
    standins: dict[str, str] = field(default_factory=dict)
    # The profiles the backend declared, core first (core always). Clauses
    # of any other profile are NOT_APPLICABLE and not asked for by verify.
    profiles: tuple[str, ...] = (Profile.CORE.value,)

    def result(self, clause_id: str) -> ClauseResult | None:
        return self._by_id().get(clause_id)

    def _by_id(self) -> dict[str, ClauseResult]:
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {}
            for r in self.results:
                cached.setdefault(r.clause_id, r)
            object.__setattr__(self, "_index", cached)
        return cached

    def counts(self) -> dict[State, int]:
        """How many clauses ended in each state (every state present)."""
        out = {s: 0 for s in State}
        for r in self.results:
            out[r.state] += 1
        return out

    # -- JSON ----------------------------------------------------------------

    def to_json(self) -> str:
        data = asdict(self)
        data["schema"] = SCHEMA
        data["capabilities_absent"] = dict(self.capabilities_absent)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Report":
        """Parse a report, strictly: every field has its declared type
        (``tier: "live"`` is not the list ``l, i, v, e``), one entry per
        clause. Any problem is one `ReportError` line; time is linear in the
        size of the text."""
        if len(text) > MAX_REPORT_CHARS:
            raise ReportError(f"not a report: larger than {MAX_REPORT_CHARS} characters")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(f"not JSON: {exc}") from None
        except RecursionError:
            raise ReportError("not a report: JSON nested too deeply") from None
        except ValueError as exc:  # e.g. an integer beyond int's digit limit
            raise ReportError(f"not JSON: {_short(exc)}") from None
        if not isinstance(data, dict):
            raise ReportError("not a report: top level is not an object")
        if data.get("schema") != SCHEMA or type(data.get("schema")) is not int:
            raise ReportError(
                f"unsupported report schema {_short_repr(data.get('schema'))} (expected {SCHEMA})")
        try:
            raw_results = _field(data, "results", list, "a list")
            results = tuple(_result(r, i) for i, r in enumerate(raw_results))
            dupes = sorted(i for i, n in Counter(r.clause_id for r in results).items() if n > 1)
            if dupes:
                # One entry per clause; a second would be ignored by verify.
                raise ReportError(f"not a report: clause(s) listed twice: {', '.join(dupes)}")
            seed = data.get("hypothesis_seed")
            if seed is not None and not isinstance(seed, str):
                raise ReportError(f"not a report: hypothesis_seed is {_kind(seed)}, not a string")
            absent = data.get("capabilities_absent", {})
            if not isinstance(absent, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in absent.items()):
                raise ReportError("not a report: capabilities_absent is not an object of strings")
            profiles = data.get("profiles", [Profile.CORE.value])
            if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
                raise ReportError("not a report: profiles must be a list of strings")
            standins = data.get("standins", {})
            if not isinstance(standins, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in standins.items()):
                raise ReportError("not a report: standins is not an object of strings")
            return cls(
                suite_version=_field(data, "suite_version", str),
                backend=_field(data, "backend", str),
                backend_version=_field(data, "backend_version", str),
                capabilities=_strings(data, "capabilities"),
                hypothesis_profile=_field(data, "hypothesis_profile", str),
                hypothesis_seed=seed,
                started_at=_field(data, "started_at", str),
                results=results,
                capabilities_absent=tuple(sorted(absent.items())),
                standins=dict(sorted(standins.items())),
                profiles=sorted_profiles([Profile.CORE.value, *profiles]),
            )
        except KeyError as exc:
            raise ReportError(f"not a report: missing field {_short_repr(exc.args[0])}") from None


MAX_REPORT_CHARS = 32 * 1024 * 1024
_NAMES = {str: "a string", list: "a list", dict: "an object"}


def _short(value: object, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_repr(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return "<a very large integer>"
    return _short(repr(value))


def _kind(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(value), "?")


def _field(obj: dict, key: str, typ: type, name: str | None = None, where: str = "") -> Any:
    value = obj[key]
    if not isinstance(value, typ):
        raise ReportError(f"not a report: {where}{key} is {_kind(value)}, not "
                          f"{name or _NAMES.get(typ, typ.__name__)}")
    return value


def _strings(obj: dict, key: str, where: str = "") -> tuple[str, ...]:
    value = _field(obj, key, list, where=where)
    if not all(isinstance(v, str) for v in value):
        raise ReportError(f"not a report: {where}{key} must be a list of strings")
    return tuple(value)


def _result(raw: Any, index: int) -> ClauseResult:
    where = f"results[{index}]."
    if not isinstance(raw, dict):
        raise ReportError(f"not a report: results[{index}] is {_kind(raw)}, not an object")
    name = _field(raw, "state", str, where=where)
    try:
        state = State(name)
    except ValueError:
        raise ReportError(f"not a report: {where}state {_short_repr(raw['state'])} is not one of "
                          f"{', '.join(State)}") from None
    level = _field(raw, "level", str, where=where)
    if level not in LEVELS:
        raise ReportError(f"not a report: {where}level {_short_repr(level)} is not MUST or SHOULD")
    duration = raw.get("duration_s", 0.0)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise ReportError(f"not a report: {where}duration_s is {_kind(duration)}, not a number")
    try:
        duration = float(duration)
    except OverflowError:
        duration = math.inf
    if not (math.isfinite(duration) and duration >= 0):
        raise ReportError(f"not a report: {where}duration_s is not a finite number of seconds")
    reason = raw.get("reason", "")
    if not isinstance(reason, str):
        raise ReportError(f"not a report: {where}reason is {_kind(reason)}, not a string")
    return ClauseResult(
        clause_id=_field(raw, "clause_id", str, where=where),
        level=level,
        tier=_strings(raw, "tier", where),
        state=state,
        reason=reason,
        duration_s=duration,
    )


def _tier_order(tiers: Iterable[str]) -> tuple[str, ...]:
    known = [t for t in TIERS if t in set(tiers)]
    return tuple(known) + tuple(sorted(set(tiers) - set(TIERS)))


def aggregate(results: Iterable[ClauseResult]) -> tuple[ClauseResult, ...]:
    """One result per clause (`clause_state`: worst wins, but NOT_SUPPORTED
    only when no test of the clause ran), durations summed.

    Each input is one test's result, its ``tier`` the tier that test checks
    the clause in. The merged ``tier`` keeps only the tiers of tests that
    ran (any state but NOT_SUPPORTED): a tier whose tests were all skipped,
    deselected or never collected is not listed. The reason kept is the
    first one given with the winning state; the output follows the
    registry's order, then unknown IDs by name.
    """
    merged: dict[str, ClauseResult] = {}
    ran: dict[str, set[str]] = {}
    for r in results:
        ran.setdefault(r.clause_id, set())
        if r.state is not State.NOT_SUPPORTED:
            ran[r.clause_id].update(r.tier)
        prev = merged.get(r.clause_id)
        if prev is None:
            merged[r.clause_id] = r
            continue
        state = clause_state(prev.state, r.state)
        reason = prev.reason if prev.state == state else r.reason
        merged[r.clause_id] = replace(
            prev, state=state, reason=reason, duration_s=prev.duration_s + r.duration_s
        )
    merged = {cid: replace(r, tier=_tier_order(ran[cid])) for cid, r in merged.items()}
    order = {c.id: i for i, c in enumerate(CLAUSES)}
    return tuple(sorted(merged.values(), key=lambda r: (order.get(r.clause_id, len(order)), r.clause_id)))


@dataclass(frozen=True)
class ProfileVerdict:
    """How one declared profile fared: its MUST clauses and the problems."""

    profile: str
    must: int
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    def line(self) -> str:
        if self.passed:
            return f"{self.profile}: PASSED ({self.must} MUST clauses)"
        ids = ", ".join(p.split(" ", 1)[0] for p in self.problems[:6])
        more = f" and {len(self.problems) - 6} more" if len(self.problems) > 6 else ""
        return (f"{self.profile}: FAILED ({len(self.problems)} of {self.must} MUST clauses "
                f"not acceptable: {ids}{more})")


def profile_verdicts(report: Report, *, strict: bool = True,
                     clauses: Sequence[Clause] = CLAUSES,
                     tiers: Iterable[str] | None = None) -> list[ProfileVerdict]:
    """One verdict per profile the report declares (core first), by the
    rules of `verify` (``strict``: certification, every MUST clause PASSED)."""
    problems = verify(report, strict=strict, clauses=clauses, tiers=tiers)
    by_profile = {c.id: str(c.profile) for c in clauses}
    scoped = _scoped(clauses, tiers)
    out = []
    for prof in report.profiles:
        must = sum(1 for c in scoped if c.level == MUST and c.profile == prof)
        mine = tuple(p for p in problems if by_profile.get(p.split(" ", 1)[0]) == prof)
        out.append(ProfileVerdict(prof, must, mine))
    return out


def _scoped(clauses: Sequence[Clause], tiers: Iterable[str] | None) -> list[Clause]:
    if tiers is None:
        return list(clauses)
    scope = set(tiers)
    unknown = scope - set(TIERS)
    if unknown:
        raise ValueError(f"unknown tier(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(TIERS)}")
    return [c for c in clauses if scope & set(c.tiers)]


def verify(report: Report, *, strict: bool = False,
           clauses: Sequence[Clause] = CLAUSES,
           tiers: Iterable[str] | None = None) -> list[str]:
    """Problems that make ``report`` unacceptable; empty means it passes.

    Only clauses of core and of the profiles the report declares are asked
    for; a clause of another profile is NOT_APPLICABLE and never a problem.
    Always: a MUST clause of those profiles missing from the report, or
    FAILED, ERROR or NOT_APPLICABLE (its profile is declared); a profile
    outside the vocabulary; a result for a clause the registry does not
    know. With ``strict`` (what ``--bottle-certify`` applies): a MUST clause
    NOT_SUPPORTED or XFAIL too. SHOULD clauses are never problems. With
    ``tiers`` (e.g. the static ``snapshot, invariant`` of a run on every
    save), only clauses checked by one of those tiers must be in the report;
    the others are not asked for.
    """
    problems = []
    known = {c.id for c in clauses}
    declared = set(report.profiles) | {Profile.CORE.value}
    for prof in sorted(declared - {p.value for p in Profile}):
        problems.append(f"profile {prof}: not a profile of this suite version")
    clauses = [c for c in clauses if c.profile in declared]
    if tiers is not None:
        scope = set(tiers)
        unknown = scope - set(TIERS)
        if unknown:
            raise ValueError(f"unknown tier(s) {', '.join(sorted(unknown))}; "
                             f"choose from {', '.join(TIERS)}")
        clauses = [c for c in clauses if scope & set(c.tiers)]
    bad = {State.FAILED, State.ERROR, State.NOT_APPLICABLE}
    if strict:
        bad |= {State.NOT_SUPPORTED, State.XFAIL}
    for c in clauses:
        if c.level != MUST:
            continue
        r = report.result(c.id)
        if r is None:
            problems.append(f"{c.id} (MUST): not in the report (no test ran)")
        elif r.state in bad:
            problems.append(f"{c.id} (MUST): {r.state}" + (f": {r.reason}" if r.reason else ""))
    for r in report.results:
        if r.clause_id not in known:
            problems.append(f"{r.clause_id}: not a clause of this suite version")
    return problems


def printable(text: Any) -> str:
    """``text`` with every character a terminal acts on escaped, so a value
    read from a report (a reason, a clause ID, a backend name) can neither
    forge a line nor move the cursor: C0/C1 controls and DEL (a newline
    too) as ``\\n``/``\\xNN``, format characters (bidi overrides, zero
    widths) and line/paragraph separators as ``\\uNNNN``. Call it on each
    value at print time; other text is unchanged."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(_escape(c) for c in text)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
        return c  # e.g. a space separator other than " " is printed as is
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def _cell(text: Any) -> str:
    return printable(str(text).replace("\n", " ").strip()).replace("|", "\\|")


def markdown(report: Report, *, tiers: Iterable[str] | None = None) -> str:
    """A markdown summary: run facts, each declared profile's certification
    verdict (over ``tiers`` only, when given), then one row per clause."""
    caps = ", ".join(report.capabilities) or "none"
    absent = "; ".join(f"{c}: {why}" for c, why in report.capabilities_absent)
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    lines = [
        f"# bottle-conformance report: {printable(report.backend)} "
        f"{printable(report.backend_version)}",
        "",
        f"- suite version: {printable(report.suite_version)}",
        f"- capabilities: {printable(caps)}",
        *([f"- capabilities absent: {_cell(absent)}"] if absent else []),
        f"- hypothesis profile: {printable(report.hypothesis_profile)}"
        + (f" (seed {printable(report.hypothesis_seed)})" if report.hypothesis_seed else ""),
        f"- started: {printable(report.started_at)}",
        f"- clauses: {len(report.results)}" + (f" ({counts})" if counts else ""),
        *[f"- {printable(tool)}: {_cell(what)}" for tool, what in sorted(report.standins.items())],
        *[f"- profile {_cell(v.line())}" + (f" (tiers {'+'.join(sorted(tiers))})" if tiers else "")
          for v in profile_verdicts(report, tiers=tiers)],
        *([f"- profiles not declared (their clauses NOT_APPLICABLE): "
           f"{', '.join(p.value for p in Profile if p.value not in report.profiles)}"]
          if set(Profile) - set(report.profiles) else []),
        "",
        "| Clause | Level | Tier | State | Duration (s) | Reason |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for r in report.results:
        lines.append(
            f"| {_cell(r.clause_id)} | {_cell(r.level)} | {_cell('+'.join(r.tier) or '-')} | "
            f"{_cell(r.state)} | {r.duration_s:.2f} | {_cell(r.reason)} |"
        )
    return "\n".join(lines) + "\n"
