"""A recorded launch: every command a backend runs, without an engine.

`record` drives one bottle through the whole seam with a recording runner
(``prepare -> script -> launch -> agent_argv(tty=False/True) -> close``) and
returns a `Recording`: the plan, the runner, each phase's calls, the agent
argvs, what launch reported through ``progress``, and the exception, if any.
It never raises for a backend failure; the caller decides what a failure means.

    rec = record(backend, SCENARIOS["claude-routes"], tmp=tmp_path)
    assert rec.error is None, rec.describe_error()
    rec.runs("launch")           # argv tuples of the launch phase
    rec.text()                   # normalised snapshot text (no tmp paths, no secrets)

While recording, ``time.sleep`` is replaced (in ``time`` and in the
backend's own modules) by a recorder: a backend that waits with a fixed
sleep instead of ``runner.sleep`` shows up as a ``time.sleep`` event
(LAUNCH-READY) and costs no wall time.

The second half of this module reads recordings the way a backend-agnostic
test must: guest commands, user framing, published ports, created and
removed resources. It knows docker/podman/nerdctl and smolvm argv shapes and
the bundle interface (DESIGN "Bundle image interface"); nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import bottle_ref
from bottle_api.backend import Backend, Bottle
from bottle_api.host import HostContext
from bottle_api.plan import Plan
from bottle_api.runner import Call, RecordingRunner, Reply
from bottle_api.spec import BottleSpec

from .scenarios import Scenario, ScenarioInputs

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

    def run(self, argv, *, env=None, input=None, timeout=None, check=True):
        self._guard()
        index = len(self.calls)
        try:
            result = super().run(argv, env=env, input=input, timeout=timeout, check=check)
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


# -- normalisation ---------------------------------------------------------------


def _path_variants(path: str | os.PathLike | None) -> list[str]:
    if not path:
        return []
    text = str(path)
    out = [text, os.path.realpath(text)]
    return [p for p in dict.fromkeys(out) if p and p != "/"]


@dataclass(frozen=True)
class Normaliser:
    """Literal replacements applied in order: secrets first, then paths,
    longest first (so ``<STATE>`` wins over the ``<TMP>`` it lives in)."""

    replacements: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(cls, *, secrets: Iterable[str] = (), state_root=None, home=None, root=None,
              backend: Backend | None = None) -> "Normaliser":
        secret_pairs = [(s, SECRET) for s in sorted({s for s in secrets if s}, key=len,
                                                     reverse=True)]
        paths: list[tuple[str, str]] = []
        for value, label in ((state_root, STATE), (home, HOME), (root, TMP),
                             (Path(bottle_ref.__file__).parent, PKG)):
            paths += [(p, label) for p in _path_variants(value)]
        if backend is not None:
            top = sys.modules.get(type(backend).__module__.split(".")[0])
            top_file = getattr(top, "__file__", None)
            if top_file and top is not bottle_ref:
                paths += [(p, BACKEND_PKG) for p in _path_variants(Path(top_file).parent)]
        paths += [(p, PYTHON) for p in _path_variants(sys.executable)]
        seen: dict[str, str] = {}
        for literal, label in paths:
            seen.setdefault(literal, label)
        ordered = sorted(seen.items(), key=lambda kv: len(kv[0]), reverse=True)
        return cls(tuple(secret_pairs) + tuple(ordered))

    def __call__(self, text: str) -> str:
        for literal, label in self.replacements:
            if literal in text:
                text = text.replace(literal, label)
        return text

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(lit for lit, label in self.replacements if label == SECRET)


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
    with catching_direct_sleeps(runner.direct_sleep, _backend_modules(backend)):
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


# -- rendering -------------------------------------------------------------------

_PLAIN = re.compile(r"[^\x00-\x1f\x7f\"]+")


def _token(token: str) -> str:
    """A token as one line: raw when unambiguous, else a JSON string."""
    if token and token == token.strip() and _PLAIN.fullmatch(token):
        return token
    return json.dumps(token, ensure_ascii=False)


def _render_call(call: Call) -> list[str]:
    if call.kind == "sleep":
        return [f"sleep {call.seconds:g}"]
    if call.kind == DIRECT_SLEEP:
        return [f"{DIRECT_SLEEP} {call.seconds:g}  # fixed sleep outside the runner"]
    lines = ["run" if call.returncode == 0 else f"run (exit {call.returncode})"]
    lines += [f"  {_token(t)}" for t in call.argv]
    lines += [f"env: {n}" for n in call.env_names]
    if call.timeout is not None:
        lines.append(f"timeout: {call.timeout:g}")
    if call.input is not None:
        lines.append("input:")
        lines += [f"  | {ln}" for ln in call.input.splitlines()]
    return lines


def render(rec: Recording) -> str:
    """Un-normalised text of ``rec`` (`Recording.text` normalises it)."""
    out = [
        "# bottle-conformance argv recording",
        f"# backend: {rec.backend_name}",
        f"# scenario: {rec.scenario or '-'}",
        f"# agent args: {' '.join(rec.agent_args)}",
    ]
    for phase in PHASES:
        if phase not in rec.spans:
            continue
        if phase == "agent_argv":
            for tty in (False, True):
                if tty in rec.agent_argvs:
                    out += ["", f"== agent_argv tty={tty} ==", "", "argv"]
                    out += [f"  {_token(t)}" for t in rec.agent_argvs[tty]]
        else:
            out += ["", f"== {phase} =="]
        for call in rec.phase_calls(phase):
            out += [""] + _render_call(call)
    if rec.error is not None:
        first = (str(rec.error).strip().splitlines() or [""])[0]
        out += ["", f"== error in {rec.error_phase} ==", "",
                f"{type(rec.error).__name__}: {first}"]
    return "\n".join(out) + "\n"


# -- reading argv ----------------------------------------------------------------
#
# Helpers tests use to read a recording without knowing the backend. They
# understand container engines (docker, podman, nerdctl) and smolvm.

ENGINES = frozenset({"docker", "podman", "nerdctl"})


def prog(argv: Sequence[str]) -> str:
    """The program's basename (``/usr/bin/docker`` -> ``docker``)."""
    return PurePosixPath(argv[0]).name if argv else ""


def subcommand(argv: Sequence[str]) -> tuple[str, ...]:
    """``("exec",)`` for ``docker exec``/``docker container exec``,
    ``("machine", "exec")`` for smolvm; () for anything else."""
    p = prog(argv)
    if p in ENGINES and len(argv) > 1:
        if argv[1] in ("container", "network", "volume", "image") and len(argv) > 2:
            sub = (argv[1], argv[2])
            return ("exec",) if sub == ("container", "exec") else sub
        return (argv[1],)
    if p == "smolvm" and len(argv) > 2:
        return (argv[1], argv[2])
    return ()


def is_guest_exec(argv: Sequence[str]) -> bool:
    return subcommand(argv) in (("exec",), ("machine", "exec"))


def is_guest_copy(argv: Sequence[str]) -> bool:
    return subcommand(argv) in (("cp",), ("machine", "cp"))


def contains_seq(argv: Sequence[str], seq: Sequence[str]) -> int:
    """Index where ``seq`` starts as consecutive tokens of ``argv``, or -1."""
    n = len(seq)
    for i in range(len(argv) - n + 1):
        if tuple(argv[i:i + n]) == tuple(seq):
            return i
    return -1


def mentions(argv: Sequence[str], text: str) -> bool:
    """``text`` appears as consecutive tokens or inside one token (``sh -c``)."""
    words = text.split()
    return contains_seq(argv, words) >= 0 or any(text in tok for tok in argv)


def node_framing_problem(argv: Sequence[str], at: int) -> str | None:
    """Why the command starting at ``argv[at]`` is not run as node with
    HOME=/home/node, or None if it is.

    Accepted: ``runuser -u node --`` or an engine's ``-u node``/``--user node``
    before it, and the last ``HOME=`` assignment before it (``-e``,
    ``--env=``, ``env HOME=...`` or bare) being ``/home/node``. Bare
    runuser keeps root's HOME=/root (seed: git config landed in /root), and
    root's USER too, so a runuser switch also needs USER=node (DESIGN s4)."""
    before = list(argv[:at])
    assignments = env_assignments(before)
    homes = [v for k, v in assignments if k == "HOME"]
    users = [v for k, v in assignments if k == "USER"]
    via_runuser = contains_seq(before, ["runuser", "-u", "node"]) >= 0
    as_node = (via_runuser
               or contains_seq(before, ["-u", "node"]) >= 0
               or contains_seq(before, ["--user", "node"]) >= 0
               or "--user=node" in before or "-unode" in before)
    if not as_node:
        root_like = contains_seq(before, ["-u", "root"]) >= 0 or "--user=root" in before
        return ("it runs as root (-u root)" if root_like
                else "there is no switch to node (no -u node, no runuser -u node --)")
    if not homes:
        return "it runs as node but HOME=/home/node is not set (HOME stays root's /root)"
    if homes[-1] != "/home/node":
        return f"it runs as node but with HOME={homes[-1]}"
    if via_runuser and (not users or users[-1] != "node"):
        seen = f"USER={users[-1]}" if users else "no USER"
        return f"it switches with runuser but sets {seen} (root's USER leaks; want USER=node)"
    return None


def guest_command_start(argv: Sequence[str]) -> int:
    """Index of the in-guest command in an exec argv: after ``--`` (and a
    following ``runuser -u node --``) for smolvm; after the container name
    for an engine's exec (the first non-option token after its options)."""
    if prog(argv) == "smolvm":
        if "--" in argv:
            i = list(argv).index("--") + 1
            if tuple(argv[i:i + 4]) == ("runuser", "-u", "node", "--"):
                i += 4
            return i
        return len(argv)
    with_value = {"-u", "--user", "-e", "--env", "-w", "--workdir", "--env-file"}
    i = 2 if len(argv) > 1 and argv[1] == "exec" else 3
    while i < len(argv):
        tok = argv[i]
        if tok in with_value:
            i += 2
        elif tok.startswith("-"):
            i += 1
        else:
            return i + 1  # the container name, then the command
    return len(argv)


def env_assignments(argv: Sequence[str]) -> list[tuple[str, str]]:
    """``(NAME, value)`` for every ``NAME=value`` token (``-e K=V``,
    ``--env=K=V``, ``env K=V``); bare ``-e NAME`` entries are not included."""
    out = []
    for tok in argv:
        if tok.startswith("--env="):
            tok = tok[len("--env="):]
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", tok, re.S)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


@dataclass(frozen=True)
class Publish:
    """One ``-p``/``--publish`` value: bound host address (None: all
    interfaces), host port ('' when random) and container port."""

    raw: str
    host_ip: str | None
    host_port: str
    container_port: str

    @property
    def loopback(self) -> bool:
        if self.host_ip is None:
            return False
        try:
            return ipaddress.ip_address(self.host_ip.strip("[]")).is_loopback
        except ValueError:
            return self.host_ip == "localhost"


def parse_publish(value: str) -> Publish:
    """docker's ``[ip:][hostPort:]containerPort[/proto]``; ``[::1]:...`` too."""
    rest = value
    ip: str | None = None
    if rest.startswith("["):
        close = rest.find("]")
        ip, rest = rest[:close + 1], rest[close + 2:]
        parts = rest.split(":")
        host_port, cport = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    else:
        parts = rest.split(":")
        if len(parts) >= 3:
            ip, host_port, cport = parts[0], parts[1], ":".join(parts[2:])
        elif len(parts) == 2:
            host_port, cport = parts
        else:
            host_port, cport = "", parts[0]
    return Publish(value, ip or None, host_port, cport.split("/")[0])


def publish_values(argv: Sequence[str], *, stop_at: Iterable[str] = ()) -> list[str]:
    """The ``-p``/``--publish`` values of an engine ``run``/``create`` (or
    smolvm ``machine create``) argv, read up to the first token in
    ``stop_at`` (the image: what follows is the container's own command)."""
    if subcommand(argv) not in (("run",), ("create",), ("container", "run"),
                                ("container", "create"), ("machine", "create")):
        return []
    stops = set(stop_at)
    out = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in stops:
            break
        if tok in ("-p", "--publish") and i + 1 < len(argv):
            out.append(argv[i + 1])
            i += 2
            continue
        for prefix in ("--publish=", "-p="):
            if tok.startswith(prefix):
                out.append(tok[len(prefix):])
        if tok.startswith("-p") and len(tok) > 2 and tok[2] not in "=-" and not tok.startswith("--"):
            out.append(tok[2:])
        i += 1
    return out


def publish_all_flags(argv: Sequence[str], *, stop_at: Iterable[str] = ()) -> list[str]:
    """``-P``/``--publish-all`` and host networking flags of an engine run/create."""
    if prog(argv) not in ENGINES or subcommand(argv) not in (("run",), ("create",)):
        return []
    stops, out = set(stop_at), []
    for i, tok in enumerate(argv):
        if tok in stops:
            break
        if tok in ("-P", "--publish-all"):
            out.append(tok)
        if tok in ("--network=host", "--net=host") or (
                tok in ("--network", "--net") and i + 1 < len(argv) and argv[i + 1] == "host"):
            out.append(f"{tok} host" if "=" not in tok else tok)
    return out


def mount_pairs(argv: Sequence[str]) -> list[tuple[str, str]]:
    """``(host source, container target)`` of ``--mount type=bind,...`` and
    ``-v SRC:DST[:opts]`` in an argv."""
    out = []
    for i, tok in enumerate(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if tok == "--mount" or tok.startswith("--mount="):
            spec = tok.split("=", 1)[1] if tok.startswith("--mount=") else nxt
            kv = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
            src = kv.get("source") or kv.get("src")
            dst = kv.get("target") or kv.get("destination") or kv.get("dst")
            if src and dst:
                out.append((src, dst))
        elif tok in ("-v", "--volume") and nxt.count(":") >= 1:
            src, dst = nxt.split(":")[:2]
            out.append((src, dst))
    return out


@dataclass(frozen=True)
class Resource:
    kind: str  # container, network, volume, machine
    name: str


def _named_after(argv: Sequence[str], flag: str) -> str | None:
    for i, tok in enumerate(argv):
        if tok == flag and i + 1 < len(argv):
            return argv[i + 1]
        if tok.startswith(flag + "="):
            return tok.split("=", 1)[1]
    return None


def _positionals(argv: Sequence[str], start: int, with_value: set[str]) -> list[str]:
    out, i = [], start
    while i < len(argv):
        tok = argv[i]
        if tok in with_value:
            i += 2
            continue
        if not tok.startswith("-"):
            out.append(tok)
        i += 1
    return out


def created_resource(argv: Sequence[str]) -> Resource | None:
    """The engine resource (container, network, volume) or smolvm machine an
    argv creates, if any."""
    sub = subcommand(argv)
    if prog(argv) in ENGINES:
        if sub in (("run",), ("create",), ("container", "run"), ("container", "create")):
            name = _named_after(argv, "--name")
            return Resource("container", name) if name else None
        if sub in (("network", "create"), ("volume", "create")):
            pos = _positionals(argv, 3, {"--label", "--driver", "-d", "--subnet", "--opt", "-o",
                                         "--gateway", "--ip-range"})
            return Resource(sub[0], pos[-1]) if pos else None
    if sub == ("machine", "create"):
        pos = _positionals(argv, 3, {"-I", "--image", "--from", "--cpus", "--mem", "-v", "-p",
                                     "--allow-cidr", "--allow-host", "-e", "-w"})
        name = _named_after(argv, "--name") or (pos[0] if pos else None)
        return Resource("machine", name) if name else None
    return None


def removed_resources(argv: Sequence[str]) -> list[Resource]:
    """Resources an argv removes: engine ``rm`` (containers), ``network rm``,
    ``volume rm``, smolvm ``machine delete``."""
    sub = subcommand(argv)
    if prog(argv) in ENGINES:
        if sub in (("rm",), ("container", "rm")):
            start = 2 if sub == ("rm",) else 3
            return [Resource("container", n) for n in _positionals(argv, start, set())]
        if sub in (("network", "rm"), ("volume", "rm")):
            return [Resource(sub[0], n) for n in _positionals(argv, 3, set())]
    if sub in (("machine", "delete"), ("machine", "rm")):
        name = _named_after(argv, "--name")
        pos = _positionals(argv, 3, set())
        return [Resource("machine", n) for n in ([name] if name else pos)]
    return []


BUNDLE_DAEMONS = frozenset({"pipelock", "egress", "git-gate", "supervise"})


def engine_topology(runs: Iterable[Sequence[str]], *, bundle_image: str,
                    agent_image: str) -> tuple[dict[str, set[str]], dict[str, set[str]], set[str]]:
    """From engine argvs: ``(networks per container, bundle daemons per
    container, agent containers)``. Networks come from ``--network`` at
    run/create and ``network connect NET C``; daemons from the bundle
    interface (``BUNDLE_IMAGE bottle-bundle d1,d2``); agent containers are
    those created from the agent image."""
    nets: dict[str, set[str]] = {}
    daemons: dict[str, set[str]] = {}
    agents: set[str] = set()
    for argv in runs:
        if prog(argv) not in ENGINES:
            continue
        sub = subcommand(argv)
        res = created_resource(argv)
        if res is not None and res.kind == "container":
            name = res.name
            image_at = next((i for i, t in enumerate(argv) if t in (bundle_image, agent_image)
                             and i > 1), None)
            head = argv[:image_at] if image_at is not None else argv
            for i, tok in enumerate(head):
                if tok in ("--network", "--net") and i + 1 < len(head):
                    nets.setdefault(name, set()).add(head[i + 1])
                elif tok.startswith(("--network=", "--net=")):
                    nets.setdefault(name, set()).add(tok.split("=", 1)[1])
            if image_at is not None and argv[image_at] == agent_image:
                agents.add(name)
            elif image_at is not None:
                words = {w for t in argv[image_at + 1:] for w in t.split(",")}
                daemons[name] = words & BUNDLE_DAEMONS
        elif sub == ("network", "connect"):
            pos = _positionals(argv, 3, {"--alias", "--ip", "--ip6", "--link",
                                         "--link-local-ip", "--driver-opt"})
            if len(pos) >= 2:
                nets.setdefault(pos[1], set()).add(pos[0])
    return nets, daemons, agents
