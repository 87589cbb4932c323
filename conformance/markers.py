"""``@clause(ID)``: how a test says which requirement it checks.

    @clause("PLAN-PURE")
    def test_prepare_is_deterministic(self, backend): ...

    @clause("EXEC-USER", tier="live")          # the live half of a 2-tier clause
    @clause("CRED-SHAPE", needs="codex")       # this test only covers Codex

The decorator is ``pytest.mark.clause(ID, tier=..., needs=...)`` checked
against the registry at import time, so a typo is a collection error, not a
silently unenrolled test. The plugin reads the marks back with
`clause_marks` and gates the test on the capabilities it needs: the clause's
own, any ``needs``, and ``live`` for the live tier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from .capabilities import Capability, UnknownCapabilityError, parse_capabilities
from .clauses import LIVE, Clause, by_id

MARKER = "clause"
MARKER_HELP = (
    "clause(ID, tier=None, needs=()): the test checks contract clause ID "
    "(see CONTRACT.md); bottle-conformance gates it on the capabilities it needs"
)


class ClauseMarkError(ValueError):
    """A clause mark that names no clause, a tier the clause lacks, or an
    unknown capability."""


@dataclass(frozen=True)
class ClauseMark:
    """One ``clause`` mark on a test, resolved against the registry."""

    clause: Clause
    tier: str
    needs: frozenset[Capability] = frozenset()

    @property
    def required(self) -> frozenset[Capability]:
        """Capabilities a backend must declare for this test to run."""
        req = set(self.needs)
        if self.clause.capability:
            req.add(Capability(self.clause.capability))
        if self.tier == LIVE:
            req.add(Capability.LIVE)
        return frozenset(req)


def resolve(clause_id: str, tier: str | None = None,
            needs: str | Iterable[str] = ()) -> ClauseMark:
    """Check one mark's arguments; `ClauseMarkError` says what is wrong."""
    try:
        found = by_id(clause_id)
    except KeyError as exc:
        raise ClauseMarkError(exc.args[0]) from None
    if tier is None:
        tier = found.tiers[0]
    elif tier not in found.tiers:
        raise ClauseMarkError(
            f"clause {clause_id} is checked by tier(s) {', '.join(found.tiers)}, not {tier!r}"
        )
    try:
        caps = parse_capabilities(needs)
    except UnknownCapabilityError as exc:
        raise ClauseMarkError(f"clause {clause_id}: {exc}") from None
    return ClauseMark(found, tier, caps)


def clause(clause_id: str, *, tier: str | None = None,
           needs: str | Iterable[str] = ()) -> pytest.MarkDecorator:
    """Mark a test as checking ``clause_id``; validated now, not at run time.

    ``tier`` picks which of a multi-tier clause's tiers this test is (default:
    the clause's first); ``needs`` adds capabilities beyond the clause's own.
    """
    mark = resolve(clause_id, tier, needs)
    return pytest.mark.clause(
        clause_id, tier=mark.tier, needs=tuple(sorted(mark.needs)),
    )


def clause_marks(item: pytest.Item) -> list[ClauseMark]:
    """Every ``clause`` mark on ``item`` (nearest first), resolved."""
    out = []
    for mark in item.iter_markers(name=MARKER):
        if len(mark.args) != 1 or not isinstance(mark.args[0], str):
            raise ClauseMarkError("clause marker takes exactly one clause ID")
        out.append(resolve(mark.args[0], mark.kwargs.get("tier"), mark.kwargs.get("needs", ())))
    # One entry per clause: a mark on both a method and its class is one clause.
    seen: dict[str, ClauseMark] = {}
    for m in out:
        seen.setdefault(m.clause.id, m)
    return list(seen.values())
