"""The typed result of a run: JSON for machines, a markdown table for people.

One `ClauseResult` per clause. A clause checked by several tests gets the
worst of their states (`aggregate`): one failing test is a failed clause.
`verify` is what CI and certification ask of a report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .clauses import CLAUSES, MUST, TIERS, Clause
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

    def result(self, clause_id: str) -> ClauseResult | None:
        return next((r for r in self.results if r.clause_id == clause_id), None)

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
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Report":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ReportError("not a report: top level is not an object")
        if data.get("schema") != SCHEMA:
            raise ReportError(f"unsupported report schema {data.get('schema')!r} (expected {SCHEMA})")
        try:
            results = tuple(
                ClauseResult(
                    clause_id=str(r["clause_id"]),
                    level=str(r["level"]),
                    tier=tuple(r["tier"]),
                    state=State(r["state"]),
                    reason=str(r.get("reason", "")),
                    duration_s=float(r.get("duration_s", 0.0)),
                )
                for r in data["results"]
            )
            ids = [r.clause_id for r in results]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                # One entry per clause; a second would be ignored by verify.
                raise ReportError(f"not a report: clause(s) listed twice: {', '.join(dupes)}")
            return cls(
                suite_version=str(data["suite_version"]),
                backend=str(data["backend"]),
                backend_version=str(data["backend_version"]),
                capabilities=tuple(data["capabilities"]),
                hypothesis_profile=str(data["hypothesis_profile"]),
                hypothesis_seed=data.get("hypothesis_seed"),
                started_at=str(data["started_at"]),
                results=results,
            )
        except KeyError as exc:
            raise ReportError(f"not a report: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ReportError(f"not a report: {exc}") from None


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


def verify(report: Report, *, strict: bool = False,
           clauses: Sequence[Clause] = CLAUSES) -> list[str]:
    """Problems that make ``report`` unacceptable; empty means it passes.

    Always: a MUST clause missing from the report, or FAILED or ERROR; a
    result for a clause the registry does not know. With ``strict`` (what
    ``--bottle-certify`` applies): a MUST clause NOT_SUPPORTED or XFAIL too.
    SHOULD clauses are never problems.
    """
    problems = []
    known = {c.id for c in clauses}
    bad = {State.FAILED, State.ERROR}
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


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def markdown(report: Report) -> str:
    """A markdown summary: run facts, then one table row per clause."""
    caps = ", ".join(report.capabilities) or "none"
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    lines = [
        f"# bottle-conformance report: {report.backend} {report.backend_version}",
        "",
        f"- suite version: {report.suite_version}",
        f"- capabilities: {caps}",
        f"- hypothesis profile: {report.hypothesis_profile}"
        + (f" (seed {report.hypothesis_seed})" if report.hypothesis_seed else ""),
        f"- started: {report.started_at}",
        f"- clauses: {len(report.results)}" + (f" ({counts})" if counts else ""),
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
