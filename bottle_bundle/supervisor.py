"""``bottle-bundle <daemon>[,<daemon>...]``: start the bundle's daemons, die with them.

The docker backend runs one daemon per container, smolmachines runs them all
in one; both call this. Each daemon is a child process (``python -m
<module>``), one line is printed per daemon started, SIGTERM/SIGINT/SIGHUP
are forwarded, and as soon as any daemon exits the others are stopped and
the supervisor exits non-zero: a dead pipelock must take the bundle down
(fail closed, LIVE-FAILCLOSED) rather than leave a half-working bottle.

Waiting is event-driven (``sigwaitinfo`` on SIGCHLD and the stop signals),
never a polling sleep; children that ignore SIGTERM are killed after
``STOP_GRACE`` seconds. As PID 1 in a container this also reaps the children.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from . import DAEMONS
from .socket_relay import ENV as SOCKET_RELAY_ENV
from .socket_relay import PROG as SOCKET_RELAY

PROG = "bottle-bundle"
STOP_GRACE = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
WATCHED = {signal.SIGCHLD, *STOP_SIGNALS}


class UsageError(ValueError):
    pass


def parse_daemons(argv: Sequence[str]) -> list[str]:
    """``["pipelock,egress", "git-gate"]`` -> names in order, de-duplicated."""
    names: list[str] = []
    for arg in argv:
        for raw in arg.split(","):
            name = raw.strip()
            if not name:
                continue
            if name not in DAEMONS:
                raise UsageError(f"unknown daemon {name!r} (known: {', '.join(DAEMONS)})")
            if name not in names:
                names.append(name)
    if not names:
        raise UsageError(f"usage: {PROG} <daemon>[,<daemon>...]  (daemons: {', '.join(DAEMONS)})")
    return names


def _say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def _describe(status: int) -> tuple[str, int]:
    """Human text and an exit code for a ``waitpid`` status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"killed by {signal.Signals(sig).name}", 128 + sig
    code = os.WEXITSTATUS(status)
    return f"exited with code {code}", code


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        names = parse_daemons(argv)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return 2

    # A no-op handler, because as PID 1 in a container a signal left at
    # SIG_DFL may be dropped by the kernel. Then block the watched signals
    # *before* forking so none is lost; children get the old mask back
    # before they exec (and exec resets the handlers).
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: None)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    children: dict[int, str] = {}
    procs: list[subprocess.Popen] = []  # kept referenced: a collected Popen may reap behind our back

    def stop_all(sig: int) -> None:
        for pid in children:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # The smolmachines bundle also serves its daemons on Unix sockets
    # (`socket_relay`, mappings in BOTTLE_SOCKET_RELAYS); it is supervised
    # like a daemon: if it dies, the bundle stops.
    commands = [(name, [sys.executable, "-m", DAEMONS[name]]) for name in names]
    if os.environ.get(SOCKET_RELAY_ENV, "").strip():
        commands.append((SOCKET_RELAY, [sys.executable, "-m", "bottle_bundle.socket_relay"]))
    try:
        for name, command in commands:
            proc = subprocess.Popen(
                command,
                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, old_mask),
            )
            procs.append(proc)
            children[proc.pid] = name
            _say(f"started {name} (pid {proc.pid})")
    except OSError as exc:
        print(f"{PROG}: cannot start {name}: {exc}", file=sys.stderr, flush=True)
        stop_all(signal.SIGTERM)
        return 1

    exit_code = 0
    stopping = False
    kill_at: float | None = None
    while children:
        # Reap everything that has exited.
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            name = children.pop(pid, None)
            if name is None:
                continue  # an orphan we inherited as PID 1
            text, code = _describe(status)
            if stopping:
                _say(f"{name} {text}")
                continue
            _say(f"{name} {text}; stopping the bundle")
            exit_code = code or 1
            stopping = True
            kill_at = time.monotonic() + STOP_GRACE
            stop_all(signal.SIGTERM)
        if not children:
            break
        timeout = None if kill_at is None else kill_at - time.monotonic()
        if timeout is not None and timeout <= 0:
            _say(f"killing {', '.join(children.values())} after {STOP_GRACE:g}s")
            stop_all(signal.SIGKILL)
            kill_at = None
            continue
        info = (signal.sigwaitinfo(WATCHED) if timeout is None
                else signal.sigtimedwait(WATCHED, timeout))
        if info is not None and info.si_signo in STOP_SIGNALS and not stopping:
            _say(f"received {signal.Signals(info.si_signo).name}; stopping")
            stopping = True
            kill_at = time.monotonic() + STOP_GRACE
            stop_all(signal.SIGTERM)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
