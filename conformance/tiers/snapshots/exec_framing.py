"""Snapshot-tier checks for EXEC-*."""

from __future__ import annotations

from pathlib import Path

import pytest

from ...scenarios import Scenario, scenario_params
from .readers import framing, is_python, launched, show, stdlib_problem, tty_flags


class ExecSnapshots:
    """EXEC-*."""

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
