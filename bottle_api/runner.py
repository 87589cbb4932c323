"""Every external command a backend runs goes through a `Runner`.

This is the contract's mechanism, not a test convenience: the conformance
suite injects a `RecordingRunner` to snapshot argv and check invariants
without an engine, and production uses `SubprocessRunner`.

Rules every backend keeps (the suite checks them):
- secrets travel in ``env=`` (merged into the child's environment), never in
  ``argv``; the recording runner keeps only the *names* of ``env`` entries;
- waiting goes through ``runner.sleep`` so polling is visible and bounded;
- names that must be unique per run come from ``runner.unique`` so a recorded
  run is reproducible;
- the command that observes the guest's readiness is marked
  ``purpose=READY`` (LAUNCH-READY judges that command, and checks that it
  targets the guest provisioning then uses). ``purpose`` is a label for
  readers of a recording; it never changes what runs.
"""

from __future__ import annotations

import fnmatch
import os
import secrets
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

# ``Runner.run(..., purpose=READY)``: this command is the launch's guest
# readiness probe (retried by a bounded poll until it succeeds).
READY = "ready"
PURPOSES = frozenset({READY})


@dataclass(frozen=True)
class Completed:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandError(RuntimeError):
    """A checked command exited non-zero (or could not be started).

    The message carries argv (safe: argv never holds a secret) and the tail
    of stderr, so the user sees what failed without a traceback.
    """

    def __init__(self, result: Completed):
        self.result = result
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        detail = ("; ".join(tail)) if tail else "no output"
        super().__init__(
            f"command failed (exit {result.returncode}): {' '.join(result.argv)}: {detail}"
        )


class Runner(ABC):
    """Runs external commands; the only way a backend touches the host."""

    # True when ``run`` may be called from several threads at once and the
    # order of concurrent calls means nothing to it (nothing recorded or
    # counted): a backend may then overlap independent commands (e.g.
    # start its containers together). False (the default; every recording
    # or wrapping runner until it opts in): one command after another, in
    # the backend's own order, so a recorded run stays reproducible.
    concurrent: bool = False

    @abstractmethod
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
        check: bool = True,
        purpose: str | None = None,
    ) -> Completed:
        """Run ``argv``; ``env`` is merged over the inherited environment.

        ``purpose`` (one of `PURPOSES`, or None) says why the backend runs
        it, e.g. `READY` for its readiness probe; runners only record it."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Wait between polls. Backends never call ``time.sleep`` directly."""

    @abstractmethod
    def monotonic(self) -> float:
        """The clock polls measure their deadline against."""

    @abstractmethod
    def unique(self, prefix: str) -> str:
        """A name unique to this run (deterministic under recording)."""


# Seconds any command may run when its caller gives no timeout: a hung engine
# (a `docker create` that never answers) must end as a failure, never hang
# the CLI or the suite. Long enough for an image save or a slow engine.
DEFAULT_TIMEOUT = 900.0


class SubprocessRunner(Runner):
    """Production runner: real subprocesses, real clock.

    Every command is bounded: ``timeout=None`` means ``default_timeout``
    (`DEFAULT_TIMEOUT`; pass ``default_timeout=None`` for a runner whose
    commands are the user's own, e.g. ``bottle-ref exec``)."""

    concurrent = True  # each call is its own subprocess; nothing is kept between calls

    def __init__(self, *, echo: Callable[[str], None] | None = None,
                 default_timeout: float | None = DEFAULT_TIMEOUT):
        self._echo = echo
        self.default_timeout = default_timeout

    def run(self, argv, *, env=None, input=None, timeout=None, check=True, purpose=None):
        argv = tuple(str(a) for a in argv)
        if timeout is None:
            timeout = self.default_timeout
        if self._echo:
            self._echo("$ " + " ".join(argv))
        child_env = None
        if env:
            child_env = dict(os.environ)
            child_env.update(env)
        try:
            proc = subprocess.run(
                argv,
                env=child_env,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            result = Completed(argv, proc.returncode, proc.stdout, proc.stderr)
        except FileNotFoundError:
            result = Completed(argv, 127, "", f"{argv[0]}: command not found")
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            result = Completed(argv, 124, out, f"timed out after {timeout}s")
        if check and not result.ok:
            raise CommandError(result)
        return result

    def sleep(self, seconds):
        time.sleep(seconds)

    def monotonic(self):
        return time.monotonic()

    def unique(self, prefix):
        return f"{prefix}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Call:
    """One recorded event: a command (``kind="run"``) or a wait (``"sleep"``).

    ``purpose`` is what the backend said the command is for (`READY`), or None."""

    kind: str
    argv: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()
    input: str | None = None
    timeout: float | None = None
    returncode: int = 0
    seconds: float = 0.0
    purpose: str | None = None


@dataclass
class Reply:
    """A scripted answer for commands whose argv matches ``pattern``.

    ``pattern`` is a tuple of fnmatch globs matched against the argv prefix;
    ``contains``, if set, must be a substring of some argv token (so the
    suite can answer e.g. ``update-ca-certificates`` whatever a backend's
    exec framing looks like). ``times`` limits how often it answers (None:
    always). The first matching reply that still has answers left wins.
    """

    pattern: tuple[str, ...]
    stdout: str = ""
    returncode: int = 0
    stderr: str = ""
    times: int | None = None
    contains: str | None = None

    def matches(self, argv: Sequence[str]) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if len(argv) < len(self.pattern):
            return False
        if self.contains is not None and not any(self.contains in a for a in argv):
            return False
        return all(fnmatch.fnmatchcase(a, p) for a, p in zip(argv, self.pattern))


@dataclass
class RecordingRunner(Runner):
    """Records every call, answers from a script, never runs anything.

    Unscripted commands succeed with empty output. The clock is fake and
    advances only through ``sleep``, so polling loops are deterministic.
    Values passed in ``env`` are dropped; only names are kept, and
    ``secret_values`` collects them so tests can prove none leaked to argv.
    """

    replies: list[Reply] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    secret_values: set[str] = field(default_factory=set)
    _clock: float = 0.0
    _counters: dict[str, int] = field(default_factory=dict)

    def reply(self, *pattern: str, stdout: str = "", returncode: int = 0,
              stderr: str = "", times: int | None = None,
              contains: str | None = None, first: bool = False) -> "RecordingRunner":
        """Script an answer; ``first=True`` puts it ahead of earlier replies."""
        reply = Reply(tuple(pattern), stdout, returncode, stderr, times, contains)
        if first:
            self.replies.insert(0, reply)
        else:
            self.replies.append(reply)
        return self

    def run(self, argv, *, env=None, input=None, timeout=None, check=True, purpose=None):
        if purpose is not None and purpose not in PURPOSES:
            raise ValueError(f"unknown runner purpose {purpose!r}; "
                             f"expected one of {', '.join(sorted(PURPOSES))}")
        argv = tuple(str(a) for a in argv)
        reply = next((r for r in self.replies if r.matches(argv)), None)
        if reply is not None and reply.times is not None:
            reply.times -= 1
        rc = reply.returncode if reply else 0
        result = Completed(argv, rc, reply.stdout if reply else "", reply.stderr if reply else "")
        for value in (env or {}).values():
            if value:
                self.secret_values.add(value)
        self.calls.append(
            Call("run", argv, tuple(sorted((env or {}).keys())), input, timeout, rc,
                 purpose=purpose)
        )
        if check and not result.ok:
            raise CommandError(result)
        return result

    def sleep(self, seconds):
        self._clock += seconds
        self.calls.append(Call("sleep", seconds=seconds))

    def monotonic(self):
        return self._clock

    def unique(self, prefix):
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}-{n:04d}"

    # -- helpers for assertions -------------------------------------------
    @property
    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls if c.kind == "run"]

    def find(self, *pattern: str) -> list[Call]:
        probe = Reply(tuple(pattern))
        return [c for c in self.calls if c.kind == "run" and probe.matches(c.argv)]

    def marked(self, purpose: str) -> list[Call]:
        """Commands the backend ran with ``purpose=`` (e.g. `READY`)."""
        return [c for c in self.calls if c.kind == "run" and c.purpose == purpose]


def poll(
    runner: Runner,
    probe: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    max_interval: float = 0.5,
    what: str = "condition",
) -> None:
    """Call ``probe`` until it returns True, backing off; bounded by ``timeout``.

    This replaces the seeds' fixed 1.5 s sleep after machine start: readiness
    is observed, not assumed. Raises ``TimeoutError`` naming ``what``.
    """
    deadline = runner.monotonic() + timeout
    delay = interval
    while True:
        if probe():
            return
        if runner.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready after {timeout:g}s")
        runner.sleep(delay)
        delay = min(delay * 2, max_interval)


class DelegatingRunner(Runner):
    """A `Runner` that hands everything to ``inner``: subclass it and
    override only what differs (e.g. ``run`` to watch, rewrite or guard
    commands). Keyword arguments of ``run`` pass through untouched, so a
    wrapper keeps working when `Runner.run` grows one."""

    def __init__(self, inner: Runner):
        self.inner = inner

    def run(self, argv, **kw) -> Completed:
        return self.inner.run(argv, **kw)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def unique(self, prefix: str) -> str:
        return self.inner.unique(prefix)
