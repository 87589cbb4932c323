"""A per-call watchdog on the backend: a hang becomes ERROR, not a hung run.

Every call the suite makes into a backend (each seam method of `Backend`
in `BACKEND_CALLS`, and of every `Bottle` its launch or attach returns in
`BOTTLE_CALLS`) runs under a deadline. When it passes in the main thread,
the call is interrupted (SIGALRM, so a backend blocked in a socket read, a
``time.sleep``, a lock or a ``subprocess.wait`` is woken) with
`CallTimedOut`, a pytest skip whose reason starts ``ERROR:`` and names the
call: the clause tests involved end as ERROR with the reason, and the
session goes on to the next test and writes its report. In any other
thread (the live tier launches in a thread pool, where SIGALRM cannot
fire) the call runs in a daemon thread of its own and the caller stops
waiting at the deadline with the same `CallTimedOut`; the hung call is
abandoned (a thread cannot be interrupted), its engine commands bounded by
their own subprocess timeouts.

`CallTimedOut` is pytest's skip outcome, a BaseException (as every pytest outcome does), so
a backend's ``except Exception`` cannot swallow it; its own ``finally`` /
``except BaseException`` clean-up still runs, under a second deadline of the
same length.

The deadline is per call, not per test: ``--bottle-call-timeout SECS``
(env ``BOTTLE_CALL_TIMEOUT``) sets it for every tier; by default a static
tier call (a recorded launch does no real work) gets `DEFAULT_STATIC`
seconds and a live one `DEFAULT_LIVE`.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .outcomes import ERROR_PREFIX

DEFAULT_STATIC = 30.0
DEFAULT_LIVE = 600.0
OPTION = "--bottle-call-timeout"

BACKEND_CALLS = ("prepare", "launch", "attach", "script", "live_unavailable",
                 "live_unsupported", "live_network_unsupported", "standins")
BOTTLE_CALLS = ("agent_argv", "exec", "close", "handle", "outbound_network",
                "internal_endpoints", "resources", "guest_mounts", "stop_daemon")
_MARK = "_bottle_watchdog_original"


# A pytest skip (not a subclass: pytest shows a subclass's qualified name in
# the reason) whose reason starts "ERROR:"; `timed_out` tells it apart.
CallTimedOut = pytest.skip.Exception


def timed_out(exc: BaseException) -> bool:
    return bool(getattr(exc, "bottle_call_timeout", False))


class _Clock(threading.local):
    """The deadline applying now (set per test by the plugin, for every
    thread), and how deeply guarded calls nest in this thread."""

    timeout: float | None = None

    def __init__(self) -> None:
        self.depth = 0


def _set_class_timeout(seconds: float | None) -> None:
    _Clock.timeout = seconds


CLOCK = _Clock()


def set_timeout(seconds: float | None) -> None:
    """The deadline for every guarded call, in every thread."""
    _set_class_timeout(seconds)


def timeout_error(what: str, seconds: float, note: str) -> BaseException:
    exc = CallTimedOut(
        f"{ERROR_PREFIX} {what} did not return within {seconds:g} s ({OPTION}); {note}",
        allow_module_level=True,
    )
    exc.bottle_call_timeout = True
    return exc


def call_in_thread(what: str, seconds: float, fn: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a daemon thread of its own, waited for at
    most ``seconds``: its value or its exception, else `CallTimedOut`
    naming ``what`` (the call is abandoned: a thread cannot be interrupted)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        CLOCK.depth += 1  # calls nested inside are under this deadline already
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            CLOCK.depth -= 1
            done.set()

    threading.Thread(target=run, name=f"bottle-call {what}", daemon=True).start()
    if not done.wait(seconds):
        raise timeout_error(what, seconds, "abandoned (it runs in a worker thread, which "
                                            "cannot be interrupted)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def deadline(what: str, seconds: float | None) -> Iterator[None]:
    """Run the body under a deadline of ``seconds``; raise `CallTimedOut`
    (once more after a grace period as long again, for the clean-up) when it
    passes. Nested deadlines defer to the outermost one."""
    if not seconds or CLOCK.depth or not _can_alarm():
        CLOCK.depth += 1
        try:
            yield
        finally:
            CLOCK.depth -= 1
        return
    fired = [0]

    def on_alarm(signum: int, frame: Any) -> None:
        fired[0] += 1
        if fired[0] == 1:
            signal.setitimer(signal.ITIMER_REAL, seconds)  # bound the clean-up too
        raise timeout_error(what, seconds, "interrupted" + (
            "" if fired[0] == 1 else " again during its clean-up"))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    CLOCK.depth += 1
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        CLOCK.depth -= 1
        signal.signal(signal.SIGALRM, previous)


def _guard(owner: Any, name: str, what: str, after: Callable[[Any], Any] | None = None) -> None:
    """Replace ``owner.name`` (a bound method) by a guarded one, on the
    instance only; idempotent. Objects that refuse attributes stay unguarded."""
    method = getattr(owner, name, None)
    if method is None or not callable(method) or getattr(method, _MARK, None) is not None:
        return

    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        seconds = CLOCK.timeout
        if seconds and not CLOCK.depth and not _can_alarm():
            result = call_in_thread(what, seconds, method, *args, **kwargs)
        else:
            with deadline(what, seconds):
                result = method(*args, **kwargs)
        return after(result) if after is not None else result

    setattr(guarded, _MARK, method)
    try:
        setattr(owner, name, guarded)
    except (AttributeError, TypeError):
        pass


def guard_bottle(bottle: Any) -> Any:
    kind = type(bottle).__name__
    for name in BOTTLE_CALLS:
        _guard(bottle, name, f"{kind}.{name}()")
    return bottle


def guard_backend(backend: Any) -> Any:
    """Put the watchdog on ``backend`` (and on every bottle its launch returns)."""
    kind = type(backend).__name__
    for name in BACKEND_CALLS:
        _guard(backend, name, f"{kind}.{name}()",
               after=guard_bottle if name in ("launch", "attach") else None)
    return backend


def unguard(obj: Any) -> None:
    """Remove the watchdog from ``obj`` (tests of the watchdog itself)."""
    for name in BACKEND_CALLS + BOTTLE_CALLS:
        method = vars(obj).get(name) if hasattr(obj, "__dict__") else None
        if method is not None and getattr(method, _MARK, None) is not None:
            delattr(obj, name)
