"""The snapshot tier against both reference backends, and the pieces it is
built from (scenarios, recording, normalisation, the syrupy extension).

Snapshots resolve to the repository's ``snapshots/<backend>/`` (pytest's
rootdir is the repo). Regenerate after an intended change with
``pytest tests/unit/test_snapshot_tier.py --snapshot-update`` and review the diff.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from bottle_ref.backends.docker import DockerBackend
from bottle_ref.backends.smolmachines import SmolmachinesBackend
from conformance.recording import (
    DIRECT_SLEEP,
    Normaliser,
    Recorder,
    Resource,
    RunawayLaunch,
    _token,
    created_resource,
    engine_topology,
    parse_publish,
    record,
    removed_resources,
)
from conformance.argv import framing_problem
from conformance.argv.framing import command_word, guest_command
from conformance.scenarios import CODEX_TOKEN_EXP, SCENARIOS, scenario_params
from conformance.settings import Settings
from conformance.snapshot_ext import safe_name, snapshot_file
from conformance.tiers import SnapshotTier


class TestDockerSnapshots(SnapshotTier):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return DockerBackend()


class TestSmolmachinesSnapshots(SnapshotTier):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return SmolmachinesBackend()


# -- the pieces the tier is built from ---------------------------------------------

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_builds_under_its_root(tmp_path, name):
    inputs = SCENARIOS[name].build(tmp_path)
    assert inputs.spec.name == name and safe_name(name) == name
    assert inputs.host.state_root == tmp_path / "state" and inputs.host.home == tmp_path / "home"
    for value in inputs.host.env.values():
        assert "SECRET" in value and name in value and value in inputs.secrets
    codex = json.loads(inputs.host.home_files[".codex/auth.json"])
    assert codex["tokens"]["access_token"] in inputs.secrets
    for path in (*inputs.spec.skills, *([inputs.spec.cwd] if inputs.spec.cwd else [])):
        assert path.is_dir() and tmp_path in path.parents
    assert all("SECRET" not in repr(x) for x in (inputs, SCENARIOS[name]))


def test_scenarios_say_what_they_exercise(tmp_path):
    s = {n: sc.build(tmp_path / n).spec for n, sc in SCENARIOS.items()}
    assert s["minimal-claude"] == type(s["minimal-claude"])(name="minimal-claude")
    assert len(s["claude-routes"].routes) == 2
    assert len(s["git-upstreams-user"].upstreams) == 2
    assert len(s["git-upstreams-user"].git_user.fields()) == 2
    assert s["codex-forward-creds"].agent == "codex" and s["codex-forward-creds"].forward_host_credentials
    sps = s["supervise-prompt-skills"]
    assert sps.supervise and sps.prompt and len(sps.skills) == 2 and (sps.cwd / ".git").is_dir()
    assert s["empty-prompt"].prompt == "" and [f for f, _ in s["empty-prompt"].git_user.fields()] == ["email"]
    exp = json.loads(SCENARIOS["codex-forward-creds"].build(tmp_path / "x").host
                     .home_files[".codex/auth.json"])["tokens"]["access_token"].split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(exp + "=="))["exp"] == CODEX_TOKEN_EXP


def test_scenario_params_gate_on_scenario_needs():
    params = scenario_params("PROV-CA")
    assert [p.id for p in params] == list(SCENARIOS)
    for p in params:
        (mark,) = p.marks
        assert mark.name == "clause" and mark.args == ("PROV-CA",)
        assert set(mark.kwargs["needs"]) == {str(c) for c in p.values[0].needs}
    assert [p.id for p in scenario_params("PROV-MCP", names=["empty-prompt"])] == ["empty-prompt"]


def test_normaliser_hides_secrets_before_paths(tmp_path):
    norm = Normaliser.build(secrets=["tok-a-SECRET-1", "tok-a-SECRET-12"],
                            state_root=tmp_path / "state", home=tmp_path / "home", root=tmp_path)
    text = norm(f"{tmp_path}/state/x {tmp_path}/home/.codex {tmp_path}/skills "
                "-e T=tok-a-SECRET-12 tok-a-SECRET-1")
    assert text == "<STATE>/x <HOME>/.codex <TMP>/skills -e T=<SECRET> <SECRET>"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_recording_text_holds_no_secret_and_no_scratch_path(tmp_path, name):
    rec = record(DockerBackend(), SCENARIOS[name], tmp=tmp_path)
    assert rec.error is None, rec.describe_error()
    text = rec.text()
    assert str(tmp_path) not in text and "SECRET" not in text
    if rec.spec.routes:
        assert rec.secrets, "route token values must be known to the normaliser"


def test_tokens_render_unambiguously():
    assert _token("docker") == "docker"
    assert _token("/CN=bottle-ref pipelock CA") == "/CN=bottle-ref pipelock CA"
    assert _token("") == '""' and _token(" x") == '" x"' and _token("a\nb") == '"a\\nb"'


@pytest.mark.parametrize(("value", "ip", "cport", "loopback"), [
    ("127.77.1.2::8888", "127.77.1.2", "8888", True),
    ("127.0.0.1:9000:9099/tcp", "127.0.0.1", "9099", True),
    ("[::1]:8080:80", "[::1]", "80", True),
    ("0.0.0.0::8888", "0.0.0.0", "8888", False),
    ("8080:80", None, "80", False),
    ("80", None, "80", False),
])
def test_parse_publish(value, ip, cport, loopback):
    pub = parse_publish(value)
    assert (pub.host_ip, pub.container_port, pub.loopback) == (ip, cport, loopback)


@pytest.mark.parametrize(("argv", "problem"), [
    (["docker", "exec", "-u", "node", "-e", "HOME=/home/node", "c", "git"], None),
    (["smolvm", "machine", "exec", "--name", "m", "-e", "HOME=/home/node", "-e", "USER=node",
      "--", "runuser", "-u", "node", "--", "git"], None),
    (["smolvm", "machine", "exec", "--name", "m", "--", "runuser", "-u", "node", "--",
      "env", "HOME=/home/node", "USER=node", "git"], None),
    (["smolvm", "machine", "exec", "--name", "m", "-e", "HOME=/home/node", "--",
      "runuser", "-u", "node", "--", "git"], "sets no USER"),
    (["smolvm", "machine", "exec", "--name", "m", "-e", "HOME=/home/node", "-e", "USER=root",
      "--", "runuser", "-u", "node", "--", "git"], "sets USER=root"),
    (["smolvm", "machine", "exec", "--name", "m", "--", "runuser", "-u", "node", "--", "git"],
     "HOME=/home/node is not set"),
    (["docker", "exec", "-u", "root", "-e", "HOME=/root", "c", "git"], "runs as root"),
    (["docker", "exec", "-u", "node", "-u", "root", "-e", "HOME=/home/node", "c", "git"],
     "runs as root"),  # docker honours the last -u
    (["docker", "exec", "--user", "node:node", "-e", "HOME=/home/node", "c", "git"], None),
    (["docker", "exec", "-u", "node", "-e", "HOME=/root", "c", "git"], "HOME=/root"),
])
def test_node_framing(argv, problem):
    """The snapshot tier's framing cases, through the suite's one oracle."""
    found = framing_problem(argv, argv.index("git"))
    assert (found is None) if problem is None else (problem in found), found


@pytest.mark.parametrize(("argv", "command"), [
    (["docker", "exec", "-u", "node", "-e", "HOME=/home/node", "-w", "/w", "c", "git", "x"], "git"),
    (["docker", "exec", "c", "true"], "true"),
    (["docker", "container", "exec", "-i", "c", "claude"], "claude"),
    (["smolvm", "machine", "exec", "--name", "m", "-e", "A=1", "--", "runuser", "-u", "node",
      "--", "git"], "git"),
    (["smolvm", "machine", "exec", "--name", "m", "--", "sh", "-c", "true"], "sh"),
])
def test_guest_command_start(argv, command):
    start, _ = guest_command(argv)
    assert argv[command_word(argv, start)] == command


def test_resources_and_topology():
    assert created_resource(["docker", "network", "create", "--internal", "--label", "a=b", "n1"]) \
        == Resource("network", "n1")
    assert created_resource(["docker", "create", "--name", "c1", "img"]) == Resource("container", "c1")
    assert created_resource(["smolvm", "machine", "create", "m1", "--from", "f", "--net"]) \
        == Resource("machine", "m1")
    assert removed_resources(["docker", "rm", "-f", "c1", "c2"]) == [
        Resource("container", "c1"), Resource("container", "c2")]
    assert removed_resources(["smolvm", "machine", "delete", "m1", "-f"]) == [Resource("machine", "m1")]
    nets, daemons, agents = engine_topology([
        ["docker", "create", "--name", "p", "--network", "b", "bundle:1", "bottle-bundle", "pipelock"],
        ["docker", "network", "connect", "--alias", "pipelock", "a", "p"],
        ["docker", "create", "--name", "ag", "--network", "a", "agent:1", "sleep"],
    ], bundle_image="bundle:1", agent_image="agent:1")
    assert nets == {"p": {"a", "b"}, "ag": {"a"}} and daemons == {"p": {"pipelock"}}
    assert agents == {"ag"}


class _SleepsDirectly(DockerBackend):
    """Waits with time.sleep after start (the seed's 1.5 s)."""

    def launch(self, plan, runner, **kw):
        time.sleep(1.5)
        return super().launch(plan, runner, **kw)


class _PollsForever(DockerBackend):
    def launch(self, plan, runner, **kw):
        while not runner.run(["docker", "exec", "never", "true"], check=False).returncode == 42:
            pass


def test_direct_time_sleep_is_recorded_not_slept(tmp_path):
    started = time.monotonic()
    rec = record(_SleepsDirectly(), SCENARIOS["minimal-claude"], tmp=tmp_path)
    assert time.monotonic() - started < 1.0
    assert rec.error is None and rec.direct_sleeps == [1.5]
    assert f"{DIRECT_SLEEP} 1.5" in rec.text()
    assert time.sleep.__module__ == "time" or time.sleep.__name__ == "sleep"


def test_runaway_launch_is_stopped(tmp_path):
    rec = record(_PollsForever(), SCENARIOS["minimal-claude"], tmp=tmp_path, limit=50)
    assert isinstance(rec.error, RunawayLaunch) and rec.error_phase == "launch"
    assert len(rec.runs("launch")) == 50


def test_recorder_caches_plain_recordings_only(tmp_path_factory):
    recorder = Recorder(DockerBackend(), tmp_path_factory.mktemp)
    s = SCENARIOS["minimal-claude"]
    assert recorder(s) is recorder(s)
    assert recorder(s, fresh=True) is not recorder(s)
    assert recorder(s, script=lambda r, p: None) is not recorder(s)


class _NoSnapshotYet:
    update_snapshots = False

    def __call__(self, **kw):  # pragma: no cover - must not be reached
        raise AssertionError("compared although the snapshot file is missing")


def test_missing_snapshot_names_the_update_flag(tmp_path, tmp_path_factory):
    backend = DockerBackend()
    settings = Settings(snapshot_dir=tmp_path / "snaps")
    with pytest.raises(pytest.fail.Exception, match="--snapshot-update") as info:
        SnapshotTier().test_recording_matches_snapshot(
            backend, SCENARIOS["minimal-claude"], Recorder(backend, tmp_path_factory.mktemp),
            settings, _NoSnapshotYet())
    assert "minimal-claude.txt" in str(info.value)


@pytest.mark.parametrize("backend_name", ["docker", "smolmachines"])
def test_reference_snapshots_are_checked_in(backend_name):
    directory = Settings(rootdir=REPO).snapshot_path(backend_name)
    assert directory == REPO / "snapshots" / backend_name
    for name in SCENARIOS:
        text = snapshot_file(directory, name).read_text(encoding="utf-8")
        assert f"# backend: {backend_name}\n# scenario: {name}\n" in text
        # /tmp/bottle-<ident>/ is smolmachines' socket folder (issue 14): a fixed
        # convention (the scenarios' synthetic env has no XDG_RUNTIME_DIR), not a
        # volatile tmp path of the recording host.
        assert "SECRET" not in text and "/tmp/" not in text.replace("/tmp/bottle-", "")


# -- LAUNCH-READY judges the marked probe ---------------------------------------------

from bottle_api.runner import READY, DelegatingRunner, Runner  # noqa: E402
from conformance.tiers.snapshots.launch import LaunchSnapshots  # noqa: E402


class _BundleExecFirst(DelegatingRunner):
    """Runs a bundle-container `docker exec` before the first marked probe:
    the old rule ("the first docker exec of a launch is the readiness
    probe") would have judged that one."""

    def __init__(self, inner: Runner):
        super().__init__(inner)
        self.done = False

    def run(self, argv, **kw):
        if kw.get("purpose") == READY and not self.done:
            self.done = True
            self.inner.run(["docker", "exec", argv[-2].removesuffix("-agent") + "-pipelock",
                            "true"], check=False)
        return self.inner.run(argv, **kw)


class BundleProbeFirstDocker(DockerBackend):
    name = "bundle-probe-first"

    def launch(self, plan, runner, *, progress=lambda _: None):
        return super().launch(plan, _BundleExecFirst(runner), progress=progress)


class TestReadinessByMark(LaunchSnapshots):
    """Every LAUNCH-READY test passes although a bundle exec precedes the
    agent's probe: the suite follows purpose=READY, not the first exec."""

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return BundleProbeFirstDocker()

    @pytest.fixture(scope="class")
    @classmethod
    def bottle_recorder(cls, backend, tmp_path_factory):
        return Recorder(backend, tmp_path_factory.mktemp)


def test_the_bundle_exec_really_comes_first(tmp_path):
    rec = record(BundleProbeFirstDocker(), SCENARIOS["minimal-claude"], tmp=tmp_path)
    execs = [c for _, c in rec.indexed("launch") if c.kind == "run" and c.argv[1:2] == ("exec",)]
    assert execs[0].argv[-2].endswith("-pipelock") and execs[0].purpose is None
    assert execs[1].purpose == READY and execs[1].argv[-2].endswith("-agent")
