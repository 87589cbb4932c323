"""Catching ``time.sleep`` that bypasses the runner (LAUNCH-READY)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import bottle_ref
from bottle_api.backend import Backend

# -- catching time.sleep -----------------------------------------------------------


def _backend_modules(backend: Backend) -> list[ModuleType]:
    """Loaded modules of the backend's top-level package, and of bottle_ref
    (whose shared helpers a third-party backend may call)."""
    tops = {type(backend).__module__.split(".")[0], bottle_ref.__name__}
    return [m for name, m in list(sys.modules.items())
            if m is not None and name.split(".")[0] in tops]


@contextmanager
def catching_direct_sleeps(on_sleep: Callable[[float], None],
                           modules: Iterable[ModuleType] = ()) -> Iterator[None]:
    """Replace ``time.sleep`` (and any module global bound to it, e.g. after
    ``from time import sleep``) with ``on_sleep`` for the duration."""
    real = time.sleep

    def fake_sleep(seconds: float) -> None:
        on_sleep(seconds)

    patched: list[tuple[Any, str]] = [(time, "sleep")]
    for mod in modules:
        for name, value in list(vars(mod).items()):
            if value is real:
                patched.append((mod, name))
    for owner, name in patched:
        setattr(owner, name, fake_sleep)
    try:
        yield
    finally:
        for owner, name in patched:
            setattr(owner, name, real)
