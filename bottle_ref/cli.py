"""``bottle-ref``: validate, plan, bring up, exec into, list and tear down bottles.

Expected failures (bad spec, unknown backend or bottle, a failing command, a
provisioning error, a timeout, a file error) print ONE line
``bottle-ref: error: ...`` and exit 2 for bad input or 1 for runtime
failures; only a bug shows a traceback.

``up`` records ``{name, backend, spec, spec_text, base_dir, state_dir, handle}`` in
``<state_root>/bottles/<name>.json`` so that ``exec`` and ``down`` (later
processes) can re-prepare the same plan and `Backend.attach` to the bottle.
The spec text is kept so an edited or moved spec file cannot make ``down``
tear down something other than what ``up`` launched. No secret is stored.

Crash safety: ``up`` writes the state file first (``starting``, its pid)
and then, through the reference backends' ``journal`` hook, the bottle's
handle BEFORE each engine object is created, so after a kill at any point
``down NAME`` (or ``gc``) removes whatever exists: by the journal, then by
the ``bottle-ref.bottle=<ident>`` label. SIGINT/SIGTERM during ``up`` are
deferred while a command runs (so a ``docker create`` in flight completes
and is journaled), then raised: launch tears down, and ``up`` exits 130/143.
A command that fails while a signal is pending (Ctrl-C reaches the whole
process group, so the child dies too) raises the interrupt at once, so the
teardown is never cut short. The plan's state dir (CA keys) is journaled
before launch and removed with the rest; nothing is forgotten without
proof from the engine that it is gone.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from bottle_api.registry import BackendNotFound, get_backend
from bottle_api.backend import Backend, Bottle
from bottle_api.host import HostContext
from bottle_api.plan import Plan, to_json
from bottle_api.conventions import LABEL_KEY
from bottle_api.runner import (DEFAULT_TIMEOUT, CommandError, Completed, DelegatingRunner,
                               Runner, SubprocessRunner, poll)
from bottle_api.spec import (NAME_RE, BottleSpec, SpecError, load_spec, load_spec_with_text,
                             parse_spec)

from .termsafe import strip_controls

PROG = "bottle-ref"
EXIT_OK, EXIT_RUNTIME, EXIT_INPUT = 0, 1, 2
BACKEND_ENV = "BOTTLE_BACKEND"
DEFAULT_BACKEND = "docker"
STATE_VERSION = 1
# Secret values shorter than this are not scanned for in output: a 3-letter
# "token" would match innocent text. Real tokens are far longer.
MIN_SECRET_LEN = 8


class InputError(Exception):
    """Bad input that is not a spec error (e.g. unknown bottle name): exit 2."""


class RuntimeFailure(Exception):
    """A runtime failure the CLI detected itself (e.g. bottle already up): exit 1."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during ``up``: exit 128 + signum after cleanup."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# Seconds a command in flight may still run after SIGINT/SIGTERM before it is
# killed and teardown starts (env BOTTLE_REF_SIGNAL_GRACE overrides).
SIGNAL_GRACE = 10.0
SIGNAL_GRACE_ENV = "BOTTLE_REF_SIGNAL_GRACE"


class _SignalGuard:
    """SIGINT/SIGTERM handling for ``up``.

    While commands run (a launch may overlap several, from its threads)
    the signal is only noted (they finish, so what they created is known
    and journaled); it is raised as `Interrupted` as soon as one returns,
    at once when nothing runs or a second signal arrives, and after
    `SIGNAL_GRACE` seconds when commands hang (every one still running is
    then killed, `kill_children`). Once raised, further
    signals are ignored so that teardown completes (SIGKILL still ends us;
    the journal then lets ``down`` finish the job).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.pending: int | None = None
        self.children = 0  # commands in flight (a launch may overlap several)
        self.raised = False
        self.kill_children: Callable[[], None] = lambda: None  # set by `up`
        # Reentrant: the handlers run in the main thread, maybe while it holds it.
        self._lock = threading.RLock()
        self._previous: dict[int, object] = {}
        try:
            self.grace = max(0.0, float(os.environ.get(SIGNAL_GRACE_ENV) or SIGNAL_GRACE))
        except ValueError:
            self.grace = SIGNAL_GRACE

    @property
    def in_child(self) -> bool:
        return self.children > 0

    def _handler(self, signum, _frame) -> None:
        if self.raised:
            return
        if self.in_child and self.pending is None:
            self.pending = signum
            # The command in flight gets a short grace to finish (and be
            # journaled); one that hangs is then abandoned (subprocess.run
            # kills it as the interrupt unwinds) so ONE signal is enough.
            if self.grace and hasattr(signal, "setitimer"):
                signal.setitimer(signal.ITIMER_REAL, self.grace)
            return
        self._raise(signum)

    def _grace_over(self, _signum, _frame) -> None:
        # Commands still running after the grace hang: kill them (also when
        # the interrupt was already raised by one that had returned).
        if self.in_child and self.pending is not None:
            self.kill_children()
            if not self.raised:
                self._raise(self.pending)

    def _raise(self, signum: int) -> None:
        with self._lock:  # once, whichever thread gets here first
            if self.raised:
                return
            self.raised = True
        _echo(f"{PROG}: {signal.Signals(signum).name}: cleaning up (kill -9 abandons it; "
              f"`{PROG} down NAME` then removes the rest)")
        raise Interrupted(signum)

    def check(self) -> None:
        if self.pending is not None and not self.raised:
            self._raise(self.pending)

    @contextmanager
    def child(self) -> Iterator[None]:
        with self._lock:
            self.children += 1
        try:
            yield
        finally:
            with self._lock:
                self.children -= 1
                last = self.children == 0
            if last and hasattr(signal, "setitimer"):
                signal.setitimer(signal.ITIMER_REAL, 0)

    def __enter__(self) -> "_SignalGuard":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handler)
        if hasattr(signal, "SIGALRM"):
            self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._grace_over)
        return self

    def __exit__(self, *exc) -> None:
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


class _GuardedRunner(DelegatingRunner):
    """Delegates to ``inner``; a signal noted during a command is raised
    right after it (see `_SignalGuard`)."""

    def __init__(self, inner: Runner, guard: _SignalGuard):
        super().__init__(inner)
        self.guard = guard

    @property
    def concurrent(self) -> bool:  # the guard counts the commands in flight
        return self.inner.concurrent

    def run(self, argv, **kw) -> Completed:
        self.guard.check()
        try:
            with self.guard.child():
                result = self.inner.run(argv, **kw)
        except Exception:
            # The command failed while a signal was noted (a Ctrl-C to the
            # process group kills the child too): raise the interrupt now, so
            # the teardown that follows runs with signals settled instead of
            # being cut short by the pending one at its first command.
            self.guard.check()
            raise
        self.guard.check()
        return result

    def sleep(self, seconds: float) -> None:
        self.guard.check()
        self.inner.sleep(seconds)
        self.guard.check()


class _SpawnReportingRunner(SubprocessRunner):
    """`SubprocessRunner` that calls ``on_spawn(pid, True)`` as each command
    starts and ``on_spawn(pid, False)`` when it ended, so ``up`` journals
    every command in flight: after a kill, ``down`` waits for those orphans
    (a ``docker network create`` still talking to the engine) before it
    sweeps (issue 17). Several may be in flight at once (the docker backend
    overlaps independent steps); `kill_all` ends them (a signal's grace is
    over while they hang)."""

    concurrent = True  # the journal holds each command in flight

    def __init__(self, on_spawn: Callable[[int, bool], None], **kw):
        super().__init__(**kw)
        self.on_spawn = on_spawn
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            try:
                proc.kill()
            except OSError:
                pass

    def run(self, argv, *, env=None, input=None, timeout=None, check=True, purpose=None):
        argv = tuple(str(a) for a in argv)
        if self._echo:
            self._echo("$ " + " ".join(argv))
        timeout = self.default_timeout if timeout is None else timeout
        child_env = {**os.environ, **env} if env else None
        try:
            proc = subprocess.Popen(argv, env=child_env, text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    stdin=subprocess.PIPE if input is not None else None)
        except FileNotFoundError:
            result = Completed(argv, 127, "", f"{argv[0]}: command not found")
        else:
            with proc:
                with self._lock:
                    self._procs.add(proc)
                try:
                    self.on_spawn(proc.pid, True)
                    try:
                        out, err = proc.communicate(input, timeout=timeout)
                        result = Completed(argv, proc.returncode, out, err)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        out, _ = proc.communicate()
                        result = Completed(argv, 124, out or "", f"timed out after {timeout}s")
                except BaseException:  # an interrupt: the child goes with us
                    proc.kill()
                    raise
                finally:
                    with self._lock:
                        self._procs.discard(proc)
            self.on_spawn(proc.pid, False)
        if check and not result.ok:
            raise CommandError(result)
        return result


# -- helpers -------------------------------------------------------------------
def _err(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _progress(step: str) -> None:
    print(f"==> {step}", file=sys.stderr, flush=True)


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _default_backend() -> str:
    return os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND


def _runner(args: argparse.Namespace) -> SubprocessRunner:
    """Engine commands are bounded (`DEFAULT_TIMEOUT`); ``exec`` runs the
    user's own command, which may run as long as it likes."""
    return SubprocessRunner(echo=_echo if getattr(args, "verbose", False) else None,
                            default_timeout=(None if getattr(args, "command", None) == "exec"
                                             else DEFAULT_TIMEOUT))


def _registry(host: HostContext) -> Path:
    return host.state_root / "bottles"


def _state_file(host: HostContext, name: str) -> Path:
    return _registry(host) / f"{name}.json"


def _secret_values(plan: Plan, spec: BottleSpec, host: HostContext) -> set[str]:
    """Every token value the host holds for this bottle (plan.secrets and the
    routes' token_env variables), long enough to search for safely."""
    values = set(plan.secrets.values())
    values.update(host.env.get(r.token_env, "") for r in spec.routes)
    return {v for v in values if v and len(v) >= MIN_SECRET_LEN}


def _leaks(text: str, secrets: Iterable[str]) -> bool:
    return any(s in text for s in secrets)


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # killed by signal N


def _load_with_text(path: str) -> tuple[BottleSpec, str]:
    """The spec and the exact text it was parsed from (kept in the state file)."""
    return load_spec_with_text(path)


# -- state ---------------------------------------------------------------------
# `up` journals from the threads of an overlapped launch: one writer at a
# time (they share the .tmp name) and one reader of the state dict.
_STATE_LOCK = threading.RLock()


def _write_state(path: Path, text: str) -> None:
    with _STATE_LOCK:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


def _forget(path: Path) -> None:
    """Remove a registry entry, and the ``.tmp`` an ``up`` killed inside
    `_write_state` (between its write and its rename) leaves beside it.
    Called once no ``up`` can be writing the entry: this one under the
    lock, or another that is dead or stopped."""
    with _STATE_LOCK:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (Linux), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), to tell a reused pid."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def _alive(state: dict) -> bool:
    """Is the ``up`` that wrote this starting state still running?"""
    pid = state.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    if fields is None:  # no /proc (macOS): the pid exists, that is all we know
        return True
    start = state.get("pid_start")
    return fields[0] not in ("Z", "X") and (start is None or fields[19] == start)


def _reserve(path: Path, state: dict) -> None:
    """Claim ``name`` atomically before anything starts: two concurrent
    `up`s of one spec would otherwise share a state dir and leak a bottle."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        name = state["name"]
        raise RuntimeFailure(f"bottle {name} is already up (state: {path}); "
                             f"run `{PROG} down {name}` first") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, sort_keys=True)


def _journal_writer(path: Path, state: dict, secrets: Callable[[], set[str]]
                    ) -> Callable[[Mapping], None]:
    """The ``journal`` callback ``up`` gives a reference backend: each call
    replaces the state file's journal (the bottle's handle so far) atomically,
    before the backend creates the resource it just added."""
    def journal(handle: Mapping) -> None:
        text = json.dumps(dict(handle), sort_keys=True)
        if _leaks(text, secrets()):
            raise RuntimeFailure("backend put a token value in its journal; refusing to store it")
        with _STATE_LOCK:
            state["journal"] = json.loads(text)
            _write_state(path, json.dumps(state, indent=2, sort_keys=True))
    return journal


def _read_state(host: HostContext, name: str, *, starting_ok: bool = False) -> tuple[Path, dict]:
    path = _state_file(host, name)
    if not NAME_RE.fullmatch(name) or not path.is_file():
        raise InputError(f"no bottle named {name} (see `{PROG} ls`)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RuntimeFailure(f"state file {path} is corrupt ({exc}); remove it by hand "
                             "after checking nothing of the bottle still runs") from None
    if isinstance(state, dict) and state.get("starting"):
        if starting_ok:
            return path, state
        if _alive(state):
            raise InputError(f"bottle {name} is still starting (`{PROG} up` pid "
                             f"{state.get('pid')}); wait for it, or `{PROG} down --force {name}`")
        raise InputError(f"bottle {name} never finished starting (its `{PROG} up` died); "
                         f"`{PROG} down {name}` removes what it left")
    if not isinstance(state, dict) or not {"backend", "spec", "handle"} <= state.keys():
        raise RuntimeFailure(f"state file {path} is not a bottle-ref state file")
    return path, state


def _replan(state: dict, host: HostContext, path: Path) -> tuple[Backend, Plan]:
    """The backend and the plan ``up`` launched, from the state file."""
    if "spec_text" in state:
        spec = parse_spec(state["spec_text"], source=state["spec"],
                          base_dir=Path(state.get("base_dir") or Path(state["spec"]).parent))
    else:
        spec = load_spec(state["spec"])
    if spec.name != state.get("name", spec.name):
        raise RuntimeFailure(f"state file {path} names bottle {state['name']!r} but its spec "
                             f"names {spec.name!r}")
    backend = get_backend(state["backend"])
    return backend, backend.prepare(spec, host)


def _reattach(state: dict, host: HostContext, args: argparse.Namespace, path: Path,
              handle_key: str = "handle") -> Bottle:
    """Re-prepare the plan ``up`` launched and attach to the running bottle."""
    backend, plan = _replan(state, host, path)
    if state.get(handle_key) is None:
        raise RuntimeFailure(f"backend {state['backend']!r} gave no handle at launch, so "
                             f"{PROG} cannot reach this bottle; state file: {path}")
    try:
        return backend.attach(plan, _runner(args), state[handle_key])
    except NotImplementedError:
        raise RuntimeFailure(f"backend {state['backend']!r} cannot attach to a running "
                             "bottle (Backend.attach is not implemented)") from None


def _engine_objects(runner: Runner, ident: str) -> tuple[list[str], list[str]]:
    """Container and network ids labelled ``bottle-ref.bottle=<ident>``.
    An engine that cannot answer is an error (`RuntimeFailure`), never
    "none": the bottle may still run."""
    label = f"label={LABEL_KEY}={ident}"
    found = []
    for argv in (["docker", "ps", "-aq", "--filter", label],
                 ["docker", "network", "ls", "-q", "--filter", label]):
        result = runner.run(argv, check=False, timeout=60)
        if not result.ok:
            raise RuntimeFailure(f"cannot list objects labelled {LABEL_KEY}={ident}: "
                                 f"{_last_line(result)}")
        found.append(result.stdout.split())
    return found[0], found[1]


def _last_line(result: Completed) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1].strip() if lines else f"exit {result.returncode}"


def _sweep_labels(runner: Runner, ident: str) -> int:
    """Remove every container, then network, labelled with ``ident``
    (a resource whose create completed after the journal's owner died, or
    after close ran). Returns how many objects were removed; raises
    `RuntimeFailure` unless the engine confirms none is left."""
    if not ident or not NAME_RE.fullmatch(ident[:40]):
        return 0
    containers, networks = _engine_objects(runner, ident)
    if containers:
        runner.run(["docker", "rm", "-f", *containers], check=False, timeout=120)
    if networks:
        runner.run(["docker", "network", "rm", *networks], check=False, timeout=120)
    if containers or networks:
        still = [x for x in _engine_objects(runner, ident) for x in x]
        if still:
            raise RuntimeFailure(f"docker did not remove {', '.join(still)} "
                                 f"(labelled {LABEL_KEY}={ident})")
    return len(containers) + len(networks)


INFLIGHT_WAIT = 60.0  # seconds down waits for a dead up's orphaned command


def _wait_inflight(state: dict) -> None:
    """A dead ``up``'s commands in flight (journaled pids; one dict in a
    state file of an older ``up``) may still create what they were asked
    to: wait for them to exit (bounded; then kill them) so the sweep that
    follows sees whatever they made."""
    inflight = state.get("inflight")
    entries = [inflight] if isinstance(inflight, dict) else inflight
    if not isinstance(entries, list):
        return
    alive = [e for e in entries if isinstance(e, dict) and _alive(e)]
    if not alive:
        return
    runner = SubprocessRunner()
    try:
        poll(runner, lambda: not any(_alive(e) for e in alive), timeout=INFLIGHT_WAIT,
             interval=0.05, what=f"command pid(s) {', '.join(str(e.get('pid')) for e in alive)} "
                                 f"of the dead `{PROG} up`")
    except TimeoutError:
        for e in alive:
            try:
                os.kill(int(e["pid"]), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError, TypeError, KeyError):
                pass


def _remove_by_journal(state: dict, host: HostContext, args: argparse.Namespace,
                       path: Path) -> None:
    """Tear down a bottle from its state file: close what the journal (or the
    finished handle) names, then sweep by label. For reference backends.
    Any failure (close could not prove removal, the engine could not list
    by label) raises `RuntimeFailure`: the caller keeps the state file."""
    if state.get("starting"):
        _wait_inflight(state)
    handle_key = "handle" if state.get("handle") is not None else "journal"
    handle = state.get(handle_key)
    errors: list[str] = []
    if handle is not None:
        try:
            _reattach(state, host, args, path, handle_key).close()
        except (RuntimeFailure, RuntimeError, OSError, ValueError, KeyError) as exc:
            errors.append(str(exc) or type(exc).__name__)
    ident = handle.get("ident") if isinstance(handle, Mapping) else None
    if ident and state.get("backend") in ("docker", "smolmachines"):
        try:
            _sweep_labels(_runner(args), str(ident))
        except RuntimeFailure as exc:
            errors.append(str(exc))
    if errors:
        raise RuntimeFailure(f"teardown failed, state kept ({path}): " + "; ".join(errors))
    _remove_state_dir(state, host)


def _remove_state_dir(state: dict, host: HostContext) -> None:
    """Remove the bottle's state dir the state file names (its CA keys),
    once its engine objects are gone; only a dir strictly inside this
    user's state root and not the registry (a tampered path is ignored)."""
    named = state.get("state_dir")
    if not isinstance(named, str) or not named:
        return
    root = host.state_root.resolve()
    target = Path(named).resolve()
    if root not in target.parents or target == _registry(host).resolve() or \
            _registry(host).resolve() in target.parents:
        return
    shutil.rmtree(target, ignore_errors=True)


# -- commands ------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    print(f"ok: {spec.name}")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    backend_name = args.backend or _default_backend()
    backend = get_backend(backend_name)
    host = HostContext.from_os()
    plan = backend.prepare(spec, host)
    text = to_json(plan)
    # to_json redacts plan.secrets; a backend that copied a token elsewhere
    # in its plan must not get it printed.
    if _leaks(text, _secret_values(plan, spec, host)):
        raise RuntimeFailure(f"refusing to print the plan: backend {backend_name!r} put a "
                             "token value outside plan.secrets")
    print(text)
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    spec_path = Path(args.spec).absolute()
    spec, spec_text = _load_with_text(args.spec)
    backend_name = args.backend or _default_backend()
    backend: Backend = get_backend(backend_name)
    host = HostContext.from_os()
    state_path = _state_file(host, spec.name)
    pid = os.getpid()
    state = {"version": STATE_VERSION, "name": spec.name, "backend": backend_name,
             "spec": str(spec_path), "base_dir": str(spec_path.parent),
             "spec_text": spec_text, "starting": True, "pid": pid,
             "pid_start": _proc_start(pid), "journal": None}
    with _SignalGuard() as guard:
        _reserve(state_path, state)

        running: dict[int, dict] = {}

        def inflight(pid: int, started: bool) -> None:
            with _STATE_LOCK:
                if started:
                    running[pid] = {"pid": pid, "pid_start": _proc_start(pid)}
                else:
                    running.pop(pid, None)
                state["inflight"] = list(running.values())
                if state.get("starting"):
                    _write_state(state_path, json.dumps(state, indent=2, sort_keys=True))

        base = _runner(args)
        if type(base) is SubprocessRunner:  # (tests substitute a recording runner)
            base = _SpawnReportingRunner(inflight, echo=base._echo,
                                         default_timeout=base.default_timeout)
            guard.kill_children = base.kill_all
        runner = _GuardedRunner(base, guard)
        plan: Plan | None = None
        try:
            plan = backend.prepare(spec, host)
            # The state dir (CA keys) is a resource like any other: journaled
            # before launch writes it, removed by down/gc (issue 17).
            state["state_dir"] = str(plan.state_dir)
            _write_state(state_path, json.dumps(state, indent=2, sort_keys=True))
            kwargs = {}
            if "journal" in inspect.signature(backend.launch).parameters:
                kwargs["journal"] = _journal_writer(
                    state_path, state, lambda: _secret_values(plan, spec, host))
            bottle = backend.launch(plan, runner, progress=_progress, **kwargs)
        except BaseException:
            # launch tore itself down; a create that completed after that
            # (the engine finishing a request we abandoned) goes by label.
            journal = state.get("journal") or {}
            keep = False
            if journal.get("ident") and backend_name in ("docker", "smolmachines") and (
                    journal.get("containers") or journal.get("networks")
                    or "containers" not in journal):
                try:
                    _sweep_labels(_runner(args), str(journal["ident"]))
                except RuntimeFailure as exc:  # no proof it is gone: keep the journal
                    _echo(f"{PROG}: warning: {' '.join(str(exc).split())}; state kept: "
                          f"`{PROG} down {spec.name}` retries")
                    keep = True
            if not keep:
                _remove_state_dir(state, host)
                _forget(state_path)
            if guard.raised and guard.pending is not None and not isinstance(
                    sys.exc_info()[1], Interrupted):
                # The interrupt's own doing: a command its grace killed, in
                # whichever of the launch's threads failed first.
                raise Interrupted(guard.pending) from None
            raise
        try:
            guard.check()
            try:
                handle = bottle.handle()
            except NotImplementedError:
                handle = None
                _echo(f"{PROG}: warning: backend {backend_name!r} gives no handle; "
                      "exec and down will not reach this bottle")
            done = {k: v for k, v in state.items()
                    if k not in ("starting", "pid", "pid_start", "journal", "inflight")}
            done["handle"] = handle
            try:
                text = json.dumps(done, indent=2, sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise RuntimeFailure(f"backend {backend_name!r} returned a handle that is "
                                     f"not JSON ({exc})") from None
            if handle is not None and _leaks(json.dumps(handle), _secret_values(plan, spec, host)):
                raise RuntimeFailure(f"backend {backend_name!r} put a token value in its handle; "
                                     "refusing to store it")
            _write_state(state_path, text)
        except BaseException:
            # Unreachable once we return: take it down rather than leak it.
            try:
                bottle.close()
            except Exception as exc:  # keep the original error; mention this one
                _echo(f"{PROG}: warning: teardown after failure also failed: {exc}")
            _forget(state_path)
            raise
    print(spec.name)
    return EXIT_OK


def cmd_exec(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not args.agent and not cmd:
        raise InputError(f"exec needs a command: {PROG} exec {args.name} -- CMD...")
    host = HostContext.from_os()
    path, state = _read_state(host, args.name)
    bottle = _reattach(state, host, args, path)
    if args.agent:
        # Interactive: the agent owns the terminal, nothing is captured.
        argv = bottle.agent_argv(cmd, tty=sys.stdin.isatty())
        return _exit_status(subprocess.run(argv, check=False).returncode)
    result = bottle.exec(cmd)
    engine_error = _engine_refusal(result)
    if engine_error:
        raise RuntimeFailure(f"bottle {args.name} is not running ({engine_error}); "
                             f"`{PROG} down {args.name}` removes it")
    # Never the guest's control sequences on the operator's terminal (OSC 52
    # clipboard writes, titles, cursor moves): issue 16, `termsafe`.
    sys.stdout.write(strip_controls(result.stdout))
    sys.stdout.flush()
    sys.stderr.write(strip_controls(result.stderr))
    sys.stderr.flush()
    return _exit_status(result.returncode)


# How the engine's CLI says the guest is not there (docker 20.10+ wording);
# a command in the guest never produces these on its own stderr's first line.
ENGINE_REFUSALS = ("Error response from daemon: Container ", "Error: No such container:",
                   "Error response from daemon: No such container:")


def _engine_refusal(result: Completed) -> str | None:
    if result.ok:
        return None
    first = (result.stderr.strip().splitlines() or [""])[0]
    if first.startswith(ENGINE_REFUSALS) and ("not running" in first or "No such" in first
                                              or "paused" in first or "restarting" in first):
        return first.removeprefix("Error response from daemon: ").removeprefix("Error: ")
    return None


def cmd_down(args: argparse.Namespace) -> int:
    host = HostContext.from_os()
    path, state = _read_state(host, args.name, starting_ok=True)
    if state.get("starting"):
        if _alive(state) and not args.force:
            raise InputError(f"bottle {args.name} is still starting (`{PROG} up` pid "
                             f"{state.get('pid')}); wait for it, or `{PROG} down --force "
                             f"{args.name}`")
        if _alive(state):
            _stop_up(state)
        _remove_by_journal(state, host, args, path)
    elif args.force:
        _remove_by_journal(state, host, args, path)
    else:
        _reattach(state, host, args, path).close()
        _remove_state_dir(state, host)
    _forget(path)
    print(args.name)
    return EXIT_OK


UP_STOP_TIMEOUT = 60.0  # seconds a SIGTERMed `up` gets to tear itself down


def _stop_up(state: dict) -> None:
    """``down --force`` on a bottle whose ``up`` still runs: SIGTERM it (it
    then tears down what it made) and wait, bounded, for it to exit, so it
    cannot create anything after our sweep."""
    runner = SubprocessRunner()
    try:
        os.kill(int(state["pid"]), signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        poll(runner, lambda: not _alive(state), timeout=UP_STOP_TIMEOUT, interval=0.2,
             what=f"`{PROG} up` pid {state['pid']} to exit")
    except TimeoutError:
        raise RuntimeFailure(f"`{PROG} up` pid {state['pid']} did not exit within "
                             f"{UP_STOP_TIMEOUT:g}s of SIGTERM; kill it, then run down again") from None


def cmd_gc(args: argparse.Namespace) -> int:
    """Remove bottles whose ``up`` died before finishing (its pid is gone).

    Only this user's own registry entries: a regular file (not a symlink)
    owned by this uid. ``--dry-run`` names what would go and touches nothing."""
    host = HostContext.from_os()
    registry = _registry(host)
    failed = 0
    for f in sorted(registry.glob("*.json")) if registry.is_dir() else []:
        try:
            st = f.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                _echo(f"{PROG}: warning: {f.name}: not a state file of this user; left alone")
                continue
            state = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict) or not state.get("starting") or _alive(state):
            continue
        if args.dry_run:
            print(f"would remove {f.stem}")
            continue
        try:
            _remove_by_journal(state, host, args, f)
        except (RuntimeFailure, SpecError, BackendNotFound, ValueError) as exc:
            _echo(f"{PROG}: warning: {f.stem}: {' '.join(str(exc).split())}")
            failed += 1
            continue
        _forget(f)
        print(f.stem)
    return EXIT_RUNTIME if failed else EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    registry = _registry(HostContext.from_os())
    files = sorted(registry.glob("*.json")) if registry.is_dir() else []
    for f in files:
        try:
            state = json.loads(f.read_text(encoding="utf-8"))
            backend, spec = state["backend"], state["spec"]
            if state.get("starting"):
                spec += (" (starting)" if _alive(state)
                         else f" (its up died: `{PROG} down {f.stem}` or `{PROG} gc`)")
        except (OSError, ValueError, KeyError, TypeError):
            backend, spec = "?", f"(unreadable state file {f})"
        print(f"{f.stem}\t{backend}\t{spec}")
    return EXIT_OK


# -- parser and entry point ----------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run coding agents in bottles (reference implementation).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    backend_help = f"backend entry-point name or pkg.mod:factory (default: ${BACKEND_ENV} or {DEFAULT_BACKEND})"

    p = sub.add_parser("validate", help="check a spec file")
    p.add_argument("spec", metavar="SPEC")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="print the plan a backend would launch (secrets redacted)")
    p.add_argument("--backend", metavar="NAME", help=backend_help)
    p.add_argument("spec", metavar="SPEC")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("up", help="launch a bottle; prints its name")
    p.add_argument("--backend", metavar="NAME", help=backend_help)
    p.add_argument("-v", "--verbose", action="store_true", help="echo each command to stderr")
    p.add_argument("spec", metavar="SPEC")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("exec", help="run a command (or, with --agent, the agent) in a bottle",
                       usage=f"{PROG} exec [--agent] [-v] NAME -- CMD...")
    p.add_argument("--agent", action="store_true",
                   help="run the agent interactively with the given arguments")
    p.add_argument("-v", "--verbose", action="store_true", help="echo each command to stderr")
    p.add_argument("name", metavar="NAME")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("down", help="tear a bottle down")
    p.add_argument("-v", "--verbose", action="store_true", help="echo each command to stderr")
    p.add_argument("--force", action="store_true",
                   help="also while its `up` still runs (stops it), and sweep by journal and label")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("gc", help="remove bottles whose `up` died before finishing")
    p.add_argument("-v", "--verbose", action="store_true", help="echo each command to stderr")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="only print the bottles gc would remove")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("ls", help="list bottles this host brought up")
    p.set_defaults(func=cmd_ls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error or --help: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    try:
        return args.func(args)
    except BrokenPipeError:
        # `bottle-ref plan x.yaml | head -c 10`: the reader left; say nothing.
        # stdout goes to /dev/null so the interpreter's final flush is quiet too.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout without a descriptor
            pass
        return 128 + signal.SIGPIPE
    except Interrupted as exc:
        return 128 + exc.signum
    except (SpecError, BackendNotFound, InputError) as exc:
        _err(exc)
        return EXIT_INPUT
    except ValueError as exc:
        # Host settings a backend rejects (e.g. BOTTLE_SMOL_CPUS=abc) are
        # bad input too; SpecError above is the spec's own kind.
        _err(exc)
        return EXIT_INPUT
    except (RuntimeFailure, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        # RuntimeError covers CommandError, ProvisionError and NotImplementedError;
        # OSError covers TimeoutError and file errors.
        _err(str(exc) or type(exc).__name__)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
