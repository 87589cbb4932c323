"""Everything the live harness creates, and its guaranteed removal.

Like csi-test's ``resources.go``: each resource is registered the moment
it exists, and `Resources.cleanup` (run from a fixture finalizer, so it
survives a failed assertion) removes them all, attempting every one even
when one fails: our containers first (one ``docker rm``), then the bottles
(closed concurrently), then networks and directories newest first. Only names registered here are ever removed:
the harness never touches what it did not create.

Names are unique per run and per pytest-xdist worker (`run_tag`), so
``pytest -n auto`` is safe and leftovers are attributable.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Engine

# Every name the live harness makes starts with this, and every engine
# object it creates itself carries LABEL_KEY=<run tag>. Bottles launched by
# the harness are named PREFIX... too, so their backend's resources carry it.
PREFIX = "bctl-"
LABEL_KEY = "bottle-conformance.live"
TAG_ENV = "BOTTLE_LIVE_TAG"


def run_tag() -> str:
    """Short, unique per process: random hex plus the xdist worker number.
    ``BOTTLE_LIVE_TAG`` (lower-case alphanumerics) pins the first part, so an
    outer test can find what a nested run made; the worker number is kept
    even then, or two workers would share names and remove each other's
    containers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    suffix = worker.removeprefix("gw") if worker.startswith("gw") else ""
    worker_part = f"w{suffix}" if suffix else ""
    pinned = os.environ.get(TAG_ENV, "").strip().lower()
    if pinned:
        if not pinned.isalnum() or len(pinned) > 12:
            raise ValueError(f"{TAG_ENV}={pinned!r}: expected up to 12 letters/digits")
        return pinned + worker_part
    return secrets.token_hex(3) + worker_part


@dataclass
class Resources:
    """A LIFO stack of cleanups for what the harness created."""

    engine: Engine
    tag: str
    _stack: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    _containers: list[str] = field(default_factory=list)
    _bottles: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def name(self, role: str) -> str:
        """``bctl-<tag>-<n>-<role>``: unique within the run (bottles launch
        in background threads too)."""
        with self._lock:
            self._counter += 1
            return f"{PREFIX}{self.tag}-{self._counter}-{role}"

    @property
    def label(self) -> str:
        return f"{LABEL_KEY}={self.tag}"

    def defer(self, what: str, fn: Callable[[], None]) -> None:
        """Register a cleanup (e.g. a directory's removal)."""
        self._stack.append((what, fn))

    def bottle(self, what: str, close: Callable[[], None]) -> None:
        """Register a bottle's close. Bottles are closed concurrently, after
        our containers (which sit on their networks) are gone."""
        with self._lock:
            self._bottles.append((what, close))

    def take_bottle(self, what: str) -> Callable[[], None] | None:
        """Unregister the close registered as ``what`` and return it (the
        caller now owns it: `LiveHarness` closes a bottle early, once the
        last test that needs it has ended), or None if none is."""
        with self._lock:
            for i, (name, close) in enumerate(self._bottles):
                if name == what:
                    del self._bottles[i]
                    return close
        return None

    def remove_containers_on(self, network: str) -> None:
        """Remove our containers attached to ``network`` (its bottle's close
        needs the network free of them) and forget them. Raises if the
        engine does not remove them."""
        with self._lock:
            mine = list(self._containers)
        if not mine:
            return
        listed = set(self.engine.run("ps", "-a", "--filter", f"network={network}",
                                     "--format", "{{.Names}}").stdout.split())
        names = [n for n in mine if n in listed]
        if not names:
            return
        self._remove_containers(names)
        with self._lock:
            self._containers = [n for n in self._containers if n not in names]

    def _remove_containers(self, names: list[str]) -> None:
        """One ``docker rm``; a container already gone is fine, one that
        stays is an error naming it."""
        result = self.engine.run("rm", "-f", "-v", *names, check=False)
        left = [n for n in names if not result.ok and self.engine.exists("container", n)]
        if left:
            raise RuntimeError(f"could not remove containers {', '.join(left)}: "
                               f"{(result.stderr or result.stdout).strip()}")

    def container(self, name: str) -> str:
        with self._lock:
            self._containers.append(name)
        return name

    def network(self, name: str) -> str:
        self.defer(f"network {name}", lambda: self._remove("network", name,
                                                          ("network", "rm", name)))
        return name

    def _remove(self, kind: str, name: str, argv: tuple[str, ...]) -> None:
        """Remove; an object that is already gone is fine, one that stays is an error."""
        result = self.engine.run(*argv, check=False)
        if not result.ok and self.engine.exists(kind, name):
            raise RuntimeError(f"could not remove {kind} {name}: "
                               f"{(result.stderr or result.stdout).strip()}")

    def directory(self, path: Path) -> Path:
        self.defer(f"directory {path}", lambda: shutil.rmtree(path, ignore_errors=True))
        return path

    def cleanup(self) -> None:
        """Undo everything: our containers (one ``docker rm``), then every
        bottle's close (concurrently), then the rest newest first; raise
        once at the end if any step failed (after trying every step)."""
        errors = []
        names, self._containers = list(reversed(self._containers)), []
        if names:
            try:
                self._remove_containers(names)
            except RuntimeError as exc:  # keep going: the bottles must still close
                errors.append(str(exc))
        bottles, self._bottles = list(reversed(self._bottles)), []
        if bottles:
            with ThreadPoolExecutor(max_workers=min(4, len(bottles))) as pool:
                for (what, _), fut in zip(bottles, [pool.submit(fn) for _, fn in bottles]):
                    try:
                        fut.result()
                    except Exception as exc:  # keep going: the others must still close
                        errors.append(f"{what}: {exc}")
        while self._stack:
            what, fn = self._stack.pop()
            try:
                fn()
            except Exception as exc:  # keep going: later steps must still run
                errors.append(f"{what}: {exc}")
        if errors:
            raise RuntimeError("live-tier cleanup failed: " + "; ".join(errors))
