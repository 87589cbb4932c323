"""The `bottle-ref` CLI and the backend registry, driven with fake backends
addressed as ``module:factory`` (no engine, no real host credentials)."""

from __future__ import annotations

import io
import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import bottle_api.registry as registry
import bottle_ref.cli as cli
from bottle_api.registry import BackendNotFound, available_backends, get_backend
from bottle_api.backend import Backend, Bottle
from bottle_api.plan import REDACTED, EgressPlan, PipelockPlan, Plan
from bottle_ref.provision import ProvisionError
from bottle_api.runner import CommandError, Completed
from bottle_api.spec import SpecError

HERE = __name__  # importable name of this module, for "module:factory" paths
TOKEN = "sk-test-REAL-TOKEN-VALUE-0123456789"
EVENTS: list[tuple] = []


# -- fakes ---------------------------------------------------------------------
def fake_plan(spec, host, **extra) -> Plan:
    slots = tuple(f"BOTTLE_EGRESS_TOKEN_{i}" for i in range(len(spec.routes)))
    secrets = {s: host.env[r.token_env] for s, r in zip(slots, spec.routes) if r.token_env in host.env}
    missing = tuple(f"egress.routes[{i}].token_env" for i, r in enumerate(spec.routes)
                    if r.token_env not in host.env)
    return Plan(
        backend="fake", bottle=spec.name, agent=spec.agent,
        agent_image_ref=spec.image or "claude-bottle:latest", bundle_image_ref="bottle-bundle:latest",
        state_dir=str(host.state_root / spec.name), daemons=("egress", "pipelock"),
        first_hop="egress" if spec.routes else "pipelock",
        pipelock=PipelockPlan(config_yaml="version: 1\n"),
        egress=EgressPlan(routes=spec.routes, routes_yaml="routes: []\n", token_slots=slots,
                          upstream_proxy="http://pipelock:8888"),
        secrets=secrets, missing_tokens=missing, spec_source=spec.source,
        spec_lines=spec.lines, **extra)


class FakeBottle(Bottle):
    def __init__(self, plan: Plan, ident: str):
        self.plan, self.ident = plan, ident

    def agent_argv(self, argv=(), *, tty=True):
        EVENTS.append(("agent_argv", self.ident, tuple(argv), tty))
        # exits with the number of arguments it got, so the test sees them arrive
        return [sys.executable, "-c", "import sys; sys.exit(len(sys.argv) + 10)", *argv]

    def exec(self, cmd, *, user="node", env=None, timeout=None, check=False):
        EVENTS.append(("exec", self.ident, tuple(cmd), user))
        return Completed(tuple(cmd), 3, f"out: {' '.join(cmd)}\n", "err: guest said so\n")

    def close(self):
        EVENTS.append(("close", self.ident))

    def handle(self):
        return {"ident": self.ident}


class FakeBackend(Backend):
    name = "fake"

    def prepare(self, spec, host):
        return fake_plan(spec, host)

    def launch(self, plan, runner, *, progress=lambda _: None):
        if plan.missing_tokens:
            key = plan.missing_tokens[0]
            raise SpecError("host environment variable is not set", file=plan.spec_source,
                            key=key, line=plan.spec_lines.get(key))
        progress("bundle")
        progress("agent")
        ident = runner.unique(f"bottle-{plan.bottle}")
        EVENTS.append(("launch", ident, dict(plan.secrets)))
        return FakeBottle(plan, ident)

    def attach(self, plan, runner, handle):
        EVENTS.append(("attach", handle["ident"], plan.bottle))
        return FakeBottle(plan, handle["ident"])


class FailingBackend(FakeBackend):
    def launch(self, plan, runner, *, progress=lambda _: None):
        progress("bundle")
        raise CommandError(Completed(("docker", "run", "x"), 125, "", "first\nboom: no space left"))


class ProvisionFailingBackend(FakeBackend):
    def launch(self, plan, runner, *, progress=lambda _: None):
        raise ProvisionError("update-ca-certificates did not report '1 added'")


class TimeoutBackend(FakeBackend):
    def launch(self, plan, runner, *, progress=lambda _: None):
        raise TimeoutError("guest not ready after 30s")


class LeakyBackend(FakeBackend):
    """Copies the token into guest_env: a bug the CLI must not print."""

    def prepare(self, spec, host):
        plan = fake_plan(spec, host)
        return fake_plan(spec, host, guest_env={"LEAK": next(iter(plan.secrets.values()))})


class BadHandleBackend(FakeBackend):
    def launch(self, plan, runner, *, progress=lambda _: None):
        bottle = super().launch(plan, runner, progress=progress)
        bottle.handle = lambda: {"path": Path("/not/json")}
        return bottle


class NoAttachBackend(FakeBackend):
    attach = Backend.attach


def make_fake() -> Backend:
    return FakeBackend()


def make_wrong():
    return object()


FAKE_INSTANCE = FakeBackend()
NOT_A_BACKEND = 42


class AbstractBackend(Backend):
    name = "abstract"


# -- fixtures ------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fake_host(tmp_path, monkeypatch):
    """A throwaway HOME and state root, so from_os() reads nothing real."""
    EVENTS.clear()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("BOTTLE_BACKEND", raising=False)
    monkeypatch.delenv("FAKE_TOKEN", raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path


def registry_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "bottle-ref" / "bottles"


@pytest.fixture
def spec_file(tmp_path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text("name: demo\n"
                    "egress:\n"
                    "  routes:\n"
                    "    - {host: api.anthropic.com, token_env: FAKE_TOKEN}\n")
    return path


def use(monkeypatch, backend: str) -> None:
    monkeypatch.setenv("BOTTLE_BACKEND", f"{HERE}:{backend}")


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("bottle-ref: error: "), err
    return err


# -- validate / usage ----------------------------------------------------------
def test_validate_good_spec(spec_file, capsys):
    assert cli.main(["validate", str(spec_file)]) == 0
    assert capsys.readouterr() == ("ok: demo\n", "")


def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "usage:" in capsys.readouterr().err


# -- plan ------------------------------------------------------------------------
def test_plan_prints_json_with_secrets_redacted(spec_file, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    assert cli.main(["plan", "--backend", f"{HERE}:FakeBackend", str(spec_file)]) == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out and TOKEN not in err
    data = json.loads(out)
    assert data["bottle"] == "demo"
    assert data["secrets"] == {"BOTTLE_EGRESS_TOKEN_0": REDACTED}
    assert data["spec_source"] == str(spec_file)


def test_plan_refuses_a_plan_that_holds_a_token_outside_secrets(spec_file, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, "LeakyBackend")
    assert cli.main(["plan", str(spec_file)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and TOKEN not in err
    assert "token value outside plan.secrets" in one_error_line(err)


def test_default_backend_is_env_then_docker(spec_file, monkeypatch, capsys):
    asked = []

    def fake_get_backend(name):
        asked.append(name)
        return FakeBackend()

    monkeypatch.setattr(cli, "get_backend", fake_get_backend)
    assert cli.main(["plan", str(spec_file)]) == 0
    monkeypatch.setenv("BOTTLE_BACKEND", "smolmachines")
    assert cli.main(["plan", str(spec_file)]) == 0
    assert cli.main(["plan", "--backend", "other", str(spec_file)]) == 0
    assert asked == ["docker", "smolmachines", "other"]


def test_unknown_backend_exits_2_listing_names(spec_file, capsys):
    assert cli.main(["plan", "--backend", "no-such-backend", str(spec_file)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "unknown backend 'no-such-backend'" in err
    assert "docker" in err and "smolmachines" in err


def test_plan_with_bad_spec_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: demo\nsupervise: maybe\n")
    assert cli.main(["plan", "--backend", f"{HERE}:FakeBackend", str(bad)]) == 2
    assert f"{bad}:2: supervise: " in one_error_line(capsys.readouterr().err)


# -- up ----------------------------------------------------------------------------
def test_up_launches_and_records_state(spec_file, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, "FakeBackend")
    assert cli.main(["up", str(spec_file)]) == 0
    out, err = capsys.readouterr()
    assert out == "demo\n"
    assert err.splitlines() == ["==> bundle", "==> agent"]
    (launch,) = [e for e in EVENTS if e[0] == "launch"]
    assert launch[2] == {"BOTTLE_EGRESS_TOKEN_0": TOKEN}  # the launch got the real token...
    state_path = registry_dir(tmp_path) / "demo.json"
    text = state_path.read_text()
    assert TOKEN not in text  # ...the state file did not
    state = json.loads(text)
    assert state["backend"] == f"{HERE}:FakeBackend"
    assert state["spec"] == str(spec_file.absolute())
    assert state["handle"] == {"ident": launch[1]}
    assert launch[1].startswith("bottle-demo-")
    assert state_path.stat().st_mode & 0o077 == 0


def test_up_twice_is_refused(spec_file, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, "FakeBackend")
    assert cli.main(["up", str(spec_file)]) == 0
    capsys.readouterr()
    assert cli.main(["up", str(spec_file)]) == 1
    assert "already up" in one_error_line(capsys.readouterr().err)
    assert len([e for e in EVENTS if e[0] == "launch"]) == 1


@pytest.mark.parametrize("backend, phrase", [
    ("FailingBackend", "command failed (exit 125): docker run x: first; boom: no space left"),
    ("ProvisionFailingBackend", "did not report '1 added'"),
    ("TimeoutBackend", "guest not ready after 30s"),
])
def test_up_launch_failure_is_one_line_exit_1(spec_file, capsys, monkeypatch, tmp_path,
                                              backend, phrase):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, backend)
    assert cli.main(["up", str(spec_file)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    last = err.splitlines()[-1] + "\n"
    assert phrase in one_error_line(last)
    assert all(line.startswith("==> ") for line in err.splitlines()[:-1])
    assert not (registry_dir(tmp_path) / "demo.json").exists()


def test_up_missing_token_is_a_spec_error_naming_the_line(spec_file, capsys, monkeypatch):
    use(monkeypatch, "FakeBackend")  # FAKE_TOKEN unset
    assert cli.main(["up", str(spec_file)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert f"{spec_file}:4: egress.routes[0].token_env: host environment variable" in err


def test_up_with_bad_spec_exits_2(tmp_path, capsys, monkeypatch):
    use(monkeypatch, "FakeBackend")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: demo\nagent: gpt\n")
    assert cli.main(["up", str(bad)]) == 2
    assert f"{bad}:2: agent: unknown agent 'gpt'" in one_error_line(capsys.readouterr().err)
    assert EVENTS == []


def test_up_tears_down_when_the_handle_cannot_be_saved(spec_file, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, "BadHandleBackend")
    assert cli.main(["up", str(spec_file)]) == 1
    assert "not JSON" in one_error_line(capsys.readouterr().err.splitlines()[-1] + "\n")
    assert [e[0] for e in EVENTS] == ["launch", "close"]
    assert not (registry_dir(tmp_path) / "demo.json").exists()


# -- exec / down / ls ------------------------------------------------------------
@pytest.fixture
def running(spec_file, capsys, monkeypatch) -> str:
    """A fake bottle that `up` launched; returns its ident."""
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, "FakeBackend")
    assert cli.main(["up", str(spec_file)]) == 0
    capsys.readouterr()
    monkeypatch.delenv("BOTTLE_BACKEND")  # exec/down must use the recorded backend
    (launch,) = [e for e in EVENTS if e[0] == "launch"]
    EVENTS.clear()
    return launch[1]


def test_exec_relays_output_and_exit_code(running, capsys):
    assert cli.main(["exec", "demo", "--", "echo", "-n", "hi"]) == 3
    assert capsys.readouterr() == ("out: echo -n hi\n", "err: guest said so\n")
    assert EVENTS == [("attach", running, "demo"), ("exec", running, ("echo", "-n", "hi"), "node")]


def test_exec_without_command_is_a_usage_error(running, capsys):
    assert cli.main(["exec", "demo"]) == 2
    assert "exec needs a command" in one_error_line(capsys.readouterr().err)
    assert EVENTS == []


def test_exec_agent_runs_interactively_with_args(running, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a tty
    # The fake agent exits with len(sys.argv) + 10: argv[0] "-c" plus 2 args.
    assert cli.main(["exec", "--agent", "demo", "--", "--resume", "x"]) == 13
    assert ("agent_argv", running, ("--resume", "x"), False) in EVENTS


def test_exec_survives_an_edited_spec(running, spec_file, capsys):
    spec_file.write_text("name: renamed\nbogus: key\n")
    assert cli.main(["exec", "demo", "--", "true"]) == 3
    assert ("attach", running, "demo") in EVENTS


@pytest.mark.parametrize("name", ["ghost", "../demo", "Demo"])
def test_unknown_bottle_exits_2(running, capsys, name):
    for argv in (["exec", name, "--", "true"], ["down", name]):
        assert cli.main(argv) == 2
        err = one_error_line(capsys.readouterr().err)
        assert err == f"bottle-ref: error: no bottle named {name} (see `bottle-ref ls`)\n"
    assert EVENTS == []


def test_down_closes_and_forgets(running, capsys, tmp_path, spec_file):
    spec_file.unlink()  # down must not depend on the spec file still existing
    assert cli.main(["down", "demo"]) == 0
    assert capsys.readouterr().out == "demo\n"
    assert EVENTS == [("attach", running, "demo"), ("close", running)]
    assert not (registry_dir(tmp_path) / "demo.json").exists()
    assert cli.main(["down", "demo"]) == 2


def test_ls_lists_running_bottles(running, capsys, spec_file):
    assert cli.main(["ls"]) == 0
    assert capsys.readouterr().out == f"demo\t{HERE}:FakeBackend\t{spec_file.absolute()}\n"


def test_ls_with_nothing_up_prints_nothing(capsys):
    assert cli.main(["ls"]) == 0
    assert capsys.readouterr() == ("", "")


def test_backend_without_attach_is_exit_1(running, capsys, tmp_path):
    state_path = registry_dir(tmp_path) / "demo.json"
    state = json.loads(state_path.read_text())
    state["backend"] = f"{HERE}:NoAttachBackend"
    state_path.write_text(json.dumps(state))
    assert cli.main(["down", "demo"]) == 1
    assert "cannot attach" in one_error_line(capsys.readouterr().err)
    assert state_path.exists()


def test_corrupt_state_file_is_exit_1(running, capsys, tmp_path):
    (registry_dir(tmp_path) / "demo.json").write_text("{not json")
    assert cli.main(["exec", "demo", "--", "true"]) == 1
    assert "is corrupt" in one_error_line(capsys.readouterr().err)


# -- registry --------------------------------------------------------------------
def test_installed_backends_are_listed():
    assert {"docker", "smolmachines"} <= set(available_backends())
    assert available_backends() == sorted(available_backends())


@pytest.mark.parametrize("target", ["FakeBackend", "make_fake", "FAKE_INSTANCE"])
def test_import_path_accepts_class_factory_or_instance(target):
    backend = get_backend(f"{HERE}:{target}")
    assert isinstance(backend, FakeBackend)


@pytest.mark.parametrize("target, phrase", [
    ("no.such.module:X", "cannot import backend module 'no.such.module'"),
    (f"{HERE}:Missing", "has no attribute 'Missing'"),
    (f"{HERE}:make_wrong", "returned object, not a bottle_api.Backend"),
    (f"{HERE}:NOT_A_BACKEND", "is int, not a Backend class or factory"),
    (f"{HERE}:AbstractBackend", "cannot create backend"),
    (":X", "bad backend import path"),
    ("", "no backend given"),
])
def test_bad_backend_paths_raise_backend_not_found(target, phrase):
    with pytest.raises(BackendNotFound, match=None) as info:
        get_backend(target)
    assert isinstance(info.value, ValueError)
    assert phrase in str(info.value)


def fake_entry_points(**values):
    eps = [EntryPoint(name=n, value=v, group=registry.ENTRY_POINT_GROUP) for n, v in values.items()]
    return lambda group: [ep for ep in eps if ep.group == group]


def test_entry_point_names_resolve(monkeypatch):
    monkeypatch.setattr(registry, "entry_points",
                        fake_entry_points(fake=f"{HERE}:FakeBackend", other=f"{HERE}:make_fake"))
    assert available_backends() == ["fake", "other"]
    assert isinstance(get_backend("fake"), FakeBackend)
    assert isinstance(get_backend("other"), FakeBackend)
    with pytest.raises(BackendNotFound, match=r"unknown backend 'nope' \(available: fake, other;"):
        get_backend("nope")


def test_broken_entry_point_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(registry, "entry_points", fake_entry_points(broken="no_such_mod_x:B"))
    with pytest.raises(BackendNotFound, match=r"backend 'broken' is registered .* failed to load"):
        get_backend("broken")


class HostSettingBackend(FakeBackend):
    def prepare(self, spec, host):
        raise ValueError("BOTTLE_SMOL_CPUS='abc' must be a positive integer")


class PeekingBackend(FakeBackend):
    """Sees, mid-launch, what a concurrent `bottle-ref` would see."""

    def launch(self, plan, runner, *, progress=lambda _: None):
        EVENTS.append(("exec-during-launch", cli.main(["exec", plan.bottle, "--", "true"])))
        EVENTS.append(("up-during-launch", cli.main(["up", str(plan.spec_source)])))
        return super().launch(plan, runner, progress=progress)


def test_host_setting_a_backend_rejects_is_input_error(spec_file, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, "HostSettingBackend")
    assert cli.main(["plan", str(spec_file)]) == 2
    assert "BOTTLE_SMOL_CPUS='abc'" in one_error_line(capsys.readouterr().err)


def test_name_is_reserved_before_launch_starts(spec_file, capsys, monkeypatch, tmp_path):
    """A second `up` of the same spec while the first launches is refused
    (it would share the state dir), and `exec` says the bottle is starting."""
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    use(monkeypatch, "PeekingBackend")
    assert cli.main(["up", str(spec_file)]) == 0
    err = capsys.readouterr().err
    assert ("exec-during-launch", 2) in EVENTS and ("up-during-launch", 1) in EVENTS
    assert "still starting" in err and "already up" in err
    assert len([e for e in EVENTS if e[0] == "launch"]) == 1
    state = json.loads((registry_dir(tmp_path) / "demo.json").read_text())
    assert "starting" not in state and state["handle"]["ident"]


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("backend", ["docker", "smolmachines"])
@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_plan_works_for_every_example_and_prints_no_host_token(
        example, backend, capsys, monkeypatch, fake_host):
    """The issue's done-when: `bottle-ref plan --backend docker|smolmachines`
    for every file in examples/, with real-looking host credentials present."""
    from conformance.scenarios import fake_codex_auth

    monkeypatch.setenv("ANTHROPIC_TOKEN", "sk-ant-HOST-TOKEN-0123456789")
    codex = fake_host / "home" / ".codex"
    codex.mkdir(parents=True)
    (codex / "auth.json").write_text(fake_codex_auth("hosttok"))
    assert cli.main(["plan", "--backend", backend, str(EXAMPLES / example)]) == 0
    out = capsys.readouterr().out
    plan = json.loads(out)
    assert plan["backend"] == backend
    for secret in ("sk-ant-HOST-TOKEN-0123456789", "SECRET-access-hosttok",
                   "SECRET-id-hosttok", "rt-SECRET-hosttok"):
        assert secret not in out


# -- crash safety: journal, kill, signals, down --force, gc (issue 11) -------------
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from bottle_api.runner import RecordingRunner  # noqa: E402

RESOURCES = ("net-a", "ctr-b", "ctr-c")


def _log(event: str) -> None:
    """Events that must survive a killed process go to $H11_EVENTS."""
    path = os.environ.get("H11_EVENTS")
    if path:
        with open(path, "a") as f:
            f.write(event + "\n")


class JournalBottle(FakeBottle):
    def __init__(self, plan, ident, resources=()):
        super().__init__(plan, ident)
        self.resources = list(resources)

    def close(self):
        EVENTS.append(("close", self.ident, tuple(self.resources)))
        _log("close " + " ".join(self.resources))

    def handle(self):
        return {"ident": self.ident, "resources": list(self.resources)}


SLOW_CHILD = ("import os, sys, time; log = os.environ['H11_EVENTS'];"
              "open(log, 'a').write('child running\\n');"
              "time.sleep(float(sys.argv[1]));"
              "open(log, 'a').write('child done\\n')")


class JournalBackend(FakeBackend):
    """Journals each resource before "creating" it; env H11_DIE_AT=<name>
    SIGKILLs the process right after that resource's create, H11_SLOW
    makes each create a real child process of that many seconds, and
    H11_PARALLEL=<n> first runs n such children at once (an overlapped
    launch, as the docker backend's `Overlap` does); H11_MIXED first runs a
    0.5 s child in a thread beside a 60 s one."""

    def launch(self, plan, runner, *, progress=lambda _: None, journal=None):
        ident = runner.unique(f"bottle-{plan.bottle}")
        bottle = JournalBottle(plan, ident)
        journal(bottle.handle())
        try:
            if os.environ.get("H11_MIXED"):  # a short command beside a hanging one
                with ThreadPoolExecutor(1) as pool:
                    short = pool.submit(runner.run, [sys.executable, "-c", SLOW_CHILD, "0.5"])
                    runner.run([sys.executable, "-c", SLOW_CHILD, "60"])
                    short.result()
            if os.environ.get("H11_PARALLEL"):
                n = int(os.environ["H11_PARALLEL"])
                assert runner.concurrent, "up's runner does not allow an overlapped launch"
                with ThreadPoolExecutor(n) as pool:
                    list(pool.map(lambda _: runner.run([sys.executable, "-c", SLOW_CHILD,
                                                        os.environ["H11_SLOW"]]), range(n)))
            for name in RESOURCES:
                bottle.resources.append(name)
                journal(bottle.handle())
                state = json.loads(Path(os.environ["H11_STATE"]).read_text()) \
                    if os.environ.get("H11_STATE") else None
                EVENTS.append(("create", name, state and state["journal"]["resources"]))
                if os.environ.get("H11_SLOW"):
                    runner.run([sys.executable, "-c", SLOW_CHILD, os.environ["H11_SLOW"]])
                _log(f"created {name}")
                if os.environ.get("H11_DIE_AT") == name:
                    os.kill(os.getpid(), signal.SIGKILL)
        except BaseException:
            bottle.close()
            raise
        return bottle

    def attach(self, plan, runner, handle):
        EVENTS.append(("attach", handle["ident"], plan.bottle))
        return JournalBottle(plan, handle["ident"], handle.get("resources", ()))


def _state(tmp_path: Path, name: str = "demo") -> dict:
    return json.loads((registry_dir(tmp_path) / f"{name}.json").read_text())


def test_every_resource_is_journaled_before_it_is_created(spec_file, capsys, monkeypatch,
                                                          tmp_path):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    monkeypatch.setenv("H11_STATE", str(registry_dir(tmp_path) / "demo.json"))
    use(monkeypatch, "JournalBackend")
    assert cli.main(["up", str(spec_file)]) == 0
    creates = [e for e in EVENTS if e[0] == "create"]
    # At each create, the state file on disk already named that resource.
    assert [(name, journal[-1]) for _, name, journal in creates] == [(r, r) for r in RESOURCES]
    state = _state(tmp_path)
    assert state["handle"]["resources"] == list(RESOURCES)
    assert not {"starting", "pid", "journal"} & state.keys()  # a finished up keeps only the handle
    assert TOKEN not in json.dumps(state)


def _cli_proc(env_extra: dict, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "BOTTLE_BACKEND": f"{HERE}:JournalBackend", **env_extra,
           "PYTHONPATH": str(Path(__file__).parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c",
                             "import sys, bottle_ref.cli as c; sys.exit(c.main(sys.argv[1:]))",
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


HERE_MODULE = Path(__file__).stem


@pytest.mark.parametrize("die_at", RESOURCES)
def test_down_after_up_was_killed_removes_what_the_journal_names(spec_file, capsys, monkeypatch,
                                                                 tmp_path, die_at):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    events = tmp_path / "events"
    proc = _cli_proc({"H11_DIE_AT": die_at, "H11_EVENTS": str(events)}, "up", str(spec_file))
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = _state(tmp_path)
    made = list(RESOURCES[:RESOURCES.index(die_at) + 1])
    assert state["starting"] and state["journal"]["resources"] == made
    # exec explains; down (the pid is dead) removes by the journal.
    assert cli.main(["exec", "demo", "--", "true"]) == 2
    assert "never finished starting" in one_error_line(capsys.readouterr().err)
    assert cli.main(["down", "demo"]) == 0
    assert ("close", state["journal"]["ident"], tuple(made)) in EVENTS
    assert not (registry_dir(tmp_path) / "demo.json").exists()


def _starting_state(tmp_path: Path, spec_file: Path, pid: int, name: str = "demo",
                    backend: str = f"{HERE}:JournalBackend", journal=None) -> Path:
    path = registry_dir(tmp_path) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = spec_file.read_text().replace("name: demo", f"name: {name}")
    path.write_text(json.dumps({
        "version": 1, "name": name, "backend": backend, "spec": str(spec_file),
        "base_dir": str(spec_file.parent), "spec_text": text, "starting": True,
        "pid": pid, "pid_start": cli._proc_start(pid),
        "journal": journal or {"ident": f"bottle-{name}-dead01", "resources": ["net-a"]}}))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_down_refuses_a_live_up_unless_forced(spec_file, capsys, tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = _starting_state(tmp_path, spec_file, live.pid)
        assert cli.main(["down", "demo"]) == 2
        assert "still starting" in one_error_line(capsys.readouterr().err)
        assert path.exists() and not [e for e in EVENTS if e[0] == "close"]
        assert cli.main(["gc"]) == 0 and path.exists()  # gc leaves live launches alone
        # --force stops the live `up` (SIGTERM, bounded wait), then removes by journal.
        assert cli.main(["down", "--force", "demo"]) == 0
        assert live.wait(timeout=5) == -signal.SIGTERM
        assert ("close", "bottle-demo-dead01", ("net-a",)) in EVENTS and not path.exists()
    finally:
        live.kill()


@pytest.mark.parametrize("command", [["down", "demo"], ["gc"]])
def test_forgetting_a_dead_launch_removes_the_tmp_its_killed_write_left(spec_file, capsys,
                                                                        tmp_path, command):
    """An `up` SIGKILLed inside `_write_state`, after writing ``demo.json.tmp``
    and before renaming it, leaves that file beside its entry (CI's fault
    engine hit it once, killing at call 16). Whoever forgets the entry
    removes it too: nothing of the bottle is left."""
    path = _starting_state(tmp_path, spec_file, _dead_pid())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(path.read_text()[:20])  # a half-written journal
    assert cli.main(command) == 0
    assert not path.exists() and not tmp.exists()
    assert ("close", "bottle-demo-dead01", ("net-a",)) in EVENTS


def test_a_reused_pid_does_not_count_as_alive(spec_file, tmp_path):
    path = _starting_state(tmp_path, spec_file, os.getpid())
    state = json.loads(path.read_text())
    assert cli._alive(state)
    state["pid_start"] = "1"  # our pid, but a process that started at another time
    assert not cli._alive(state)


def test_gc_removes_only_bottles_whose_up_died(spec_file, capsys, tmp_path):
    dead = _starting_state(tmp_path, spec_file, _dead_pid(), name="gone")
    alive = _starting_state(tmp_path, spec_file, os.getpid(), name="live")
    assert cli.main(["gc"]) == 0
    assert capsys.readouterr().out == "gone\n"
    assert not dead.exists() and alive.exists()
    assert [e for e in EVENTS if e[0] == "close"] == [("close", "bottle-gone-dead01", ("net-a",))]


def test_down_of_a_dead_docker_launch_removes_by_journal_and_label(spec_file, capsys,
                                                                   monkeypatch, tmp_path):
    """The real docker backend: journal names, then the label sweep finds
    a container created after the journal's last write."""
    ident = "bottle-demo-abc123"
    _starting_state(tmp_path, spec_file, _dead_pid(), backend="docker", journal={
        "ident": ident, "containers": [f"{ident}-pipelock"],
        "networks": [f"{ident}-agent", f"{ident}-bundle", f"{ident}-out"]})
    runner = RecordingRunner()
    runner.reply("docker", "ps", "-aq", "--filter", f"label=bottle-ref.bottle={ident}",
                 stdout="f00dcafe\n", times=1)  # gone once removed (down re-lists to check)
    runner.reply("docker", "network", "ls", "-q", "--filter",
                 f"label=bottle-ref.bottle={ident}", stdout="")
    monkeypatch.setattr(cli, "_runner", lambda args: runner)
    assert cli.main(["down", "demo"]) == 0
    argvs = runner.argvs
    assert ("docker", "rm", "-f", f"{ident}-pipelock") in argvs
    assert ("docker", "network", "rm", f"{ident}-out", f"{ident}-bundle", f"{ident}-agent") in argvs
    assert ("docker", "rm", "-f", "f00dcafe") in argvs  # found by label, not in the journal
    assert argvs.index(("docker", "rm", "-f", "f00dcafe")) > argvs.index(
        ("docker", "rm", "-f", f"{ident}-pipelock"))
    assert not (registry_dir(tmp_path) / "demo.json").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_up_lets_the_command_finish_then_cleans_up(spec_file, tmp_path, sig,
                                                                code):
    """The signal lands while a create runs (a real child): the create
    completes and is journaled, then launch tears everything down."""
    events = tmp_path / "events"
    # the create runs 0.5 s: ample for the signal to land while it runs
    # (it is sent as soon as the child says it started)
    proc = _cli_proc({"FAKE_TOKEN": TOKEN, "H11_SLOW": "0.5", "H11_EVENTS": str(events)},
                     "up", str(spec_file))
    state_path = registry_dir(tmp_path) / "demo.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # bounded poll: the first create is running
        if events.exists() and "child running" in events.read_text():
            break
        time.sleep(0.02)
    else:
        pytest.fail("up never started its first create")
    assert json.loads(state_path.read_text())["journal"]["resources"] == ["net-a"]
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert out == ""
    lines = events.read_text().splitlines()
    # The in-flight create ran to its end after the signal (not killed
    # midway), then the interrupt was raised and close removed what it made.
    assert lines == ["child running", "child done", "close net-a"]
    assert f"{signal.Signals(sig).name}: cleaning up" in err
    assert "Traceback" not in err
    assert not state_path.exists()


def test_exec_into_a_stopped_bottle_is_one_error_line(running, capsys, monkeypatch):
    monkeypatch.setattr(FakeBottle, "exec", lambda self, cmd, **kw: Completed(
        tuple(cmd), 1, "", f"Error response from daemon: Container {self.ident}-agent is "
                           "not running\n"))
    assert cli.main(["exec", "demo", "--", "id"]) == 1
    err = one_error_line(capsys.readouterr().err)
    assert "bottle demo is not running" in err and "down demo" in err


def test_a_guest_command_failing_is_not_mistaken_for_a_stopped_bottle(running, capsys):
    assert cli.main(["exec", "demo", "--", "false"]) == 3
    assert capsys.readouterr().err == "err: guest said so\n"


def test_closed_pipe_is_quiet(tmp_path, spec_file):
    """`bottle-ref plan x | head -c 10`: the reader is gone before we write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run(
        [sys.executable, "-m", "bottle_ref.cli", "plan", "--backend", "docker", str(spec_file)],
        stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
        env={**os.environ, "FAKE_TOKEN": TOKEN})
    os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141


def test_down_of_a_dead_smolmachines_launch_removes_everything_named_by_its_ident(
        spec_file, capsys, monkeypatch, tmp_path):
    """smolmachines journals its ident before anything exists; close derives
    the machine, bundle container and network from it."""
    ident = "bottle-demo-def456"
    _starting_state(tmp_path, spec_file, _dead_pid(), backend="smolmachines",
                    journal={"backend": "smolmachines", "ident": ident, "machine": ident})
    runner = RecordingRunner()
    monkeypatch.setattr(cli, "_runner", lambda args: runner)
    assert cli.main(["ls"]) == 0
    assert "its up died" in capsys.readouterr().out
    assert cli.main(["down", "demo"]) == 0
    argvs = runner.argvs
    assert any(a[:3] == ("smolvm", "machine", "delete") and ident in a for a in argvs), argvs
    assert ("docker", "rm", "-f", f"{ident}-bundle") in argvs
    assert ("docker", "network", "rm", f"{ident}-net") in argvs
    assert ("docker", "ps", "-aq", "--filter", f"label=bottle-ref.bottle={ident}") in argvs
    assert not (registry_dir(tmp_path) / "demo.json").exists()


# -- issue 17: down keeps state until it has proof -------------------------------------
ENGINE_DOWN = ("Cannot connect to the Docker daemon at unix:///nonexistent.sock. "
               "Is the docker daemon running?")


def _docker_state(tmp_path: Path, spec_file: Path, *, starting: bool) -> tuple[Path, str]:
    ident = "bottle-demo-abc123"
    handle = {"ident": ident, "containers": [f"{ident}-pipelock", f"{ident}-egress"],
              "networks": [f"{ident}-agent", f"{ident}-bundle", f"{ident}-out"]}
    if starting:
        return _starting_state(tmp_path, spec_file, _dead_pid(), backend="docker",
                               journal=handle), ident
    path = registry_dir(tmp_path) / "demo.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "name": "demo", "backend": "docker",
                                "spec": str(spec_file), "base_dir": str(spec_file.parent),
                                "spec_text": spec_file.read_text(), "handle": handle}))
    return path, ident


@pytest.mark.parametrize("starting, force", [(False, False), (False, True), (True, False),
                                             (True, True)])
def test_down_with_an_unreachable_engine_keeps_the_bottle(spec_file, capsys, monkeypatch,
                                                          tmp_path, starting, force):
    """An engine that cannot answer is no proof the bottle is gone: down
    exits 1 naming what may remain, and keeps the state file so a later
    down (engine back) finds it."""
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    path, ident = _docker_state(tmp_path, spec_file, starting=starting)
    before = path.read_text()
    runner = RecordingRunner().reply("docker", returncode=1, stderr=ENGINE_DOWN)
    monkeypatch.setattr(cli, "_runner", lambda args: runner)
    assert cli.main(["down", *(["--force"] if force else []), "demo"]) == 1
    err = one_error_line(capsys.readouterr().err)
    assert f"{ident}-egress" in err and f"{ident}-out" in err
    assert path.read_text() == before
    # The engine is back: a later down removes it and forgets it.
    runner.replies.clear()
    assert cli.main(["down", "demo"]) == 0 and not path.exists()


def test_gc_keeps_a_dead_launch_the_engine_cannot_account_for(spec_file, capsys, monkeypatch,
                                                              tmp_path):
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    path, ident = _docker_state(tmp_path, spec_file, starting=True)
    runner = RecordingRunner().reply("docker", returncode=1, stderr=ENGINE_DOWN)
    monkeypatch.setattr(cli, "_runner", lambda args: runner)
    assert cli.main(["gc"]) == 1
    assert path.exists() and ident in capsys.readouterr().err


def test_up_with_an_unreachable_engine_says_so(spec_file, capsys, monkeypatch, tmp_path):
    """Not "image not found": the engine did not answer. Nothing was
    created, so nothing is kept."""
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    runner = RecordingRunner().reply("docker", returncode=1, stderr=ENGINE_DOWN)
    monkeypatch.setattr(cli, "_runner", lambda args: runner)
    assert cli.main(["up", "--backend", "docker", str(spec_file)]) == 1
    err = one_error_line(capsys.readouterr().err.split("==> ")[-1].split("\n", 1)[-1])
    assert "unreachable" in err and "Cannot connect" in err and "not found" not in err
    assert not (registry_dir(tmp_path) / "demo.json").exists()


# -- issue 17: every bad backend import path is one line --------------------------------
BAD_MODULES = {
    "i17_raises_at_import": "raise KeyError('boom at import')\n",
    "i17_syntax_error": "def f(:\n",
    "i17_factory_raises": "def make():\n    raise LookupError('no engine configured')\n",
    "i17_attr_raises": "def __getattr__(name):\n    raise KeyError(name)\n",
}


@pytest.mark.parametrize("target, phrase", [
    ("i17_raises_at_import:make", "cannot import backend module 'i17_raises_at_import'"),
    ("i17_syntax_error:make", "cannot import backend module 'i17_syntax_error'"),
    ("i17_factory_raises:make", "cannot create backend 'i17_factory_raises:make'"),
    ("i17_factory_raises:nothing", "has no attribute 'nothing'"),
    ("i17_attr_raises:make", "has no attribute 'make'"),
])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_backend_import_path_that_fails_is_one_line(spec_file, capsys, monkeypatch, tmp_path,
                                                     target, phrase, how):
    for name, text in BAD_MODULES.items():
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    if how == "env":
        monkeypatch.setenv("BOTTLE_BACKEND", target)
        argv = ["plan", str(spec_file)]
    else:
        argv = ["plan", "--backend", target, str(spec_file)]
    assert cli.main(argv) == 2
    assert phrase in one_error_line(capsys.readouterr().err)


def test_gc_dry_run_names_what_it_would_remove_and_touches_nothing(spec_file, capsys, tmp_path):
    dead = _starting_state(tmp_path, spec_file, _dead_pid(), name="gone")
    alive = _starting_state(tmp_path, spec_file, os.getpid(), name="live")
    before = dead.read_text()
    assert cli.main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out == "would remove gone\n"
    assert dead.read_text() == before and alive.exists()
    assert not [e for e in EVENTS if e[0] in ("close", "attach")]


def test_gc_leaves_entries_it_does_not_own(spec_file, capsys, tmp_path, monkeypatch):
    """Only this user's own state files: a symlinked entry (someone else's
    file planted in the registry) or one owned by another uid is skipped."""
    dead = _starting_state(tmp_path, spec_file, _dead_pid(), name="gone")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(dead.read_text().replace("gone", "other"))
    link = dead.with_name("other.json")
    link.symlink_to(elsewhere)
    real_getuid, owner = os.getuid, os.stat(dead).st_uid
    monkeypatch.setattr(cli.os, "getuid", lambda: owner + 1)
    assert cli.main(["gc"]) == 0
    assert dead.exists() and link.exists() and elsewhere.exists()
    assert not [e for e in EVENTS if e[0] == "close"]
    monkeypatch.setattr(cli.os, "getuid", real_getuid)
    assert cli.main(["gc"]) == 0
    assert capsys.readouterr().out.endswith("gone\n")
    assert link.exists() and elsewhere.exists() and not dead.exists()


# -- issue 17: the state dir (CA keys) is a resource; Ctrl-C to the process group ---------
class StateDirBottle(JournalBottle):
    def __init__(self, plan, ident, runner, resources=()):
        super().__init__(plan, ident, resources)
        self.runner = runner

    def close(self):
        self.runner.run(["true"])  # a teardown command, like `docker rm`
        super().close()
        import shutil
        shutil.rmtree(self.plan.state_dir, ignore_errors=True)
        _log("state dir removed")


class StateDirBackend(FakeBackend):
    """Writes a CA key into plan.state_dir, then runs a slow create (a real
    child, in the process group, that a group SIGINT kills)."""

    def launch(self, plan, runner, *, progress=lambda _: None, journal=None):
        bottle = StateDirBottle(plan, runner.unique(f"bottle-{plan.bottle}"), runner)
        journal(bottle.handle())
        try:
            Path(plan.state_dir).mkdir(parents=True, exist_ok=True)
            (Path(plan.state_dir) / "ca-key.pem").write_text("KEY")
            bottle.resources.append("net-a")
            journal(bottle.handle())
            runner.run([sys.executable, "-c",
                        "import os, time; open(os.environ['H11_EVENTS'], 'a')"
                        ".write('child running\\n'); time.sleep(30)"])
        except BaseException:
            bottle.close()
            raise
        return bottle

    def attach(self, plan, runner, handle):
        return StateDirBottle(plan, handle["ident"], runner, handle.get("resources", ()))


def test_ctrl_c_to_the_process_group_during_up_leaves_no_state(spec_file, tmp_path):
    """SIGINT to the whole group (a terminal's Ctrl-C) kills the in-flight
    child too; its failure must not let the pending interrupt abort the
    teardown half-way: exit 130, the state dir (CA key) and file are gone."""
    events = tmp_path / "events"
    env = {"FAKE_TOKEN": TOKEN, "H11_EVENTS": str(events),
           "BOTTLE_BACKEND": f"{HERE}:StateDirBackend"}
    proc = _cli_proc(env, "up", str(spec_file), start_new_session=True)
    proc_env_backend = env["BOTTLE_BACKEND"]
    assert proc_env_backend
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if events.exists() and "child running" in events.read_text():
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("up never started its slow create")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    state_root = tmp_path / "state" / "bottle-ref"
    assert not (registry_dir(tmp_path) / "demo.json").exists()
    assert not (state_root / "demo").exists(), "the state dir (with the CA key) was left behind"
    assert "state dir removed" in events.read_text()


def test_a_signal_pending_when_a_command_fails_is_raised_at_once():
    """The child died of the signal (check=True makes that a CommandError):
    the interrupt is raised then, so teardown runs with signals settled."""
    guard = cli._SignalGuard()

    class Dying(RecordingRunner):
        def run(self, argv, **kw):
            guard.pending = signal.SIGINT
            return super().run(argv, **kw)

    runner = cli._GuardedRunner(Dying().reply("docker", returncode=130), guard)
    with pytest.raises(cli.Interrupted):
        runner.run(["docker", "create", "x"])
    assert guard.raised


def test_the_state_dir_is_journaled_and_down_removes_it(spec_file, capsys, monkeypatch,
                                                        tmp_path):
    """up records the plan's state dir before launch; after a kill, down
    removes it like any journaled resource (even when the backend's close
    does not), and never anything outside the state root."""
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    events = tmp_path / "events"
    proc = _cli_proc({"H11_DIE_AT": "net-a", "H11_EVENTS": str(events)}, "up", str(spec_file))
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = _state(tmp_path)
    state_dir = Path(state["state_dir"])
    assert state_dir == tmp_path / "state" / "bottle-ref" / "demo"
    state_dir.mkdir(parents=True)
    (state_dir / "ca-key.pem").write_text("KEY")
    assert cli.main(["down", "demo"]) == 0
    assert not state_dir.exists()


def test_a_state_dir_outside_the_state_root_is_never_removed(spec_file, capsys, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    path = _starting_state(tmp_path, spec_file, _dead_pid())
    state = json.loads(path.read_text())
    for bad in (str(outside), str(tmp_path / "state" / "bottle-ref"),
                str(registry_dir(tmp_path))):
        state["state_dir"] = bad
        path.write_text(json.dumps(state))
        assert cli.main(["down", "demo"]) == 0
        assert Path(bad).is_dir(), bad
        _starting_state(tmp_path, spec_file, _dead_pid())
    assert outside.exists()


def test_one_sigterm_during_a_hanging_command_is_honoured(spec_file, tmp_path):
    """The command in flight hangs (a `docker create` that never answers):
    the first SIGTERM waits for it only a short grace, then kills it and
    tears down; a second signal is not needed."""
    events = tmp_path / "events"
    proc = _cli_proc({"FAKE_TOKEN": TOKEN, "H11_SLOW": "60", "H11_EVENTS": str(events),
                      "BOTTLE_REF_SIGNAL_GRACE": "0.2"}, "up", str(spec_file))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if events.exists() and "child running" in events.read_text():
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("up never started its first create")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert time.monotonic() - t0 < 10
    lines = events.read_text().splitlines()
    assert "child done" not in lines and lines[-1] == "close net-a"
    assert not (registry_dir(tmp_path) / "demo.json").exists()


# -- issue 17: a kill while a create is in flight ------------------------------------------
def test_down_after_a_kill_waits_for_the_create_in_flight(spec_file, capsys, tmp_path,
                                                          monkeypatch):
    """SIGKILL `up` while its (slow) create runs, then `down` at once: the
    orphaned create finishes after up died, so down must wait for it (its
    pid is journaled) before removing, or the object appears after down."""
    events = tmp_path / "events"
    # 0.8 s: the kill, and down's start in this process, come well within it
    proc = _cli_proc({"FAKE_TOKEN": TOKEN, "H11_SLOW": "0.8", "H11_EVENTS": str(events)},
                     "up", str(spec_file))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if events.exists() and "child running" in events.read_text():
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("up never started its first create")
    proc.kill()
    proc.communicate(timeout=30)
    state = _state(tmp_path)
    assert [e["pid"] > 0 for e in state["inflight"]] == [True]
    monkeypatch.setenv("H11_EVENTS", str(events))  # our close() logs there too
    assert cli.main(["down", "demo"]) == 0
    lines = events.read_text().splitlines()
    assert "child done" in lines and lines.index("child done") < lines.index("close net-a"), lines


# -- issue 16: guest output is stripped of terminal control sequences -----------------

HOSTILE = ("a\x1b]52;c;ZXZpbA==\x07b"          # OSC 52: write the operator's clipboard
           "\x1b]0;owned\x1b\\c"                # OSC 0: window title, ST-terminated
           "\x1b[2J\x1b[1;1Hd"                  # CSI: clear screen, move cursor
           "\x1bPq#0;2;0;0;0\x1b\\e"            # DCS (sixel)
           "\x1b_apc\x9cf"                      # APC, 8-bit ST
           "\x9b31mg\x9d8;;http://x\x07h"       # 8-bit CSI and OSC
           "\x1bci\x07\x08\x00j\r\nk\rl\tm\x7fn é✓\n")


def test_exec_strips_control_sequences_from_guest_output(running, capsys, monkeypatch):
    monkeypatch.setattr(FakeBottle, "exec", lambda self, cmd, **kw: Completed(
        tuple(cmd), 0, HOSTILE, "warn\x1b]52;c;eA==\x07ing\n"))
    assert cli.main(["exec", "demo", "--", "cat", "x"]) == 0
    out, err = capsys.readouterr()
    assert out == "abcdefghij\nkl\tmn é✓\n"
    assert err == "warning\n"


def test_strip_controls_keeps_plain_text_and_drops_an_unterminated_osc():
    from bottle_ref.termsafe import strip_controls

    text = "line 1\n\tindented — ünïcode ✓\n"
    assert strip_controls(text) == text
    assert strip_controls("ok\x1b]52;c;never-terminated") == "ok"
    assert strip_controls("\x1b[") == "" and strip_controls("\x1b") == ""


def _wait_for_events(events: Path, line: str, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if events.exists() and events.read_text().splitlines().count(line) >= count:
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"never saw {count} x {line!r}")


def test_an_overlapped_launch_journals_every_command_in_flight(spec_file, tmp_path):
    """`up` lets the backend overlap its commands (the docker backend starts
    its daemons beside the agent's provisioning), so the journal names every
    one in flight; and one SIGTERM still ends them all after the grace."""
    events = tmp_path / "events"
    proc = _cli_proc({"FAKE_TOKEN": TOKEN, "H11_SLOW": "60", "H11_PARALLEL": "2",
                      "H11_EVENTS": str(events), "BOTTLE_REF_SIGNAL_GRACE": "0.2"},
                     "up", str(spec_file))
    _wait_for_events(events, "child running", 2, proc)
    deadline = time.monotonic() + 10
    while len(_state(tmp_path).get("inflight") or []) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = [e["pid"] for e in _state(tmp_path)["inflight"]]
    assert len(set(pids)) == 2 and all(p > 0 for p in pids), pids
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert time.monotonic() - t0 < 10, "the hanging commands were not killed after the grace"
    assert "child done" not in events.read_text().splitlines()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (registry_dir(tmp_path) / "demo.json").exists()


def test_down_waits_for_each_command_a_dead_up_left_running(spec_file, tmp_path, capsys):
    """The journal of an older `up` holds one command (a dict), this one's a
    list: `down` waits for every one still running before it sweeps."""
    def entry(child):
        return {"pid": child.pid, "pid_start": cli._proc_start(child.pid)}

    started = []
    try:
        for shape in ("dict", "list"):
            children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.6)"])
                        for _ in range(1 if shape == "dict" else 2)]
            started += children
            path = _starting_state(tmp_path, spec_file, _dead_pid())
            state = json.loads(path.read_text())
            state["inflight"] = (entry(children[0]) if shape == "dict"
                                 else [entry(c) for c in children])
            path.write_text(json.dumps(state))
            assert cli.main(["down", "demo"]) == 0
            assert all(c.poll() is not None for c in children), (
                f"down swept before a journaled command ({shape}) ended")
    finally:
        for c in started:
            c.kill()
            c.wait()


def test_an_interrupt_is_the_exit_whichever_thread_meets_it_first(spec_file, tmp_path):
    """SIGTERM while a short command runs in a launch thread beside a
    hanging one in the main thread: the short one returns first (the
    interrupt is raised there), then the grace kills the hanging one, whose
    failure must not stand in for the interrupt: exit 143, nothing left."""
    events = tmp_path / "events"
    proc = _cli_proc({"FAKE_TOKEN": TOKEN, "H11_MIXED": "1", "H11_EVENTS": str(events),
                      "BOTTLE_REF_SIGNAL_GRACE": "2"}, "up", str(spec_file))
    _wait_for_events(events, "child running", 2, proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert time.monotonic() - t0 < 10
    assert events.read_text().splitlines().count("child done") == 1  # the short one only
    assert not (registry_dir(tmp_path) / "demo.json").exists()
