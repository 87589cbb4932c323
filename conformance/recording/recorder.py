"""`record`: drive one bottle through the seam on a recording runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bottle_api.backend import Backend, Bottle
from bottle_api.host import HostContext
from bottle_api.plan import Plan
from bottle_api.runner import Call, RecordingRunner
from bottle_api.spec import BottleSpec

from ..scenarios import Scenario, ScenarioInputs
from .normalise import Normaliser
from .render import render
from .packages import backend_modules
from .sleeps import catching_direct_sleeps
from .tracing import AGENT_ARGS, DIRECT_SLEEP, MAX_EVENTS, RunawayLaunch, TracingRunner

# -- the recording ---------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """What one recorded run of a backend did. Treat it as read-only.

    ``spans`` maps each phase that started (``launch``, ``agent_argv``,
    ``close``) to its ``(start, end)`` slice of ``runner.calls``.
    ``agent_argvs`` maps ``tty`` (False, True) to ``bottle.agent_argv(AGENT_ARGS)``.
    ``error`` is the exception prepare, launch, agent_argv or close raised
    (``error_phase`` says which), else None.
    """

    backend_name: str
    scenario: str | None
    spec: BottleSpec
    host: HostContext
    plan: Plan | None
    runner: TracingRunner
    spans: Mapping[str, tuple[int, int]]
    agent_args: tuple[str, ...]
    agent_argvs: Mapping[bool, tuple[str, ...]]
    agent_argv_raw: Mapping[bool, Any]  # exactly what agent_argv returned
    progress: tuple[str, ...]
    error: BaseException | None
    error_phase: str | None
    normalise: Normaliser = field(repr=False)
    bottle: Bottle | None = field(default=None, repr=False)

    # -- calls ---------------------------------------------------------------
    @property
    def calls(self) -> tuple[Call, ...]:
        return tuple(self.runner.calls)

    def phase_calls(self, phase: str) -> tuple[Call, ...]:
        start, end = self.spans.get(phase, (0, 0))
        return tuple(self.runner.calls[start:end])

    def indexed(self, phase: str | None = None) -> list[tuple[int, Call]]:
        """``(index into runner.calls, call)`` of one phase (None: all)."""
        start, end = self.spans.get(phase, (0, 0)) if phase else (0, len(self.runner.calls))
        return [(i, self.runner.calls[i]) for i in range(start, end)]

    def runs(self, phase: str | None = None) -> list[tuple[str, ...]]:
        """argv of every command (``kind == "run"``) in ``phase`` (None: all)."""
        calls = self.phase_calls(phase) if phase else self.runner.calls
        return [c.argv for c in calls if c.kind == "run"]

    def all_argvs(self) -> list[tuple[str, ...]]:
        """Every command run plus the two agent argvs."""
        return self.runs() + [self.agent_argvs[t] for t in (False, True) if t in self.agent_argvs]

    @property
    def direct_sleeps(self) -> list[float]:
        return [c.seconds for c in self.runner.calls if c.kind == DIRECT_SLEEP]

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.normalise.secrets

    def describe_error(self) -> str:
        if self.error is None:
            return "no error"
        return (f"{self.error_phase} raised {type(self.error).__name__}: "
                f"{self.normalise(str(self.error))}")

    # -- snapshot text ------------------------------------------------------------
    def text(self) -> str:
        """The recording as snapshot text: one event per block, one argv
        token per line, volatile values replaced by placeholders."""
        return self.normalise(render(self))


def _resolve(subject: Any, tmp: Path | None) -> tuple[BottleSpec, HostContext,
                                                       str | None, Path | None, tuple[str, ...]]:
    if isinstance(subject, Scenario):
        if tmp is None:
            raise TypeError("record(backend, scenario) needs tmp= (a scratch directory)")
        subject = subject.build(Path(tmp))
    if isinstance(subject, ScenarioInputs):
        return subject.spec, subject.host, subject.name, subject.root, subject.secrets
    spec, host = subject
    return spec, host, None, tmp, ()


def record(backend: Backend, subject: Scenario | ScenarioInputs | tuple[BottleSpec, HostContext],
           *, tmp: Path | None = None,
           script: Callable[[RecordingRunner, Plan], None] | None = None,
           agent_args: Sequence[str] = AGENT_ARGS, limit: int = MAX_EVENTS) -> Recording:
    """Record ``backend`` launching ``subject`` (a `Scenario` built under
    ``tmp``, a built `ScenarioInputs`, or a ``(spec, host)`` pair).

    ``script(runner, plan)`` runs after ``backend.script``: add replies with
    ``first=True`` to override the backend's own (e.g. a failing probe).
    The bottle is always closed when launch returned one.
    """
    spec, host, name, root, secrets = _resolve(subject, tmp)
    runner = TracingRunner(limit=limit)
    spans: dict[str, tuple[int, int]] = {}
    progress: list[str] = []
    agent_argvs: dict[bool, tuple[str, ...]] = {}
    agent_raw: dict[bool, Any] = {}
    plan: Plan | None = None
    bottle: Bottle | None = None
    error: BaseException | None = None
    error_phase: str | None = None

    def begin(phase: str) -> None:
        spans[phase] = (len(runner.calls), len(runner.calls))

    def end(phase: str) -> None:
        spans[phase] = (spans[phase][0], len(runner.calls))

    phase = "prepare"
    with catching_direct_sleeps(runner.direct_sleep, backend_modules(backend)):
        try:
            plan = backend.prepare(spec, host)
            phase = "script"
            backend.script(runner, plan)
            if script is not None:
                script(runner, plan)
            phase = "launch"
            begin(phase)
            try:
                bottle = backend.launch(plan, runner, progress=progress.append)
            finally:
                end(phase)
            phase = "agent_argv"
            begin(phase)
            try:
                for tty in (False, True):
                    agent_raw[tty] = bottle.agent_argv(list(agent_args), tty=tty)
                    agent_argvs[tty] = tuple(str(a) for a in agent_raw[tty])
            finally:
                end(phase)
        except (Exception, RunawayLaunch) as exc:
            error, error_phase = exc, phase
        finally:
            if bottle is not None:
                begin("close")
                try:
                    bottle.close()
                except (Exception, RunawayLaunch) as exc:
                    if error is None:
                        error, error_phase = exc, "close"
                finally:
                    end("close")

    secret_values = set(secrets) | set(runner.secret_values)
    if plan is not None:
        secret_values |= {v for v in plan.secrets.values() if v}
    normalise = Normaliser.build(secrets=secret_values, state_root=host.state_root,
                                 home=host.home, root=root, backend=backend)
    return Recording(
        backend_name=str(getattr(backend, "name", type(backend).__name__)),
        scenario=name, spec=spec, host=host, plan=plan, runner=runner, spans=spans,
        agent_args=tuple(agent_args), agent_argvs=agent_argvs, agent_argv_raw=agent_raw,
        progress=tuple(progress),
        error=error, error_phase=error_phase, normalise=normalise, bottle=bottle,
    )


class Recorder:
    """Records scenarios for one backend, each in a fresh scratch directory.

    ``recorder(scenario)`` is cached per scenario (a recording is read-only,
    and the snapshot tier reads the same launch many times); a ``script``
    or ``fresh=True`` always records anew.
    """

    def __init__(self, backend: Backend, mktemp: Callable[[str], Path],
                 cache: dict | None = None):
        self.backend = backend
        self.mktemp = mktemp
        self.cache = cache if cache is not None else {}

    def __call__(self, scenario: Scenario, *,
                 script: Callable[[RecordingRunner, Plan], None] | None = None,
                 fresh: bool = False) -> Recording:
        key = (id(self.backend), scenario.name)
        if script is None and not fresh and key in self.cache:
            return self.cache[key][1]
        rec = record(self.backend, scenario, tmp=self.mktemp(scenario.name), script=script)
        if script is None and not fresh:
            # Keep the backend alive with its recording so id() stays unique.
            self.cache[key] = (self.backend, rec)
        return rec
