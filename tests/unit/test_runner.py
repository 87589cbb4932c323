"""The runner is the contract's mechanism: recording must be faithful."""

import sys

import pytest

from bottle_api.runner import CommandError, RecordingRunner, SubprocessRunner, poll


def test_recording_keeps_env_names_not_values():
    r = RecordingRunner()
    r.run(["docker", "run", "-e", "TOKEN", "img"], env={"TOKEN": "s3cret-value"})
    (call,) = r.calls
    assert call.env_names == ("TOKEN",)
    assert "s3cret-value" not in repr(r.calls)
    assert r.secret_values == {"s3cret-value"}


def test_scripted_reply_first_match_and_times():
    r = RecordingRunner()
    r.reply("docker", "exec", "*", "true", returncode=1, times=2)
    r.reply("docker", "exec", stdout="ok")
    rcs = [r.run(["docker", "exec", "c", "true"], check=False).returncode for _ in range(3)]
    assert rcs == [1, 1, 0]
    assert r.run(["docker", "exec", "c", "ls"]).stdout == "ok"


def test_reply_contains_matches_any_token():
    r = RecordingRunner().reply(contains="update-ca-certificates", stdout="1 added")
    out = r.run(["smolvm", "machine", "exec", "--", "sh", "-c", "x && update-ca-certificates"])
    assert out.stdout == "1 added"
    assert r.run(["docker", "ps"]).stdout == ""


def test_reply_first_takes_precedence():
    r = RecordingRunner().reply("a", stdout="late")
    r.reply("a", stdout="early", first=True)
    assert r.run(["a"]).stdout == "early"


def test_check_raises_with_argv_and_stderr_tail():
    r = RecordingRunner().reply("false", returncode=3, stderr="boom\nbad thing")
    with pytest.raises(CommandError, match=r"exit 3.*false.*bad thing"):
        r.run(["false"])
    assert r.run(["false"], check=False).returncode == 3


def test_unique_is_deterministic_per_prefix():
    r = RecordingRunner()
    assert [r.unique("b"), r.unique("b"), r.unique("c")] == ["b-0001", "b-0002", "c-0001"]


def test_poll_backs_off_and_is_bounded():
    r = RecordingRunner()
    answers = iter([False, False, True])
    poll(r, lambda: next(answers), timeout=5, interval=0.1, what="guest")
    sleeps = [c.seconds for c in r.calls if c.kind == "sleep"]
    assert sleeps == [0.1, 0.2]
    with pytest.raises(TimeoutError, match="guest not ready after 1s"):
        poll(r, lambda: False, timeout=1, interval=0.1, what="guest")
    assert r.monotonic() >= 1 + 0.3


def test_poll_does_not_sleep_when_ready_at_once():
    r = RecordingRunner()
    poll(r, lambda: True, timeout=1)
    assert r.calls == []


def test_subprocess_runner_env_and_missing_binary():
    run = SubprocessRunner()
    out = run.run([sys.executable, "-c", "import os; print(os.environ['X_TOKEN'])"],
                  env={"X_TOKEN": "v"})
    assert out.stdout.strip() == "v"
    missing = run.run(["definitely-not-a-binary-xyz"], check=False)
    assert missing.returncode == 127 and "not found" in missing.stderr
    with pytest.raises(CommandError):
        run.run([sys.executable, "-c", "raise SystemExit(4)"])


def test_recording_runner_keeps_the_purpose_a_backend_marks():
    from bottle_api.runner import READY

    r = RecordingRunner()
    r.run(["docker", "run", "x"])
    r.run(["docker", "exec", "x", "true"], check=False, purpose=READY)
    assert [c.purpose for c in r.calls] == [None, READY]
    assert [c.argv for c in r.marked(READY)] == [("docker", "exec", "x", "true")]


def test_unknown_purpose_is_refused():
    with pytest.raises(ValueError, match="unknown runner purpose 'warmup'"):
        RecordingRunner().run(["true"], purpose="warmup")


# -- issue 17: no subprocess without a bound ---------------------------------------------
def test_every_subprocess_gets_a_timeout_by_default(tmp_path):
    import time as _time

    from bottle_api.runner import DEFAULT_TIMEOUT, SubprocessRunner

    assert DEFAULT_TIMEOUT and SubprocessRunner().default_timeout == DEFAULT_TIMEOUT
    runner = SubprocessRunner(default_timeout=0.3)
    t0 = _time.monotonic()
    result = runner.run(["sleep", "30"], check=False)
    assert _time.monotonic() - t0 < 5
    assert result.returncode == 124 and "timed out after 0.3s" in result.stderr
    # an explicit timeout still wins; None as the default means unbounded (bottle-ref exec)
    assert runner.run(["true"], timeout=5).ok
    assert SubprocessRunner(default_timeout=None).default_timeout is None


# -- DelegatingRunner (issue 18) -------------------------------------------------------


def test_delegating_runner_forwards_everything_it_does_not_override():
    from bottle_api.runner import READY, DelegatingRunner, RecordingRunner

    class Upper(DelegatingRunner):
        def run(self, argv, **kw):
            return self.inner.run([a.upper() for a in argv], **kw)

    inner = RecordingRunner()
    inner.reply("ECHO", returncode=3)
    runner = Upper(inner)
    result = runner.run(["echo", "x"], env={"T": "v"}, check=False, purpose=READY, timeout=4)
    assert result.returncode == 3 and inner.argvs == [("ECHO", "X")]
    call = inner.calls[-1]
    assert call.purpose == READY and call.timeout == 4 and call.env_names == ("T",)
    runner.sleep(2.5)
    assert runner.monotonic() == inner.monotonic() == 2.5
    assert runner.unique("b") == "b-0001" and inner.unique("b") == "b-0002"


def test_the_wrappers_are_delegating_runners():
    import sys
    from pathlib import Path

    from bottle_api.runner import DelegatingRunner
    from bottle_ref.cli import _GuardedRunner
    from conformance.live.harness import TracingRunner

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    import broken_backends
    import broken_live
    import test_snapshot_tier

    for cls in (_GuardedRunner, TracingRunner, broken_backends._DefectRunner,
                test_snapshot_tier._BundleExecFirst, broken_live._Rewriting):
        assert issubclass(cls, DelegatingRunner), cls
        assert not {"monotonic", "unique"} & set(vars(cls)), cls  # only what differs
