"""Catching ``time.sleep`` that bypasses the runner (LAUNCH-READY)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType

from ..threadscope import patched, rebound, scoped, thread_scope

# -- catching time.sleep -----------------------------------------------------------


@contextmanager
def catching_direct_sleeps(on_sleep: Callable[[float], None],
                           modules: Iterable[ModuleType] = ()) -> Iterator[None]:
    """Replace ``time.sleep`` (and any module global bound to it, e.g. after
    ``from time import sleep``) with ``on_sleep`` for the duration, in the
    calling thread and the threads it starts; every other thread (the live
    harness's background launches, ``subprocess``'s own waits in them)
    sleeps for real (`threadscope`)."""
    real = time.sleep
    with thread_scope() as scope:
        fake_sleep = scoped(scope, on_sleep, real)
        with patched([(time, "sleep", fake_sleep), *rebound(modules, {id(real): fake_sleep})]):
            yield
