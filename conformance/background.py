"""Pausing the suite's own background work around a process-wide change.

The live harness launches and closes bottles in background threads while
other tests run. Most patches a static check makes are scoped to its own
thread (`threadscope`); one change cannot be: importing the backend's
package afresh swaps its entries in ``sys.modules`` (PLAN-PURE), and a
background launch importing one of its modules then would get the fresh
copy. Such a check holds `paused`: background work in flight ends first
and none starts until it returns. Without a live harness it costs nothing.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

Pauser = Callable[[], AbstractContextManager[object]]

_lock = threading.Lock()
_pausers: list[weakref.WeakMethod] = []


def register(pause: Pauser) -> None:
    """Enrol a bound method that returns a context manager during which
    its owner runs no background work (held weakly: the owner may go)."""
    with _lock:
        _pausers[:] = [p for p in _pausers if p() is not None]
        _pausers.append(weakref.WeakMethod(pause))  # type: ignore[arg-type]


@contextmanager
def paused() -> Iterator[None]:
    """Every registered owner's background work is done and held off."""
    with _lock:
        pauses = [p for p in (ref() for ref in _pausers) if p is not None]
    with ExitStack() as stack:
        for pause in pauses:
            stack.enter_context(pause())
        yield
