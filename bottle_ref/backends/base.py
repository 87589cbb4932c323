"""The backend seam the conformance suite tests (DESIGN §3).

    BottleSpec + HostContext --prepare()--> Plan      pure: no runner, no I/O
    Plan + Runner            --launch()---> Bottle    images, bundle, guest, provisioning
    Bottle.agent_argv / exec / close                  exec framing; teardown

A third-party backend subclasses `Backend` and `Bottle`; the suite needs
nothing else from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from ..host import HostContext
from ..plan import Plan
from ..runner import Completed, RecordingRunner, Runner
from ..spec import BottleSpec

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class Bottle(ABC):
    """A running bottle. Closing is idempotent and safe after a failed launch."""

    plan: Plan

    @abstractmethod
    def agent_argv(self, argv: Sequence[str] = (), *, tty: bool = True) -> list[str]:
        """Full host argv that runs the agent (claude or codex) with ``argv``.

        The agent runs as ``node`` with ``HOME=/home/node``. TTY framing
        appears only when ``tty`` is true.
        """

    @abstractmethod
    def exec(
        self,
        cmd: Sequence[str],
        *,
        user: str = "node",
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> Completed:
        """Run ``cmd`` in the guest as ``user`` ("node" or "root")."""

    @abstractmethod
    def close(self) -> None:
        """Remove everything launch created; never touch anything else."""

    def handle(self) -> dict:
        """JSON-able facts `Backend.attach` needs to rebuild this bottle
        (resource names, discovered addresses). Never holds a secret."""
        raise NotImplementedError

    def __enter__(self) -> "Bottle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(ABC):
    """A way to run bottles. Class attributes describe it to the suite."""

    name: ClassVar[str]
    version: ClassVar[str] = "0"
    # Capabilities this backend declares (see conformance.capabilities).
    capabilities: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def prepare(self, spec: BottleSpec, host: HostContext) -> Plan:
        """Resolve spec + host into a plan. Pure: no runner, no subprocess,
        no network, no filesystem writes; same inputs give an equal plan."""

    @abstractmethod
    def launch(self, plan: Plan, runner: Runner, *, progress: Progress = _quiet) -> Bottle:
        """Bring the bottle up. On failure, undo what was done, then raise."""

    def attach(self, plan: Plan, runner: Runner, handle: Mapping) -> Bottle:
        """Rebuild a bottle launched earlier from `Bottle.handle` (CLI exec/down)."""
        raise NotImplementedError

    def script(self, runner: RecordingRunner, plan: Plan) -> None:
        """Add the scripted replies a recorded launch of ``plan`` needs to
        succeed (e.g. ``docker port`` answers, ``1 added``). Default: none."""

    def live_unavailable(self, runner: Runner) -> str | None:
        """Why the live tier cannot run here (e.g. no engine), or None."""
        return None
