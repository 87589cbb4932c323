"""The suite cannot hang or crash on a backend: the per-call watchdog, a
backend whose properties raise, and a report path that cannot be written."""

from __future__ import annotations

import errno
import json
import signal
import time
from pathlib import Path

import pytest

from bottle_api.runner import RecordingRunner
from conformance import watchdog
from conformance.outcomes import State
from conformance.report import Report

pytest_plugins = ["pytester"]

BACKENDS = '''
import threading
import time

from bottle_api.backend import Backend, Bottle
from bottle_api.plan import EgressPlan, PipelockPlan, Plan


class QuietBottle(Bottle):
    def __init__(self, plan):
        self.plan = plan

    def agent_argv(self, argv=(), *, tty=True):
        return ["x", "--", "claude", *argv]

    def exec(self, cmd, *, user="node", env=None, timeout=None, check=False):
        threading.Event().wait()  # blocks forever

    def close(self):
        pass


class Hangs(Backend):
    name = "hangs"
    version = "1"
    capabilities = frozenset({"codex"})

    def prepare(self, spec, host):
        return Plan(
            backend=self.name, bottle=spec.name, agent=spec.agent,
            agent_image_ref="img", bundle_image_ref="bundle", state_dir="/nonexistent",
            daemons=("egress", "pipelock"), first_hop="pipelock",
            pipelock=PipelockPlan(config_yaml=""),
            egress=EgressPlan(routes=(), routes_yaml="", token_slots=(),
                              upstream_proxy="http://pipelock:8888"),
        )

    def launch(self, plan, runner, *, progress=print):
        try:
            time.sleep(3600)
        except Exception:
            return None  # an `except Exception` must not swallow the watchdog
        finally:
            open("cleaned-up", "w").close()
        return QuietBottle(plan)


class HangsInExec(Hangs):
    name = "hangs-in-exec"

    def launch(self, plan, runner, *, progress=print):
        return QuietBottle(plan)


class BadName(Hangs):
    @property
    def name(self):
        raise RuntimeError("name lookup exploded")


class BadCaps(Hangs):
    @property
    def capabilities(self):
        raise KeyError("caps")
'''

TESTS = '''
from bottle_api.spec import parse_spec
from bottle_api.runner import RecordingRunner
from conformance.markers import clause
from conformance.recording import host_context


def _plan(backend):
    return backend.prepare(parse_spec("name: b\\nagent: claude\\n"), None)


@clause("LAUNCH-READY")
def test_launch(backend):
    backend.launch(_plan(backend), RecordingRunner())


@clause("PROV-CA")
def test_exec(backend):
    backend.launch(_plan(backend), RecordingRunner()).exec(["echo"])


@clause("PLAN-HOP")
def test_after(backend):
    assert backend.version == "1"
'''


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("BOTTLE_BACKEND", "BOTTLE_REPORT", "BOTTLE_CALL_TIMEOUT", "BOTTLE_CERTIFY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def suite(pytester, monkeypatch):
    pytester.makepyfile(hangbackends=BACKENDS)
    pytester.makepyfile(test_calls=TESTS.replace(
        "from conformance.recording import host_context\n", ""))
    pytester.syspathinsert()
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    return pytester


def _states(path) -> dict[str, State]:
    return {r.clause_id: r.state for r in Report.from_json(path.read_text()).results}


def _reasons(path) -> dict[str, str]:
    return {r.clause_id: r.reason for r in Report.from_json(path.read_text()).results}


def test_a_launch_that_never_returns_is_error_and_the_run_finishes(suite):
    t0 = time.monotonic()
    # 0.5 s, as the exec test below: two of the calls (test_launch, test_exec)
    # hang until the deadline
    result = suite.runpytest("--bottle-backend=hangbackends:Hangs", "--bottle-call-timeout=0.5",
                             "--bottle-report=r.json", "-p", "no:randomly")
    assert time.monotonic() - t0 < 30
    states = _states(suite.path / "r.json")
    assert states["LAUNCH-READY"] == State.ERROR
    assert states["PLAN-HOP"] == State.PASSED  # the run went on
    reason = _reasons(suite.path / "r.json")["LAUNCH-READY"]
    assert "Hangs.launch() did not return within 0.5 s (--bottle-call-timeout)" in reason
    assert "INTERNALERROR" not in result.stdout.str()
    assert (suite.path / "cleaned-up").exists(), "the backend's own finally clean-up did not run"


def test_an_exec_that_blocks_on_a_lock_is_error(suite):
    suite.runpytest("--bottle-backend=hangbackends:HangsInExec", "--bottle-call-timeout=0.5",
                    "--bottle-report=r.json", "-k", "exec or after")
    states = _states(suite.path / "r.json")
    assert states == {"PROV-CA": State.ERROR, "PLAN-HOP": State.PASSED}
    assert "QuietBottle.exec() did not return within 0.5 s" in _reasons(
        suite.path / "r.json")["PROV-CA"]


@pytest.mark.parametrize("factory,phrase", [
    ("BadName", "backend property 'name' raised RuntimeError: name lookup exploded"),
    ("BadCaps", "backend property 'capabilities' raised KeyError"),
])
def test_a_backend_property_that_raises_is_error_with_the_reason(suite, factory, phrase):
    result = suite.runpytest(f"--bottle-backend=hangbackends:{factory}", "--bottle-report=r.json")
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    report = Report.from_json((suite.path / "r.json").read_text())
    assert {r.state for r in report.results} == {State.ERROR}
    assert all(phrase in r.reason for r in report.results)
    assert dict(report.capabilities_absent)["live"].startswith("backend unusable")
    result.stdout.fnmatch_lines([f"*backend unusable*{phrase}*"])


def test_report_to_a_directory_or_a_missing_directory_is_one_line(suite):
    (suite.path / "out").mkdir()
    for arg, phrase in (("out", "is a directory"), ("missing/r.json", "does not exist")):
        result = suite.runpytest("--bottle-backend=hangbackends:HangsInExec",
                                 f"--bottle-report={arg}", "-k", "after")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        lines = [ln for ln in result.stderr.str().splitlines() if ln.strip()]
        assert len(lines) == 1 and phrase in lines[0], lines
    assert not (suite.path / "missing").exists(), "the report directory was created silently"


def test_a_full_disk_is_one_line_and_a_failed_run(suite, monkeypatch):
    import conformance.session as session

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(session.os, "fsync", full)
    (suite.path / "r.json").write_text("old")
    result = suite.runpytest("--bottle-backend=hangbackends:HangsInExec", "--bottle-report=r.json",
                             "-k", "after")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["bottle-conformance: cannot write the report *"
                                 "No space left on device"])
    assert "Traceback" not in result.stdout.str()
    assert (suite.path / "r.json").read_text() == "old"  # never a truncated report
    assert [p.name for p in suite.path.iterdir() if p.name.endswith(".tmp")] == []


def test_call_timeout_setting_is_validated(suite):
    result = suite.runpytest("--bottle-backend=hangbackends:Hangs", "--bottle-call-timeout=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--bottle-call-timeout: expected a positive number*"])


# -- the watchdog on its own ------------------------------------------------------------


def test_deadline_interrupts_and_restores_the_previous_handler():
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(watchdog.CallTimedOut, match=r"ERROR: x\(\) did not return within 0.2 s"):
        with watchdog.deadline("x()", 0.2):
            time.sleep(30)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_deadline_does_not_fire_after_a_quick_call():
    with watchdog.deadline("x()", 0.1):
        pass
    time.sleep(0.15)  # no stray alarm arrives


def test_guard_is_idempotent_and_removable():
    class B:
        def prepare(self):
            return 1

    b = B()
    watchdog.guard_backend(b)
    first = b.prepare
    watchdog.guard_backend(b)
    assert b.prepare is first and b.prepare() == 1
    watchdog.unguard(b)
    assert "prepare" not in vars(b)


def test_report_json_has_absent_capabilities(suite):
    suite.runpytest("--bottle-backend=hangbackends:HangsInExec", "--bottle-report=r.json",
                    "-k", "after")
    data = json.loads((suite.path / "r.json").read_text())
    assert data["capabilities_absent"]["tty"] == "not declared by the backend"
    assert "codex" not in data["capabilities_absent"]


def test_live_declared_but_unusable_here_is_named_in_the_header():
    from conformance.capabilities import parse_capabilities
    from conformance.report import ClauseResult
    from conformance.results import absent_capabilities
    from conformance.selection import BackendIdentity

    ident = BackendIdentity("b", "1", parse_capabilities(["live", "codex"]))
    results = [
        ClauseResult("LIVE-SMOKE", "MUST", ("live",), State.ERROR, "t: ERROR: smolvm not available"),
        ClauseResult("LIVE-BYPASS", "MUST", (), State.NOT_SUPPORTED, "t: NOT_SUPPORTED: x"),
        ClauseResult("PLAN-PURE", "MUST", ("invariant",), State.PASSED),
    ]
    absent = dict(absent_capabilities(ident, results))
    assert absent["live"].startswith("declared, but no live test could run here (ERROR)")
    assert "smolvm not available" in absent["live"] and "codex" not in absent
    results[0] = ClauseResult("LIVE-SMOKE", "MUST", ("live",), State.PASSED)
    assert "live" not in dict(absent_capabilities(ident, results))


# -- issue 17: every seam method, in any thread --------------------------------------------
import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402


class _Blocking:
    """Each seam method blocks until released (as a hung engine command would)."""

    def __init__(self):
        self.release = threading.Event()

    def _block(self, *a, **kw):
        self.release.wait(30)
        return "late"

    prepare = launch = script = attach = live_unavailable = standins = _block
    agent_argv = exec = close = handle = internal_endpoints = stop_daemon = _block


SHORT = 0.1  # each test below that blocks waits this long, ~15 of them


@pytest.fixture
def short_deadline():
    watchdog.set_timeout(SHORT)
    yield
    watchdog.set_timeout(None)


def test_a_hang_in_a_worker_thread_is_error_naming_the_call(short_deadline):
    """The live tier launches in a ThreadPoolExecutor where SIGALRM cannot
    fire: the watchdog bounds the call there too, and names it."""
    b = _Blocking()
    watchdog.guard_backend(b)
    try:
        with ThreadPoolExecutor(1) as pool:
            t0 = time.monotonic()
            future = pool.submit(b.launch, None, None)
            with pytest.raises(watchdog.CallTimedOut, match=r"_Blocking.launch\(\) did not "
                                                            rf"return within {SHORT:g} s"):
                future.result(timeout=10)
            assert time.monotonic() - t0 < 5
    finally:
        b.release.set()


@pytest.mark.parametrize("name", ["script", "live_unavailable", "standins", "attach",
                                  "prepare"])
def test_every_backend_seam_method_is_bounded(short_deadline, name):
    b = _Blocking()
    watchdog.guard_backend(b)
    try:
        with pytest.raises(watchdog.CallTimedOut, match=rf"_Blocking.{name}\(\)"):
            getattr(b, name)(None, None) if name in ("script", "attach", "prepare") else \
                getattr(b, name)(None)
    finally:
        b.release.set()


@pytest.mark.parametrize("name", ["agent_argv", "exec", "close", "handle",
                                  "internal_endpoints", "stop_daemon"])
def test_every_bottle_seam_method_is_bounded_in_a_thread(short_deadline, name):
    b = _Blocking()
    watchdog.guard_bottle(b)
    try:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(getattr(b, name))
            with pytest.raises(watchdog.CallTimedOut, match=rf"_Blocking.{name}\(\)"):
                future.result(timeout=10)
    finally:
        b.release.set()


def test_a_guarded_call_in_a_thread_returns_its_value_and_raises_its_error(short_deadline):
    watchdog.set_timeout(5)  # guarded (in a thread), with time to spare: nothing here blocks

    class Quick:
        def prepare(self, spec, host):
            return (spec, host)

        def launch(self, plan, runner):
            raise ValueError("launch said no")

    q = Quick()
    watchdog.guard_backend(q)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(q.prepare, 1, 2).result(timeout=5) == (1, 2)
        with pytest.raises(ValueError, match="launch said no"):
            pool.submit(q.launch, 1, 2).result(timeout=5)


def test_the_live_harness_never_waits_on_a_launch_without_a_bound(tmp_path, short_deadline):
    """`future.result()` on a launch that never finishes was unbounded: the
    wait now ends at the watchdog's deadline with an ERROR naming it."""
    from concurrent.futures import Future

    from bottle_ref.backends.docker import DockerBackend
    from conformance.live.harness import LiveHarness

    h = LiveHarness(DockerBackend(), RecordingRunner(), tmp_path, timeout=5)
    h._pending["minimal-claude"] = Future()  # a launch that never returns
    h._spares["minimal-claude"] = [Future()]
    t0 = time.monotonic()
    with pytest.raises(watchdog.CallTimedOut, match="launching the 'minimal-claude' bottle"):
        h.bottle("minimal-claude")
    with pytest.raises(watchdog.CallTimedOut, match="launching a fresh 'minimal-claude'"):
        h.fresh("minimal-claude")
    assert time.monotonic() - t0 < 5


class _SlowFileRunner(RecordingRunner):
    """Records argv; an ``openssl`` call takes a moment and writes the files
    it names (-keyout/-out), as the real one does."""

    def run(self, argv, **kw):
        argv = [str(a) for a in argv]
        if argv[:1] == ["openssl"]:
            time.sleep(0.05)
            for flag in ("-keyout", "-out"):
                if flag in argv:
                    Path(argv[argv.index(flag) + 1]).write_text("made\n")
        return super().run(argv, **kw)


def test_the_live_harness_makes_its_test_pki_once_whoever_asks_first(tmp_path):
    """A traced prelaunch's thread and the main thread both asked for the
    PKI at once, and both ran openssl into one directory: the upstream's key
    then did not match its certificate (CI: KEY_VALUES_MISMATCH). One
    harness makes one PKI and one sign-in per agent, however many ask."""
    from bottle_ref.backends.docker import DockerBackend
    from conformance.live.harness import LiveHarness

    runner = _SlowFileRunner()
    h = LiveHarness(DockerBackend(), runner, tmp_path, timeout=5)
    with ThreadPoolExecutor(4) as pool:
        pkis = list(pool.map(lambda _: h.pki, range(4)))
        creds = list(pool.map(lambda _: h.host_credentials("codex"), range(4)))
    assert len({id(p) for p in pkis}) == 1
    assert len(set(creds)) == 1
    made = [c.argv for c in runner.calls if c.argv[:1] == ("openssl",)]
    assert len(made) == 3, made  # CA, server key + CSR, signed certificate: once
