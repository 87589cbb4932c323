"""The tracing runner a recorded launch runs on, and scripted replies by predicate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bottle_api.runner import Call, RecordingRunner, Reply

# What the suite asks the agent to run; distinctive so tests can find it.
AGENT_ARGS: tuple[str, ...] = ("--print", "bottle-conformance-probe")

# A launch that runs more commands (or sleeps) than this is looping forever.
MAX_EVENTS = 5000

PHASES = ("launch", "agent_argv", "close")
DIRECT_SLEEP = "time.sleep"  # Call.kind of a sleep that bypassed the runner

# Placeholders the snapshot text uses instead of volatile values.
SECRET, STATE, HOME, TMP, PKG, BACKEND_PKG, PYTHON = (
    "<SECRET>", "<STATE>", "<HOME>", "<TMP>", "<PKG>", "<BACKEND_PKG>", "<PYTHON>")


class RunawayLaunch(BaseException):
    """The backend exceeded `MAX_EVENTS` calls: a poll without a bound.

    A BaseException so a backend's ``except Exception`` cannot swallow it."""


@dataclass
class TracingRunner(RecordingRunner):
    """`RecordingRunner` that also keeps each command's scripted stdout
    (``stdout_of``) and stops a runaway loop after `MAX_EVENTS` events."""

    stdouts: dict[int, str] = field(default_factory=dict)
    limit: int = MAX_EVENTS

    def _guard(self) -> None:
        if len(self.calls) >= self.limit:
            raise RunawayLaunch(f"more than {self.limit} commands/sleeps recorded: "
                                "a wait without a bound?")

    def run(self, argv, *, env=None, input=None, timeout=None, check=True, purpose=None):
        self._guard()
        index = len(self.calls)
        try:
            result = super().run(argv, env=env, input=input, timeout=timeout, check=check,
                                 purpose=purpose)
        except Exception as exc:
            res = getattr(exc, "result", None)
            self.stdouts[index] = getattr(res, "stdout", "") or ""
            raise
        self.stdouts[index] = result.stdout
        return result

    def sleep(self, seconds):
        self._guard()
        super().sleep(seconds)

    def direct_sleep(self, seconds: float) -> None:
        """Record a ``time.sleep`` the backend called itself (no wall time)."""
        self._guard()
        self.calls.append(Call(DIRECT_SLEEP, seconds=float(seconds)))

    def stdout_of(self, index: int) -> str:
        return self.stdouts.get(index, "")


@dataclass
class _PredicateReply(Reply):
    predicate: Callable[[tuple[str, ...]], bool] = field(default=lambda argv: False)

    def matches(self, argv: Sequence[str]) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return bool(self.predicate(tuple(argv)))


def reply_when(runner: RecordingRunner, predicate: Callable[[tuple[str, ...]], bool], *,
               stdout: str = "", returncode: int = 0, stderr: str = "",
               times: int | None = None) -> None:
    """Script an answer for every argv ``predicate`` accepts, ahead of all
    other replies (``RecordingRunner.reply`` matches by prefix only)."""
    runner.replies.insert(0, _PredicateReply((), stdout, returncode, stderr, times,
                                             predicate=predicate))
