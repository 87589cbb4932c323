"""Result states, and the helpers tests use to report the non-pass ones.

A clause test ends in one of six states (DESIGN §6). Three of them are
pytest skips told apart by their reason prefix, so they survive pytest-xdist
and JUnit unchanged:

- ``NOT_APPLICABLE: ...`` the clause belongs to a profile (`Profile`) the
  backend does not declare (raised by the plugin): neither passed nor failed,
  and not asked for by verify or certification;
- ``NOT_SUPPORTED: ...``  the backend did not declare a capability the clause
  needs (raised by the plugin, or by a test via `not_supported`), or a test
  stand-in cannot show the clause;
- ``ERROR: ...``          the environment broke (no engine, no image), raised
  via `environment_broken`. None ever counts as PASSED.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

import pytest

NOT_APPLICABLE_PREFIX = "NOT_APPLICABLE:"
NOT_SUPPORTED_PREFIX = "NOT_SUPPORTED:"
ERROR_PREFIX = "ERROR:"


class State(StrEnum):
    """How a clause fared. Declared best to worst; `worst` picks by this order."""

    PASSED = "PASSED"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    XFAIL = "XFAIL"
    ERROR = "ERROR"
    FAILED = "FAILED"

    @property
    def severity(self) -> int:
        return list(State).index(self)


def worst(*states: State) -> State:
    """The worst of ``states`` (one test is only as good as its worst phase)."""
    return max(states, key=lambda s: s.severity)


def clause_state(*states: State) -> State:
    """A clause's state from its tests' states: the worst, except that a test
    NOT_SUPPORTED for a scenario's extra capability (e.g. a codex scenario on
    a claude-only backend) does not demote a clause other tests PASSED. A
    clause is NOT_SUPPORTED only when none of its tests could run (and
    NOT_APPLICABLE only when every one was out of the backend's profiles)."""
    ran = [s for s in states if s not in (State.NOT_SUPPORTED, State.NOT_APPLICABLE)]
    if ran:
        return worst(*ran)
    return State.NOT_SUPPORTED if State.NOT_SUPPORTED in states else State.NOT_APPLICABLE


def environment_broken(reason: str) -> NoReturn:
    """Stop this test as ERROR: the environment, not the backend, is at fault
    (e.g. docker not reachable). Never PASSED; fails a certify run."""
    __tracebackhide__ = True  # report the caller's line, not this one
    pytest.skip(f"{ERROR_PREFIX} {reason}")


def not_supported(reason: str) -> NoReturn:
    """Stop this test as NOT_SUPPORTED (the backend lacks what the clause needs)."""
    __tracebackhide__ = True
    pytest.skip(f"{NOT_SUPPORTED_PREFIX} {reason}")


def not_applicable(reason: str) -> NoReturn:
    """Stop this test as NOT_APPLICABLE (its clause's profile is not the backend's)."""
    __tracebackhide__ = True
    pytest.skip(f"{NOT_APPLICABLE_PREFIX} {reason}")


def state_of_skip(reason: str) -> tuple[State, str]:
    """Classify a skip reason. A plain skip in a clause test is NOT_SUPPORTED:
    whatever it was, the clause was not shown to hold."""
    if reason.startswith(ERROR_PREFIX):
        return State.ERROR, reason
    if reason.startswith(NOT_SUPPORTED_PREFIX):
        return State.NOT_SUPPORTED, reason
    if reason.startswith(NOT_APPLICABLE_PREFIX):
        return State.NOT_APPLICABLE, reason
    return State.NOT_SUPPORTED, f"{NOT_SUPPORTED_PREFIX} skipped: {reason}"
