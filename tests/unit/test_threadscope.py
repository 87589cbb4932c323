"""The static tiers' process-wide patches judge only the thread under test.

In a session with the live tier, background threads launch and close
bottles while PLAN-PURE and LAUNCH-READY patch process globals. CI once
failed PLAN-PURE with ``SubprocessRunner.run`` that a background launch
called; these tests hold the patches to the thread that opened them (and
the threads it starts) and show both directions: the background thread
is neither refused nor recorded, a thread the judged code starts is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bottle_api.runner import SubprocessRunner
from conformance import background
from conformance.recording.sleeps import catching_direct_sleeps
from conformance.threadscope import ScopedEnviron, thread_scope
from conformance.tiers.invariants.purity import (
    DECOY_MARK,
    ExternalCall,
    _decoy_environ,
    no_external_calls,
)


class _Worker:
    """A thread started before the patch (as the harness's pool is) that
    runs what it is handed, one call at a time, and reports its outcome."""

    def __init__(self) -> None:
        self._jobs: list[tuple[Callable[[], Any], dict[str, Any], threading.Event]] = []
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._jobs)
                fn, box, done = self._jobs.pop(0)
            try:
                box["value"] = fn()
            except BaseException as exc:  # reported to the caller
                box["error"] = exc
            done.set()

    def call(self, fn: Callable[[], Any]) -> Any:
        box: dict[str, Any] = {}
        done = threading.Event()
        with self._wake:
            self._jobs.append((fn, box, done))
            self._wake.notify()
        assert done.wait(30), "the worker thread did not answer"
        if "error" in box:
            raise box["error"]
        return box["value"]


def _in_new_thread(fn: Callable[[], Any]) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture(scope="module")
def worker() -> _Worker:
    return _Worker()


def _true() -> int:
    return subprocess.run([sys.executable, "-c", "pass"], check=True).returncode


def test_the_purity_guard_leaves_a_background_thread_alone(worker, tmp_path):
    target = tmp_path / "written-by-the-background"
    with no_external_calls() as seen:
        assert worker.call(_true) == 0
        worker.call(lambda: target.write_text("ok"))
        worker.call(lambda: SubprocessRunner().run([sys.executable, "-c", "pass"]))
        with pytest.raises(ExternalCall):
            subprocess.run([sys.executable, "-c", "pass"])
    assert target.read_text() == "ok"
    assert [s.split("(")[0] for s in seen] == ["subprocess.Popen"], (
        f"the guard recorded a background thread's calls, or missed the judged thread's: {seen}")


def test_the_purity_guard_follows_threads_the_judged_code_starts(tmp_path):
    with no_external_calls() as seen:
        with pytest.raises(ExternalCall):
            _in_new_thread(lambda: (tmp_path / "x").write_text("no"))
        with pytest.raises(ExternalCall):
            _in_new_thread(lambda: _in_new_thread(_true))  # a grandchild too
    assert not (tmp_path / "x").exists()
    assert [s.split("(")[0] for s in seen] == ["Path.write_text", "subprocess.Popen"]


def test_the_purity_guard_is_undone(tmp_path):
    before = (subprocess.Popen, open, os.open, Path.write_text, SubprocessRunner.run,
              threading.Thread.start)
    with no_external_calls():
        assert subprocess.Popen is not before[0]
    assert (subprocess.Popen, open, os.open, Path.write_text, SubprocessRunner.run,
            threading.Thread.start) == before


def test_decoy_environ_is_the_judged_threads_only(worker, monkeypatch):
    monkeypatch.setenv("BOTTLE_TEST_REAL", "real-value")
    real_home = os.environ.get("HOME")
    with _decoy_environ({"BOTTLE_TEST_EXTRA": ""}):
        assert os.environ["BOTTLE_TEST_REAL"].startswith(DECOY_MARK)
        assert os.getenv("BOTTLE_TEST_EXTRA", "").startswith(DECOY_MARK)
        assert Path("~").expanduser() != Path(real_home or "/nonexistent")
        merged = os.environ | {"BOTTLE_TEST_MORE": "x"}  # as os._Environ allows
        assert merged["BOTTLE_TEST_REAL"].startswith(DECOY_MARK) and merged["BOTTLE_TEST_MORE"] == "x"
        assert ({"BOTTLE_TEST_REAL": "y"} | os.environ)["BOTTLE_TEST_REAL"].startswith(DECOY_MARK)
        assert _in_new_thread(lambda: os.environ["BOTTLE_TEST_REAL"]).startswith(DECOY_MARK)
        assert worker.call(lambda: os.environ["BOTTLE_TEST_REAL"]) == "real-value"
        assert worker.call(lambda: os.environ.get("HOME")) == real_home
        assert worker.call(lambda: "BOTTLE_TEST_EXTRA" in os.environ) is False
        # A child process of the background thread inherits the real environment.
        out = worker.call(lambda: subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ['BOTTLE_TEST_REAL'])"],
            capture_output=True, text=True, check=True).stdout.strip())
        assert out == "real-value"
    assert os.environ["BOTTLE_TEST_REAL"] == "real-value"
    assert not isinstance(os.environ, ScopedEnviron)


def test_decoy_environ_reaches_a_backend_module_that_imported_environ(monkeypatch):
    import types

    mod = types.ModuleType("bottle_fake_backend_mod")
    mod.environ = os.environ  # as ``from os import environ`` leaves it

    class Backend:
        pass

    Backend.__module__ = mod.__name__
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setenv("BOTTLE_TEST_REAL", "real-value")
    with _decoy_environ({}, Backend()):
        assert mod.environ["BOTTLE_TEST_REAL"].startswith(DECOY_MARK)
    assert mod.environ is os.environ


def test_recorded_sleeps_are_the_judged_threads_only(worker):
    recorded: list[float] = []
    with catching_direct_sleeps(recorded.append):
        time.sleep(123)  # recorded, not slept
        _in_new_thread(lambda: time.sleep(7))
        t0 = time.monotonic()
        worker.call(lambda: time.sleep(0.05))
        slept = time.monotonic() - t0
    assert recorded == [123, 7]
    assert slept >= 0.05, "a background thread's time.sleep did not sleep"
    assert time.sleep.__module__ == "time"


def test_scopes_nest_and_close_in_any_order():
    start = threading.Thread.start
    with thread_scope() as outer:
        with thread_scope() as inner:
            assert outer.active() and inner.active()
            seen = _in_new_thread(lambda: (outer.active(), inner.active()))
            assert seen == (True, True)
        assert _in_new_thread(lambda: (outer.active(), inner.active())) == (True, False)
    assert threading.Thread.start is start


def test_paused_holds_every_registered_owner_while_the_body_runs():
    events: list[str] = []

    class Owner:
        @contextmanager
        def exclusive(self):
            events.append("hold")
            yield
            events.append("release")

    owner = Owner()
    background.register(owner.exclusive)
    with background.paused():
        events.append("body")
    assert events == ["hold", "body", "release"]
    del owner  # held weakly: a finished harness is not paused again
    events.clear()
    with background.paused():
        events.append("body")
    assert events == ["body"]


def test_a_pool_call_the_judged_code_submits_is_judged_whatever_its_worker(worker):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: None).result(30)  # its one worker predates the guard
        with no_external_calls() as seen:
            with pytest.raises(ExternalCall):
                pool.submit(_true).result(30)
            # The same worker, running a call a background thread handed it: not judged.
            assert worker.call(lambda: pool.submit(_true).result(30)) == 0
        assert pool.submit(_true).result(30) == 0
    assert [s.split("(")[0] for s in seen] == ["subprocess.Popen"]
