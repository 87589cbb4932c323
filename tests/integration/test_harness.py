"""The live harness's own parts, without an engine: the canary, resource
cleanup, snapshot parsing, probe result parsing, and the in-guest probe
scripts run on the host (they are plain Python)."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys

import pytest

from bottle_api.backend import Bottle
from bottle_api.runner import Completed, RecordingRunner, SubprocessRunner, poll
from conformance.live import probes
from conformance.live.canary import Canary
from conformance.live.engine import Engine
from conformance.live.harness import TOKEN_BODY, TOKEN_PREFIX, TracingRunner, new_token
from conformance.live.resources import Resources, run_tag

pytestmark = pytest.mark.engine_free


class LocalBottle(Bottle):
    """Runs "guest" commands on the host: enough for the probe scripts."""

    plan = None

    def __init__(self, argv=("docker", "exec", "-u", "node", "ctr", "claude", "--flag")):
        self.calls = []
        self._argv = list(argv)

    def agent_argv(self, argv=(), *, tty=True):
        return self._argv + list(argv)

    def exec(self, cmd, *, user="node", env=None, timeout=None, check=False):
        self.calls.append((tuple(cmd), user))
        cmd = [sys.executable if c == "python3" else c for c in cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**__import__("os").environ, **(env or {})})
        return Completed(tuple(cmd), p.returncode, p.stdout, p.stderr)

    def close(self):
        pass


class ScriptedBottle(LocalBottle):
    def __init__(self, stdout: str, returncode: int = 0):
        super().__init__()
        self.reply = Completed((), returncode, stdout, "")

    def exec(self, cmd, **kw):
        self.calls.append((tuple(cmd), kw.get("user", "node")))
        return self.reply


# -- canary ------------------------------------------------------------------------


def test_canary_counts_connections_and_self_tests():
    with Canary() as c:
        c.self_test()
        before = c.hits
        socket.create_connection(("127.0.0.1", c.port), timeout=2).close()
        poll(SubprocessRunner(), lambda: c.hits == before + 1, timeout=5, what="canary hit")
    assert not c.running


def test_canary_lifetime_is_bounded():
    c = Canary(lifetime=0.2).start()
    poll(SubprocessRunner(), lambda: not c.running, timeout=5, what="canary expiry")
    with pytest.raises(RuntimeError):
        c.self_test(timeout=1)


# -- resources ---------------------------------------------------------------------


class FakeEngine(Engine):
    def __init__(self, fail=()):
        super().__init__(RecordingRunner())
        self.fail = set(fail)
        self.removed: list[str] = []

    def run(self, *argv, check=True, timeout=None, input=None):
        name = argv[-1]
        if argv[0] in ("rm", "network") and "inspect" not in argv:
            if name in self.fail:
                return Completed(argv, 1, "", "busy")
            self.removed.append(name)
        if "inspect" in argv:  # exists(): only a failed removal stays
            return Completed(argv, 0 if name in self.fail else 1)
        return Completed(argv, 0)


def test_resources_lifo_all_attempted_and_errors_named():
    eng = FakeEngine(fail={"net-a"})
    res = Resources(eng, "t1")
    order = []
    res.defer("first", lambda: order.append("first"))
    res.network("net-a")
    res.container("ctr-b")
    res.defer("boom", lambda: 1 / 0)
    with pytest.raises(RuntimeError) as exc:
        res.cleanup()
    assert eng.removed == ["ctr-b"]  # net-a failed, nothing else touched
    assert order == ["first"], "a failing step must not stop the later ones"
    assert "net-a" in str(exc.value) and "boom" in str(exc.value)
    res.cleanup()  # nothing left: no error, nothing removed twice
    assert eng.removed == ["ctr-b"]


def test_resource_names_unique_and_prefixed():
    res = Resources(FakeEngine(), "abc")
    names = {res.name("x") for _ in range(5)}
    assert len(names) == 5 and all(n.startswith("bctl-abc-") for n in names)


def test_run_tag(monkeypatch):
    # Run under pytest-xdist this process is a worker itself: start from none.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("BOTTLE_LIVE_TAG", "Pinned1")
    assert run_tag() == "pinned1"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")  # the pin keeps the worker apart
    assert run_tag() == "pinned1w2"
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.setenv("BOTTLE_LIVE_TAG", "no-dashes!")
    with pytest.raises(ValueError):
        run_tag()
    monkeypatch.delenv("BOTTLE_LIVE_TAG")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    a, b = run_tag(), run_tag()
    assert a != b and a.endswith("w3")


def test_snapshot_parses_names_and_labels():
    runner = RecordingRunner()
    runner.reply("docker", "ps", stdout="c1\tbottle-x-agent\tbottle-ref.bottle=bottle-x,a=b\n")
    runner.reply("docker", "network", "ls", stdout="n1\tbridge\t\nn2\tbottle-x-out\tk=bottle-x\n")
    snap = Engine(runner).snapshot()
    assert {o.name for o in snap.mentioning("bottle-x")} == {"bottle-x-agent", "bottle-x-out"}
    assert snap.missing(["c1", "gone"]) == ["gone"]


# -- probe parsing -----------------------------------------------------------------


def test_http_result_parsing_and_body_never_in_repr():
    token = new_token()
    body = json.dumps({"authorization": f"Bearer {token}", "host": "h", "path": "/"})
    meta = json.dumps({"http_code": 200, "http_connect": 200, "errormsg": None})
    b = ScriptedBottle(body + "\n" + probes.CURL_MARK + meta)
    log = probes.ProbeLog()
    r = probes.http(b, "https://h/", log=log, headers={"X": "y"}, no_proxy=True, proxy="http://p:1")
    assert (r.status, r.connect_status, r.echo["authorization"]) == (200, 200, f"Bearer {token}")
    assert token not in repr(r) and token not in r.describe()
    argv = b.calls[0][0]
    assert "-k" not in argv and "--insecure" not in argv
    assert argv[argv.index("--noproxy") + 1] == "*" and "X: y" in argv
    assert all(token not in v for _, v in log.properties())
    refused = probes.http(ScriptedBottle("\n" + probes.CURL_MARK + json.dumps(
        {"http_code": 0, "http_connect": 403, "errormsg": "CONNECT tunnel failed"}), 56),
        "https://d/", log=log)
    assert refused.echo is None and refused.connect_status == 403


def test_missing_tool_is_a_probe_error_other_garbage_a_failure():
    with pytest.raises(probes.ProbeError):
        probes.http(ScriptedBottle("", 127), "http://x/", log=probes.ProbeLog())
    with pytest.raises(probes.ProbeError):
        probes.tcp(ScriptedBottle("", 127), [("127.0.0.1", 1)], log=probes.ProbeLog())
    with pytest.raises(AssertionError):
        probes.tcp(ScriptedBottle("oops", 1), [("127.0.0.1", 1)], log=probes.ProbeLog())


def test_live_tier_reports_a_missing_probe_tool_as_error():
    from conformance.outcomes import ERROR_PREFIX
    from conformance.tiers.live import LiveTier

    class Lb:
        bottle = ScriptedBottle("", 127)

        def need_network(self):  # the network can be probed here
            return None

    with Canary() as canary, pytest.raises(pytest.skip.Exception) as exc:
        LiveTier().test_host_loopback_canary_unreachable(Lb(), canary, probes.ProbeLog())
    assert str(exc.value.msg).startswith(ERROR_PREFIX)


def test_agent_framed_replaces_the_agent_tail():
    runner = RecordingRunner()
    b = LocalBottle(["smolvm", "machine", "exec", "--name", "m", "--", "runuser", "-u", "node",
                     "--", "claude", "--append-system-prompt-file", "/p"])
    probes.agent_framed(b, "claude", "id -un", runner, log=probes.ProbeLog())
    assert runner.argvs == [("smolvm", "machine", "exec", "--name", "m", "--", "runuser", "-u",
                             "node", "--", "sh", "-c", "id -un")]
    with pytest.raises(AssertionError):
        probes.agent_framed(LocalBottle(["docker", "exec", "c", "codex"]), "claude", "true",
                            runner, log=probes.ProbeLog())


def test_tracing_runner_records_and_delegates():
    inner = RecordingRunner()
    t = TracingRunner(inner)
    t.run(["docker", "info"], check=False)
    assert t.argvs == [("docker", "info")] and inner.argvs == [("docker", "info")]
    assert t.unique("x") == "x-0001"


# -- the in-guest scripts, run on the host ----------------------------------------------


def test_tcp_script_tells_connected_from_refused():
    with Canary() as c:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        log = probes.ProbeLog()
        res = probes.tcp(LocalBottle(), [("127.0.0.1", c.port), ("127.0.0.1", closed)],
                         log=log, timeout=2)
    assert [r.connected for r in res] == [True, False]
    assert "Refused" in res[1].error
    assert any("127.0.0.1" in v for _, v in log.properties())


def test_scan_script_finds_only_hashes(tmp_path):
    decoy = new_token()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_text(f"x {decoy} y")
    res = probes.scan(LocalBottle(), TOKEN_PREFIX, TOKEN_BODY, [str(tmp_path)],
                      log=probes.ProbeLog())
    h = hashlib.sha256(decoy.encode()).hexdigest()
    assert res.found.get(h) == {"raw": (str(tmp_path / "sub" / "f"),)}
    assert decoy not in json.dumps(res.found)
    assert res.files >= 1 and res.procs >= 1


def test_pinned_run_tag_keeps_the_xdist_worker(monkeypatch):
    """Two workers with one pinned tag must not share container names."""
    monkeypatch.setenv("BOTTLE_LIVE_TAG", "ci1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert run_tag() == "ci1w3"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert run_tag() == "ci1w0"


# -- issue 19: the background launch queue's schedule -----------------------------------


def _queue_harness(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from bottle_ref.backends.docker import DockerBackend
    from conformance.live.harness import LiveHarness

    h = LiveHarness(DockerBackend(), RecordingRunner(), tmp_path, timeout=10)
    h._pool = ThreadPoolExecutor(max_workers=2)
    return h


def test_the_first_queued_launch_runs_alone_and_exclusive_holds_the_rest(tmp_path):
    """The first queued launch runs alone; `exclusive` waits for the launches
    in flight and starts none until it ends (events, no sleeps: each job
    blocks on an event the test sets)."""
    import threading

    h = _queue_harness(tmp_path)
    log, lock = [], threading.Lock()
    release = {k: threading.Event() for k in ("a", "b", "c")}
    started = {k: threading.Event() for k in ("a", "b", "c")}

    def job(key):
        with lock:
            log.append(f"start {key}")
        started[key].set()
        assert release[key].wait(10)
        with lock:
            log.append(f"end {key}")
        return key

    try:
        fa, fb = h._submit(job, "a"), h._submit(job, "b")
        assert started["a"].wait(10)
        assert not started["b"].wait(0.2), "the second launch started beside the first"
        release["a"].set()
        assert fa.result(10) == "a" and started["b"].wait(10)
        entered = threading.Event()

        def hold():
            with h.exclusive():
                entered.set()
                fc = h._submit(job, "c")
                assert not started["c"].wait(0.2), "a launch started inside exclusive()"
            return fc

        box: list = []
        holder = threading.Thread(target=lambda: box.append(hold()))
        holder.start()
        assert not entered.wait(0.2), "exclusive() did not wait for the launch in flight"
        release["b"].set()
        assert fb.result(10) == "b" and entered.wait(10)
        holder.join(10)
        release["c"].set()
        assert box[0].result(10) == "c"
        assert log == ["start a", "end a", "start b", "end b", "start c", "end c"], log
    finally:
        for e in release.values():
            e.set()
        h._pool.shutdown(wait=True)
