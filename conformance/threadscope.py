"""Process-wide patches that apply to one thread's work only.

The static tiers patch process globals while they judge a backend call:
``subprocess.Popen``, ``open`` and friends refuse (PLAN-PURE), ``os.environ``
holds decoys (PLAN-PURE), ``time.sleep`` is recorded (LAUNCH-READY). In a
session that also runs the live tier, the live harness launches and closes
bottles in background threads at the same time; a patch that reached them
would break their launches (a refused write, a decoy ``PATH``) and put their
calls in the judged call's record (a flaky PLAN-PURE failure naming
``SubprocessRunner.run``, seen in CI). So each patch asks `ThreadScope`:
the thread that opened the scope, every ``threading.Thread`` started from
inside it while it is open, and every call it hands to a thread pool
(``ThreadPoolExecutor.submit``, whose workers may predate the scope) get the
replacement; every other thread gets the original, untouched.

Not seen: a thread started with the low-level ``_thread.start_new_thread``
(it has no ``threading.Thread`` to carry the scope), and C code reading the
process environment behind ``os.environ``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from typing import Any

_ATTR = "_bottle_thread_scopes"  # on a Thread started inside a scope: the scopes it is in
_lock = threading.Lock()
_open: list["ThreadScope"] = []
# "start" / "submit": the originals, kept after use (a thread may still be
# on its way into the patched one when the last scope closes)
_real: dict[str, Callable[..., Any]] = {}
_lent = threading.local()  # .scopes: those of the pool call this worker runs now


class ThreadScope:
    """The thread that opened it, the threads started from inside it, and
    the thread-pool calls submitted from inside it."""

    def __init__(self) -> None:
        self.owner = threading.get_ident()

    def active(self) -> bool:
        """Is the calling thread in this scope?"""
        if threading.get_ident() == self.owner:
            return True
        return (self in getattr(threading.current_thread(), _ATTR, ())
                or self in getattr(_lent, "scopes", ()))


def _scopes_here() -> tuple[ThreadScope, ...]:
    with _lock:
        return tuple(s for s in _open if s.active())


def _start_in_scopes(thread: threading.Thread, *args: Any, **kwargs: Any) -> Any:
    """``Thread.start`` while a scope is open: the new thread joins every
    scope its starter is in."""
    scopes = _scopes_here()
    if scopes:
        setattr(thread, _ATTR, scopes)
    return _real["start"](thread, *args, **kwargs)


def _submit_in_scopes(pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any,
                      **kwargs: Any) -> Any:
    """``ThreadPoolExecutor.submit`` while a scope is open: the call runs in
    every scope its submitter is in, whichever worker runs it."""
    scopes = _scopes_here()
    if scopes:
        inner = fn

        def fn(*a: Any, **k: Any) -> Any:
            before = getattr(_lent, "scopes", ())
            _lent.scopes = before + scopes
            try:
                return inner(*a, **k)
            finally:
                _lent.scopes = before
    return _real["submit"](pool, fn, *args, **kwargs)


@contextmanager
def thread_scope() -> Iterator[ThreadScope]:
    """Open a scope for the calling thread (``Thread.start`` and
    ``ThreadPoolExecutor.submit`` carry it on while it is open)."""
    scope = ThreadScope()
    with _lock:
        if not _open:
            _real["start"], _real["submit"] = threading.Thread.start, ThreadPoolExecutor.submit
            threading.Thread.start = _start_in_scopes  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = _submit_in_scopes  # type: ignore[method-assign]
        _open.append(scope)
    try:
        yield scope
    finally:
        with _lock:
            _open.remove(scope)
            if not _open:
                threading.Thread.start = _real["start"]  # type: ignore[method-assign]
                ThreadPoolExecutor.submit = _real["submit"]  # type: ignore[method-assign]


def scoped(scope: ThreadScope, replacement: Callable[..., Any],
           original: Callable[..., Any]) -> Callable[..., Any]:
    """A callable that is ``replacement`` in ``scope`` and ``original``
    everywhere else (for a class attribute, ``self`` is passed to both)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if scope.active():
            return replacement(*args, **kwargs)
        return original(*args, **kwargs)

    call.__wrapped__ = original  # type: ignore[attr-defined]
    return call


Patch = tuple[Any, str, Any]  # owner, attribute name, replacement


def rebound(modules: Iterable[ModuleType], replacements: Mapping[int, Any]) -> list[Patch]:
    """A patch for every global of ``modules`` bound to an original whose
    ``id`` is a key of ``replacements`` (left there by ``from time import
    sleep`` or ``from os import environ``): the module's own name for it
    must be replaced too."""
    return [(mod, name, replacements[id(value)]) for mod in modules
            for name, value in list(vars(mod).items())
            if id(value) in replacements and not isinstance(value, ModuleType)]


@contextmanager
def patched(patches: Iterable[Patch]) -> Iterator[None]:
    """Set each ``owner.name`` to its replacement; put every one back after
    (deleted again where the owner did not hold it itself: an inherited
    method)."""
    undo: list[tuple[Any, str, bool, Any]] = []  # owner, name, had own attribute, its value
    try:
        for owner, name, replacement in patches:
            own = vars(owner)
            undo.append((owner, name, name in own, own.get(name)))
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, had, value in reversed(undo):
            if had:
                setattr(owner, name, value)
            else:
                delattr(owner, name)


class ScopedEnviron(MutableMapping[str, str]):
    """Stands in for ``os.environ``: threads in ``scope`` read and write
    ``inside`` (a plain dict), every other thread the real environment."""

    def __init__(self, real: MutableMapping[str, str], inside: Mapping[str, str],
                 scope: ThreadScope) -> None:
        self._real = real
        self._inside = dict(inside)
        self._scope = scope

    def _target(self) -> MutableMapping[str, str]:
        return self._inside if self._scope.active() else self._real

    def __getitem__(self, key: str) -> str:
        return self._target()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._target()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._target()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._target()))

    def __len__(self) -> int:
        return len(self._target())

    def copy(self) -> dict[str, str]:
        return dict(self._target())

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**self._target(), **other}

    def __ror__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**other, **self._target()}

    def __repr__(self) -> str:
        return f"ScopedEnviron({dict(self._target())!r})"
