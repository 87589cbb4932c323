"""Tier 1: argv snapshots of every external command a backend runs.

Each scenario (`conformance.scenarios`) is launched through a recording
runner with the backend's own scripted replies (`Backend.script`) and
deterministic names (`conformance.recording.record`). Two kinds of test:

- the whole recording must equal the snapshot kept in the backend author's
  repository (``snapshots/<backend>/<scenario>.txt``, see
  `conformance.snapshot_ext`); ``pytest --snapshot-update`` records it;
- structural assertions that hold for ANY backend (TTY framing, loopback
  publishing, one CA round trip, node framing, readiness polling...), each
  under its own clause, so a backend learns which rule it broke without
  reading a diff.

Tests over scenarios are gated per scenario on the capabilities the
scenario needs (`conformance.scenarios.scenario_params`).
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest

from bottle_api.plan import EGRESS, PIPELOCK, PORTS
from bottle_api.runner import RecordingRunner

from ..capabilities import Capability
from ..recording import (
    Recorder,
    Recording,
    RunawayLaunch,
    contains_seq,
    created_resource,
    engine_topology,
    env_assignments,
    is_guest_copy,
    is_guest_exec,
    mentions,
    mount_pairs,
    node_framing_problem,
    parse_publish,
    prog,
    publish_all_flags,
    publish_values,
    removed_resources,
    reply_when,
    subcommand,
)
from ..scenarios import Scenario, scenario_params
from ..snapshot_ext import extension_for, missing_snapshot_message, snapshot_file

# Guest paths of DESIGN §4 and in-container paths of the bundle interface.
PROMPT_PATH = "/home/node/.claude-bottle-prompt.txt"
PROMPT_FLAG = "--append-system-prompt-file"
SKILLS_DIR = "/home/node/.claude/skills"
WORKDIR = "/home/node/work"
CA_GUEST_DIR = "/usr/local/share/ca-certificates/"
EGRESS_CA_MOUNTS = ("/etc/egress/ca.pem", "/etc/egress/ca-key.pem")
FIRST_HOP_CA_MOUNT = {EGRESS: "/etc/egress/ca.pem", PIPELOCK: "/etc/pipelock/ca.pem"}

READY_FAILURES = 3  # failed readiness probes a launch must survive
READY_BOUND_S = 600.0  # a readiness wait longer than this is not "bounded"

TTY_FLAGS = frozenset({"-t", "--tty", "--tty=true", "-it", "-ti"})
_SHORT_CLUSTER = re.compile(r"-[a-zA-Z]{2,3}")
_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")

_SUPERVISED = {"where": lambda s: Capability.SUPERVISE in s.needs}


# -- small readers -----------------------------------------------------------------


def show(rec: Recording, argv: Sequence[str]) -> str:
    """An argv as one normalised shell line, for failure messages."""
    return rec.normalise(shlex.join(argv))


def launched(rec: Recording, *, agent: bool = False) -> Recording:
    """``rec``, after asserting its launch went through (structural tests
    need a complete recording). ``agent``: the test reads agent_argv too;
    otherwise an agent_argv failure is left to the tests that read it."""
    __tracebackhide__ = True
    tolerated = () if agent else ("agent_argv",)
    assert rec.error is None or rec.error_phase in tolerated, (
        f"recorded launch of scenario {rec.scenario!r} failed, so nothing can be "
        f"checked: {rec.describe_error()} (Backend.script must script every reply a "
        "recorded launch needs)"
    )
    return rec


def launch_failed(rec: Recording) -> bool:
    """Whether prepare or launch raised (an agent_argv or close failure is
    for the tests of those)."""
    return rec.error is not None and rec.error_phase in ("prepare", "script", "launch")


def joined(argv: Sequence[str]) -> str:
    return " ".join(argv)


def is_python(token: str) -> bool:
    return token == sys.executable or bool(_PYTHON.fullmatch(PurePosixPath(token).name))


def tty_flags(argv: Sequence[str]) -> list[str]:
    return [t for t in argv if t in TTY_FLAGS or (_SHORT_CLUSTER.fullmatch(t) and "t" in t)]


def framing(rec: Recording, tty: bool) -> tuple[str, ...]:
    """The agent argv without the agent's own arguments at its end."""
    argv = rec.agent_argvs[tty]
    n = len(rec.agent_args)
    return argv[:-n] if n and argv[-n:] == rec.agent_args else argv


def port_map(rec: Recording) -> dict[int, int]:
    """Host port -> container port, from the ``<engine> port C P/tcp`` answers."""
    out: dict[int, int] = {}
    for i, call in rec.indexed():
        if call.kind != "run" or subcommand(call.argv) not in (("port",), ("container", "port")):
            continue
        cport = re.match(r"(\d+)", call.argv[-1]) if len(call.argv) > 3 else None
        for line in rec.runner.stdout_of(i).splitlines():
            host_port = line.strip().rpartition(":")[2]
            if cport and host_port.isdigit():
                out[int(host_port)] = int(cport.group(1))
    return out


def daemon_of(url: str, ports: dict[int, int]) -> str | None:
    """Which bundle daemon a proxy URL reaches: through a discovered host
    port, a network alias, or the daemon's container port."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return None
    by_port = {PORTS[EGRESS]: EGRESS, PORTS[PIPELOCK]: PIPELOCK}
    if port in ports:
        return by_port.get(ports[port])
    if host in (EGRESS, PIPELOCK):
        return host
    return by_port.get(port)


def agent_env_argvs(rec: Recording) -> list[tuple[str, ...]]:
    """argvs that set the agent's environment: the agent argvs and every
    command run with an ``HTTPS_PROXY=`` assignment (agent create/exec)."""
    out = [rec.agent_argvs[t] for t in (False, True) if t in rec.agent_argvs]
    out += [a for a in rec.runs() if any(k == "HTTPS_PROXY" for k, _ in env_assignments(a))]
    return out


def published(rec: Recording):
    images = set()
    if rec.plan is not None:
        images = {rec.plan.agent_image_ref, rec.plan.bundle_image_ref}
    for argv in rec.runs():
        for value in publish_values(argv, stop_at=images):
            yield argv, parse_publish(value)


def first_index(rec: Recording, phase: str, pred) -> int | None:
    for i, call in rec.indexed(phase):
        if call.kind == "run" and pred(call.argv):
            return i
    return None


def command_at(argv: Sequence[str], words: Sequence[str]) -> int:
    """Index of the command ``words`` in ``argv`` (as tokens, or inside one
    ``sh -c`` token), or -1."""
    at = contains_seq(argv, words)
    if at >= 0:
        return at
    text = " ".join(words)
    return next((i for i, tok in enumerate(argv) if text in tok), -1)


def as_node(argv: Sequence[str], at: int) -> bool:
    before = list(argv[:at])
    return (contains_seq(before, ["runuser", "-u", "node"]) >= 0
            or contains_seq(before, ["-u", "node"]) >= 0
            or contains_seq(before, ["--user", "node"]) >= 0 or "--user=node" in before)


@functools.lru_cache(maxsize=64)
def _stdlib_problem(script: str, mtime_ns: int) -> str | None:
    return _read_stdlib_problem(Path(script))


def stdlib_problem(script: Path) -> str | None:
    """Why ``script`` is not stdlib-only, or None (cached per file version)."""
    try:
        mtime = script.stat().st_mtime_ns
    except OSError as exc:
        return f"cannot be read ({exc})"
    return _stdlib_problem(str(script), mtime)


def _read_stdlib_problem(script: Path) -> str | None:
    """Why ``script`` is not stdlib-only (an import outside the standard
    library, or a relative import), or None."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        return f"cannot be read as Python ({exc})"
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                return f"line {node.lineno}: relative import (needs its package on sys.path)"
            names = [node.module or ""]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in stdlib:
                return f"line {node.lineno}: imports {name!r}, not in the standard library"
    return None


def _always_failing_ca(runner: RecordingRunner, plan) -> None:
    runner.reply(contains="update-ca-certificates", first=True,
                 stdout="Updating certificates in /etc/ssl/certs...\n0 added, 0 removed; done.\n")


class SnapshotTier:
    """Argv-snapshot tests; mixed into `BackendConformance`."""

    # -- fixtures ----------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def _bottle_recordings(cls):
        """Recordings shared by the tests of one class (keyed by backend)."""
        return {}

    @pytest.fixture
    def bottle_recorder(self, backend, tmp_path_factory, _bottle_recordings) -> Recorder:
        """Records scenarios for ``backend`` in fresh scratch directories."""
        return Recorder(backend, lambda name: tmp_path_factory.mktemp(name),
                        _bottle_recordings)

    # -- the snapshot itself ---------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("SNAP-MATCH"))
    def test_recording_matches_snapshot(self, backend, scenario: Scenario, bottle_recorder,
                                        bottle_settings, snapshot):
        """The full recording (launch, provisioning, agent argv, teardown)
        equals ``<snapshot dir>/<scenario>.txt``."""
        rec = launched(bottle_recorder(scenario), agent=True)
        directory = bottle_settings.snapshot_path(rec.backend_name)
        path = snapshot_file(directory, scenario.name)
        if not path.is_file() and not snapshot.update_snapshots:
            pytest.fail(missing_snapshot_message(path, rec.backend_name, scenario.name),
                        pytrace=False)
        text = rec.text()
        assert text == snapshot(extension_class=extension_for(directory), name=scenario.name), (
            f"the recorded commands differ from {path}; if the change is intended, run "
            "with --snapshot-update and review the diff before committing it")

    # -- EXEC ------------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("EXEC-ABI"))
    def test_agent_argv_on_every_bottle(self, backend, scenario: Scenario, bottle_recorder):
        """agent_argv returns plain host argv ending in the agent's arguments,
        and recording the same launch twice runs the same commands."""
        rec = launched(bottle_recorder(scenario), agent=True)
        for tty in (False, True):
            raw = rec.agent_argv_raw[tty]
            assert isinstance(raw, list) and raw, (
                f"agent_argv(tty={tty}) must return a non-empty list, got {raw!r}")
            assert all(isinstance(a, str) for a in raw), (
                f"agent_argv(tty={tty}) holds non-strings: {raw!r}")
            tail = tuple(raw[-len(rec.agent_args):])
            assert tail == rec.agent_args, (
                f"agent_argv(tty={tty}) must end with the agent's arguments "
                f"{list(rec.agent_args)}, got: {show(rec, raw)}")
        again = launched(bottle_recorder(scenario, fresh=True), agent=True)
        first, second = rec.text().splitlines(), again.text().splitlines()
        diff = next((f"line {i + 1}: {a!r} then {b!r}" for i, (a, b) in
                     enumerate(zip(first, second)) if a != b),
                    f"{len(first)} lines then {len(second)} lines")
        assert first == second, (
            f"two recorded launches of scenario {scenario.name!r} ran different commands "
            f"({diff}); names must come from runner.unique and paths from the plan")

    @pytest.mark.parametrize("scenario", scenario_params("EXEC-TTY"))
    def test_tty_framing_only_when_tty(self, backend, scenario: Scenario, bottle_recorder):
        """tty=False: no -t/--tty/-it and no resize wrapper; tty=True: differs
        and allocates a terminal."""
        rec = launched(bottle_recorder(scenario), agent=True)
        notty, tty = framing(rec, False), framing(rec, True)
        flags = tty_flags(notty)
        assert not flags, (
            f"agent_argv(tty=False) carries TTY flags {flags}: {show(rec, notty)}")
        wrappers = [t for t in notty if is_python(t) or t.endswith(".py")]
        assert not wrappers, (
            f"agent_argv(tty=False) runs a wrapper ({wrappers}); a resize wrapper is TTY "
            f"framing and belongs only to tty=True: {show(rec, notty)}")
        assert tty != notty, (
            f"agent_argv(tty=True) is identical to tty=False, so no terminal is allocated: "
            f"{show(rec, tty)}")
        assert tty_flags(tty), (
            f"agent_argv(tty=True) has no TTY flag (-t, --tty, -it): {show(rec, tty)}")

    @pytest.mark.parametrize("scenario", scenario_params("EXEC-PTY-ABS"))
    def test_pty_wrapper_by_absolute_path(self, backend, scenario: Scenario, bottle_recorder):
        """A python wrapper in agent_argv is `python /abs/script.py`, the file
        exists and imports only the standard library; never `python -m`."""
        rec = launched(bottle_recorder(scenario), agent=True)
        for tty in (False, True):
            argv = rec.agent_argvs[tty]
            for i, tok in enumerate(argv):
                if is_python(tok):
                    j = i + 1
                    while j < len(argv) and argv[j].startswith("-") and argv[j] not in ("-m", "-c"):
                        j += 1
                    nxt = argv[j] if j < len(argv) else ""
                    assert nxt != "-m", (
                        f"agent_argv(tty={tty}) runs a wrapper as `python -m "
                        f"{argv[j + 1] if j + 1 < len(argv) else ''}`, which only imports when "
                        "the cwd holds its package (a tmux pane's cwd does not): run it by "
                        f"absolute path: {show(rec, argv)}")
                    assert nxt.endswith(".py"), (
                        f"agent_argv(tty={tty}) runs python without a script path "
                        f"({nxt!r}): {show(rec, argv)}")
                elif tok.endswith(".py"):
                    assert i > 0 and is_python(argv[i - 1]) or (
                        i > 1 and argv[i - 1].startswith("-") and is_python(argv[i - 2])), (
                        f"wrapper script {rec.normalise(tok)} is not run by a python "
                        f"interpreter: {show(rec, argv)}")
                else:
                    continue
                script = argv[i] if tok.endswith(".py") else nxt
                path = Path(script)
                assert path.is_absolute(), (
                    f"wrapper script {script!r} is relative: it resolves against whatever "
                    f"cwd the caller (e.g. a tmux pane) has: {show(rec, argv)}")
                assert path.is_file(), f"wrapper script {rec.normalise(script)} does not exist"
                problem = stdlib_problem(path)
                assert problem is None, (
                    f"wrapper script {rec.normalise(script)} must be stdlib-only: {problem}")

    # -- PORT ------------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PORT-LOOPBACK", tier="snapshot"))
    def test_published_ports_on_loopback(self, backend, scenario: Scenario, bottle_recorder):
        """Every -p/--publish binds a loopback address; no -P, no host network."""
        rec = launched(bottle_recorder(scenario))
        for argv, pub in published(rec):
            assert pub.loopback, (
                f"port {pub.container_port} is published as {pub.raw!r}, which binds "
                f"{pub.host_ip or 'every host interface'}; bind 127.x.y.z or [::1]: "
                f"{show(rec, argv)}")
        images = {rec.plan.agent_image_ref, rec.plan.bundle_image_ref}
        for argv in rec.runs():
            bad = publish_all_flags(argv, stop_at=images)
            assert not bad, (
                f"{bad} exposes ports on every host interface: {show(rec, argv)}")

    @pytest.mark.parametrize("scenario",
                             scenario_params("PORT-EGRESS-ONLY-WHEN-ROUTED", tier="snapshot"))
    def test_only_first_hop_reachable(self, backend, scenario: Scenario, bottle_recorder):
        """Routed: pipelock's port is not published, shares no engine network
        with the agent, and no agent env value dials it; unrouted: the same
        for egress."""
        rec = launched(bottle_recorder(scenario))
        hop = rec.plan.first_hop
        other = PIPELOCK if hop == EGRESS else EGRESS
        why = ("routed: pipelock stays bundle-internal, egress is the only way out"
               if hop == EGRESS else "not routed: the agent dials pipelock, never egress")
        for argv, pub in published(rec):
            assert pub.container_port != str(PORTS[other]), (
                f"{other}'s port {PORTS[other]} is published ({pub.raw}) ({why}): "
                f"{show(rec, argv)}")
        nets, daemons, agents = engine_topology(
            rec.runs(), bundle_image=rec.plan.bundle_image_ref,
            agent_image=rec.plan.agent_image_ref)
        for agent in agents:
            for container, runs_here in daemons.items():
                shared = nets.get(agent, set()) & nets.get(container, set())
                if other in runs_here and hop not in runs_here:
                    assert not shared, (
                        f"{other} (container {container}) shares network(s) {sorted(shared)} "
                        f"with the agent container {agent} ({why})")
        ports = port_map(rec)
        for argv in agent_env_argvs(rec):
            for name, value in env_assignments(argv):
                reaches = [daemon_of(v, ports) for v in re.split(r"[,\s]+", value) if v]
                assert other not in reaches, (
                    f"the agent's env {name}={rec.normalise(value)} points at {other} "
                    f"({why}): {show(rec, argv)}")

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-PROXY-ENV", tier="snapshot"))
    def test_proxy_env_points_at_first_hop(self, backend, scenario: Scenario, bottle_recorder):
        """HTTPS_PROXY and HTTP_PROXY reach the plan's first hop (by alias,
        container port, or the host port `docker port` discovered)."""
        rec = launched(bottle_recorder(scenario), agent=True)
        hop, ports = rec.plan.first_hop, port_map(rec)
        for name in ("HTTPS_PROXY", "HTTP_PROXY"):
            values = [(argv, v) for argv in agent_env_argvs(rec)
                      for k, v in env_assignments(argv) if k == name]
            assert values, (
                f"{name} is not set on any argv that starts or execs the agent "
                f"(looked for {name}=... in the agent's create/run/exec commands)")
            for argv, value in values:
                seen = daemon_of(value, ports)
                assert seen == hop, (
                    f"{name}={rec.normalise(value)} reaches {seen or 'no bundle daemon'}, "
                    f"but the first hop is {hop} "
                    f"({'routes are declared' if hop == EGRESS else 'no routes'}): "
                    f"{show(rec, argv)}")

    # -- PROV-CA ---------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CA"))
    def test_ca_one_copy_one_shell(self, backend, scenario: Scenario, bottle_recorder):
        """One copy into the CA dir, then exactly one root `sh -c` with chown,
        chmod and update-ca-certificates."""
        rec = launched(bottle_recorder(scenario))
        updates = [(i, c.argv) for i, c in rec.indexed()
                   if c.kind == "run" and mentions(c.argv, "update-ca-certificates")]
        assert len(updates) == 1, (
            f"expected exactly one command running update-ca-certificates, saw "
            f"{len(updates)}: " + "; ".join(show(rec, a) for _, a in updates))
        at, argv = updates[0]
        sh = next((j for j in range(len(argv) - 2)
                   if PurePosixPath(argv[j]).name in ("sh", "bash", "ash", "dash")
                   and argv[j + 1] == "-c"), None)
        assert sh is not None, (
            f"update-ca-certificates must run inside one `sh -c` (one exec round trip): "
            f"{show(rec, argv)}")
        script = argv[sh + 2]
        for step in ("chown", "chmod", "update-ca-certificates"):
            assert re.search(rf"\b{step}\b", script), (
                f"the CA `sh -c` lacks {step} (chown, chmod and update-ca-certificates "
                f"belong in the one round trip): {script!r}")
        assert not as_node(argv, sh), (
            f"update-ca-certificates must run as root, not node: {show(rec, argv)}")
        touching = [(i, c.argv) for i, c in rec.indexed()
                    if c.kind == "run" and i != at
                    and any(CA_GUEST_DIR in tok for tok in c.argv)]
        before = [a for i, a in touching if i < at]
        assert len(before) == 1, (
            f"expected exactly one copy of the CA into {CA_GUEST_DIR} before "
            f"update-ca-certificates, saw {len(before)}: "
            + ("; ".join(show(rec, a) for a in before) or "none"))
        after = [a for i, a in touching if i > at]
        assert not after, (
            f"commands touch {CA_GUEST_DIR} after update-ca-certificates (an extra round "
            "trip): " + "; ".join(show(rec, a) for a in after))

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CA-SELECT", tier="snapshot"))
    def test_ca_trusts_first_hop(self, backend, scenario: Scenario, bottle_recorder):
        """The CA copied into the guest is the one mounted into the first hop
        (/etc/egress/ca.pem when routed, else /etc/pipelock/ca.pem)."""
        rec = launched(bottle_recorder(scenario))
        copies = [a for a in rec.runs("launch")
                  if is_guest_copy(a) and any(CA_GUEST_DIR in t for t in a)]
        assert len(copies) == 1, (
            f"expected one guest copy into {CA_GUEST_DIR}, saw {len(copies)}: "
            + "; ".join(show(rec, a) for a in copies))
        argv = copies[0]
        dest = next(i for i, t in enumerate(argv) if CA_GUEST_DIR in t)
        source = argv[dest - 1]
        hop = rec.plan.first_hop
        targets = sorted({dst for a in rec.runs() for src, dst in mount_pairs(a) if src == source})
        assert FIRST_HOP_CA_MOUNT[hop] in targets, (
            f"the guest trusts {rec.normalise(source)}, mounted at {targets or 'nowhere'}; "
            f"with first hop {hop} it must be the CA mounted at {FIRST_HOP_CA_MOUNT[hop]}")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-CA-ONE-ADDED"))
    def test_ca_without_one_added_fails_and_cleans_up(self, backend, scenario: Scenario,
                                                      bottle_recorder):
        """update-ca-certificates answering '0 added' fails the launch with a
        message about the CA, and every resource launch created is removed."""
        rec = bottle_recorder(scenario, script=_always_failing_ca)
        assert rec.error is not None, (
            "launch succeeded although update-ca-certificates reported '0 added' "
            "(the guest would not trust the proxy CA, silently)")
        assert rec.error_phase == "launch" and isinstance(rec.error, Exception) \
            and not isinstance(rec.error, RunawayLaunch), rec.describe_error()
        message = str(rec.error)
        assert re.search(r"update-ca-certificates|1 added|\bCA\b|certificate", message, re.I), (
            f"the launch error does not say the CA step failed: {rec.describe_error()}")
        leftover = []
        calls = rec.indexed()
        for i, call in calls:
            res = call.kind == "run" and created_resource(call.argv)
            if not res:
                continue
            gone = any(c.kind == "run" and j > i and res in removed_resources(c.argv)
                       for j, c in calls)
            if not gone:
                leftover.append(f"{res.kind} {res.name}")
        assert not leftover, (
            f"after the failed launch these were created and never removed: {leftover}")
        state = Path(rec.plan.state_dir)
        assert not state.exists(), (
            f"the state dir {rec.normalise(str(state))} is left behind after the failed launch")

    # -- PROV-GIT --------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PROV-GITUSER", tier="snapshot"))
    def test_git_user_one_call_per_field_as_node(self, backend, scenario: Scenario,
                                                 bottle_recorder):
        """One `git config --global user.<field> <value>` per set field, as
        node with HOME=/home/node; none for unset fields."""
        rec = launched(bottle_recorder(scenario))
        values = dict(rec.spec.git_user.fields())
        calls_by_field: dict[str, set[int]] = {}
        for field in ("name", "email"):
            words = ["git", "config", "--global", f"user.{field}"]
            hits = [(i, c.argv, command_at(c.argv, words)) for i, c in rec.indexed()
                    if c.kind == "run"]
            calls_by_field[field] = {i for i, _, at in hits if at >= 0}
            hits = [(a, at) for _, a, at in hits if at >= 0]
            expected = 1 if field in values else 0
            assert len(hits) == expected, (
                f"git_user.{field} is {'set' if expected else 'unset'}: expected "
                f"{expected} `git config --global user.{field}` call(s), saw {len(hits)}: "
                + ("; ".join(show(rec, a) for a, _ in hits) or "none"))
            for argv, at in hits:
                problem = node_framing_problem(argv, at)
                assert problem is None, (
                    f"`git config --global user.{field}` must run as node with "
                    f"HOME=/home/node (else it writes /root/.gitconfig), but {problem}: "
                    f"{show(rec, argv)}")
                if argv[at] == "git":
                    value = argv[at + 4] if at + 4 < len(argv) else None
                    assert value == values[field], (
                        f"user.{field} is set to {value!r}, the spec says "
                        f"{values[field]!r}: {show(rec, argv)}")
        shared = calls_by_field["name"] & calls_by_field["email"]
        assert not shared, (
            "user.name and user.email are set by one command; provisioning runs one "
            "`git config --global user.<field>` per field: "
            + "; ".join(show(rec, rec.runner.calls[i].argv) for i in sorted(shared)))

    @pytest.mark.parametrize("scenario", scenario_params("PROV-GIT-CWD"))
    def test_cwd_git_copied_and_chowned(self, backend, scenario: Scenario, bottle_recorder):
        """With a cwd: its .git is copied to /home/node/work/.git once, then
        chowned -R to node. Without: nothing lands there."""
        rec = launched(bottle_recorder(scenario))
        target = f"{WORKDIR}/.git"
        runs = [(i, c.argv) for i, c in rec.indexed() if c.kind == "run"]
        if rec.spec.cwd is None:
            touching = [a for _, a in runs if any(target in t for t in a)]
            assert not touching, (
                f"no cwd is set, yet commands touch {target}: "
                + "; ".join(show(rec, a) for a in touching))
            return
        source = str(Path(rec.spec.cwd) / ".git")
        copies = [(i, a) for i, a in runs
                  if source in a and any(t.endswith(target) for t in a)]
        assert len(copies) == 1, (
            f"expected one copy of {rec.normalise(source)} to {target}, saw {len(copies)}: "
            + ("; ".join(show(rec, a) for _, a in copies) or "none"))
        chown = re.compile(rf"chown -R node(:node)? {re.escape(WORKDIR)}(/\.git)?(\s|$)")
        later = [a for i, a in runs if i > copies[0][0] and chown.search(joined(a))]
        assert later, (
            f"{target} is copied but never `chown -R node` afterwards, so node cannot "
            "use the checkout")

    # -- PROV-PROMPT / SKILLS ----------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("PROV-PROMPT", tier="snapshot"))
    def test_prompt_flag_iff_prompt(self, backend, scenario: Scenario, bottle_recorder):
        """--append-system-prompt-file <prompt path> in agent_argv iff a claude
        bottle's prompt is non-empty; the prompt lands 0600, node, as a file."""
        rec = launched(bottle_recorder(scenario), agent=True)
        want = rec.spec.agent == "claude" and bool(rec.spec.prompt)
        for tty in (False, True):
            argv = rec.agent_argvs[tty]
            has = contains_seq(argv, [PROMPT_FLAG, PROMPT_PATH]) >= 0
            if want:
                assert has, (
                    f"the prompt is non-empty but agent_argv(tty={tty}) lacks "
                    f"`{PROMPT_FLAG} {PROMPT_PATH}`: {show(rec, argv)}")
            else:
                assert not any(PROMPT_FLAG in t for t in argv), (
                    f"{PROMPT_FLAG} is passed although "
                    f"{'the prompt is empty' if rec.spec.agent == 'claude' else 'the agent is not claude'}"
                    f": {show(rec, argv)}")
        if not want:
            return
        text = rec.spec.prompt.strip()
        leaked = [a for a in rec.all_argvs() if any(text in t for t in a)]
        assert not leaked, "the prompt text is on an argv; it must travel as a file"
        runs = [(i, c.argv) for i, c in rec.indexed() if c.kind == "run"]
        copy = next((i for i, a in runs if any(t.endswith(PROMPT_PATH) for t in a)
                     and (is_guest_copy(a) or not is_guest_exec(a))), None)
        assert copy is not None, f"no command copies the prompt to {PROMPT_PATH}"
        for pattern, what in ((rf"chmod 0?600 {re.escape(PROMPT_PATH)}", "chmod 0600"),
                              (rf"chown node(:node)? {re.escape(PROMPT_PATH)}", "chown node")):
            assert any(i > copy and re.search(pattern, joined(a)) for i, a in runs), (
                f"the prompt file is copied but never `{what} {PROMPT_PATH}` afterwards")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-SKILLS", tier="snapshot"))
    def test_skills_copied_and_chowned(self, backend, scenario: Scenario, bottle_recorder):
        """Each skill dir is copied once to /home/node/.claude/skills/<name>
        and chowned -R to node afterwards; no skills, nothing there."""
        rec = launched(bottle_recorder(scenario))
        runs = [(i, c.argv) for i, c in rec.indexed() if c.kind == "run"]
        if not rec.spec.skills:
            touching = [a for _, a in runs if any(f"{SKILLS_DIR}/" in t for t in a)]
            assert not touching, ("no skills declared, yet commands write into "
                                  f"{SKILLS_DIR}/: " + "; ".join(show(rec, a) for a in touching))
            return
        for skill in rec.spec.skills:
            dest = f"{SKILLS_DIR}/{skill.name}"
            copies = [(i, a) for i, a in runs
                      if str(skill) in a and any(t.endswith(dest) for t in a)]
            assert len(copies) == 1, (
                f"expected one copy of skill {skill.name!r} to {dest}, saw {len(copies)}: "
                + ("; ".join(show(rec, a) for _, a in copies) or "none"))
            chown = re.compile(rf"chown -R node(:node)? {re.escape(SKILLS_DIR)}"
                               rf"(/{re.escape(skill.name)})?(\s|$)")
            assert any(i > copies[0][0] and chown.search(joined(a)) for i, a in runs), (
                f"skill {skill.name!r} is copied but never `chown -R node` afterwards")

    # -- PROV-MCP --------------------------------------------------------------------

    @staticmethod
    def _mcp_adds(rec: Recording) -> list[tuple[int, tuple[str, ...], int]]:
        out = []
        for i, call in rec.indexed():
            if call.kind == "run":
                at = command_at(call.argv, ["claude", "mcp", "add"])
                if at >= 0:
                    out.append((i, call.argv, at))
        return out

    @pytest.mark.parametrize("scenario", scenario_params("PROV-MCP", tier="snapshot"))
    def test_mcp_registered_iff_supervise(self, backend, scenario: Scenario, bottle_recorder):
        """supervise on: exactly one `claude mcp add --scope user`; off: none."""
        rec = launched(bottle_recorder(scenario))
        adds = self._mcp_adds(rec)
        if not rec.spec.supervise:
            assert not adds, ("supervise is off, yet an MCP server is registered: "
                              + "; ".join(show(rec, a) for _, a, _ in adds))
            return
        assert len(adds) == 1, (
            f"supervise is on: expected one `claude mcp add`, saw {len(adds)}: "
            + ("; ".join(show(rec, a) for _, a, _ in adds) or "none"))
        _, argv, at = adds[0]
        tail = argv[at:]
        assert (contains_seq(tail, ["--scope", "user"]) >= 0 or "--scope=user" in tail
                or contains_seq(tail, ["-s", "user"]) >= 0
                or "--scope user" in joined(tail)), (
            f"`claude mcp add` must use --scope user (the agent reads its user config): "
            f"{show(rec, argv)}")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-MCP", tier="snapshot",
                                                         **_SUPERVISED))
    def test_mcp_failure_logged_not_fatal(self, backend, scenario: Scenario, bottle_recorder):
        """A failing `claude mcp add` is reported through progress and the
        launch still succeeds."""

        def failing_mcp(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: command_at(argv, ["claude", "mcp", "add"]) >= 0,
                       returncode=1, stderr="error: simulated MCP registration failure")

        rec = bottle_recorder(scenario, script=failing_mcp)
        assert not launch_failed(rec), (
            f"a failed MCP registration must not fail the launch: {rec.describe_error()}")
        adds = self._mcp_adds(rec)
        assert adds and all(rec.runner.calls[i].returncode != 0 for i, _, _ in adds), (
            "the scripted MCP failure was never hit (no `claude mcp add` ran)")
        logged = [m for m in rec.progress
                  if re.search(r"fail|error", m, re.I) and re.search(r"mcp|supervise", m, re.I)]
        assert logged, (
            "the MCP registration failure is not logged: launch's progress callback "
            f"said {list(rec.progress)}")

    @pytest.mark.parametrize("scenario", scenario_params("PROV-MCP-USER", **_SUPERVISED))
    def test_mcp_add_as_node(self, backend, scenario: Scenario, bottle_recorder):
        """`claude mcp add` runs as node with HOME=/home/node."""
        rec = launched(bottle_recorder(scenario))
        adds = self._mcp_adds(rec)
        assert adds, "supervise is on but no `claude mcp add` ran"
        for _, argv, at in adds:
            problem = node_framing_problem(argv, at)
            assert problem is None, (
                f"`claude mcp add` must run as node with HOME=/home/node (else the entry "
                f"lands in /root/.claude.json and /mcp shows no server), but {problem}: "
                f"{show(rec, argv)}")

    # -- LAUNCH ----------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-READY"))
    def test_no_fixed_sleep(self, backend, scenario: Scenario, bottle_recorder):
        """No time.sleep outside the runner, and no runner.sleep right after
        a command that succeeded (a wait nothing asked for)."""
        rec = launched(bottle_recorder(scenario))
        assert not rec.direct_sleeps, (
            f"the backend called time.sleep({', '.join(f'{s:g}' for s in rec.direct_sleeps)}) "
            "directly: wait with runner.sleep inside a bounded poll instead")
        calls = rec.indexed()
        for (_, prev), (i, call) in zip(calls, calls[1:]):
            if call.kind == "sleep" and prev.kind == "run" and prev.returncode == 0:
                raise AssertionError(
                    f"sleep {call.seconds:g} right after a command that succeeded "
                    f"({show(rec, prev.argv)}): a fixed wait, not a poll")

    @staticmethod
    def _ready_probe(rec: Recording) -> tuple[str, ...]:
        i = first_index(rec, "launch", lambda a: is_guest_exec(a) or is_guest_copy(a))
        assert i is not None, "launch never execs in (or copies into) the guest"
        probe = rec.runner.calls[i].argv
        assert is_guest_exec(probe), (
            f"the first guest command is a copy, not a readiness probe: {show(rec, probe)}")
        return probe

    @pytest.mark.parametrize("scenario", scenario_params(
        "LAUNCH-READY", names=("minimal-claude", "supervise-prompt-skills")))
    def test_readiness_failures_survived(self, backend, scenario: Scenario, bottle_recorder):
        """The first guest exec (the readiness probe) failing a few times is
        polled through, with a runner.sleep between tries and no other guest
        command until it succeeds."""
        probe = self._ready_probe(launched(bottle_recorder(scenario)))

        def warming(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: argv == probe, returncode=1,
                       stderr="exec channel not ready", times=READY_FAILURES)

        rec = bottle_recorder(scenario, script=warming)
        assert not launch_failed(rec), (
            f"launch gave up after the first guest exec failed {READY_FAILURES} times "
            f"({show(rec, probe)}): poll readiness instead of assuming it: "
            f"{rec.describe_error()}")
        assert not rec.direct_sleeps, "the readiness wait used time.sleep, not runner.sleep"
        tries = [(i, c) for i, c in rec.indexed("launch") if c.kind == "run" and c.argv == probe]
        assert len(tries) >= READY_FAILURES + 1, (
            f"the probe ran {len(tries)} times; {READY_FAILURES} failures need "
            f"{READY_FAILURES + 1} tries")
        first_ok = next(i for i, c in tries if c.returncode == 0)
        window = [(i, c) for i, c in rec.indexed("launch") if tries[0][0] <= i < first_ok]
        early = [c.argv for _, c in window if c.kind == "run" and c.argv != probe
                 and (is_guest_exec(c.argv) or is_guest_copy(c.argv))]
        assert not early, (
            "guest commands ran before the guest answered: "
            + "; ".join(show(rec, a) for a in early))
        for (a, _), (b, _) in zip(tries, tries[1:]):
            if a >= first_ok:
                break
            assert any(rec.runner.calls[k].kind == "sleep" for k in range(a + 1, b)), (
                "the readiness probe is retried without runner.sleep in between "
                "(a busy loop)")

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-READY",
                                                         names=("minimal-claude",)))
    def test_readiness_wait_is_bounded(self, backend, scenario: Scenario, bottle_recorder):
        """A guest that never answers fails the launch after a bounded wait."""
        probe = self._ready_probe(launched(bottle_recorder(scenario)))

        def dead(runner: RecordingRunner, plan) -> None:
            reply_when(runner, lambda argv: argv == probe, returncode=1,
                       stderr="exec channel not ready")

        rec = bottle_recorder(scenario, script=dead)
        assert not isinstance(rec.error, RunawayLaunch), (
            f"launch never gave up on a guest that does not answer: {rec.describe_error()}")
        assert rec.error is not None, "launch succeeded although the guest never answered"
        waited = sum(c.seconds for c in rec.calls if c.kind == "sleep") + sum(rec.direct_sleeps)
        assert 0 < waited <= READY_BOUND_S, (
            f"the readiness wait slept {waited:g}s in total before failing; expected a "
            f"bounded poll (0 < total <= {READY_BOUND_S:g}s)")

    @pytest.mark.parametrize("scenario", scenario_params("LAUNCH-CA-WHEN-ROUTED"))
    def test_egress_ca_only_when_routed(self, backend, scenario: Scenario, bottle_recorder):
        """Unrouted: no egress CA is generated or mounted. Routed: egress has
        its CA mounted (it cannot intercept without one)."""
        rec = launched(bottle_recorder(scenario))
        mounted = [(a, dst) for a in rec.runs() for _, dst in mount_pairs(a)
                   if dst in EGRESS_CA_MOUNTS]
        if rec.plan.routed:
            assert mounted, (f"the bottle is routed but no CA is mounted at "
                             f"{EGRESS_CA_MOUNTS[0]} for egress")
            return
        assert not mounted, (
            "the bottle is not routed, yet an egress CA is mounted: "
            + "; ".join(show(rec, a) for a, _ in mounted))
        made = [a for a in rec.runs()
                if (prog(a) == "openssl" and "-x509" in a or contains_seq(a, ["tls", "init"]) >= 0)
                and any("egress" in t for t in a)]
        assert not made, (
            "the bottle is not routed, yet an egress CA is generated: "
            + "; ".join(show(rec, a) for a in made))

