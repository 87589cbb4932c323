"""pty_resize: the SIGWINCH relay for smolvm guest PTYs (EXEC-TTY)."""

from __future__ import annotations

import ast
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from bottle_ref import pty_resize
from bottle_ref.pty_resize import (
    UsageError, _read_winsize, main, parse_args, resize_argv, resize_script,
)

SCRIPT = Path(pty_resize.__file__).resolve()


def winsize(rows: int, cols: int) -> bytes:
    return struct.pack("HHHH", rows, cols, 0, 0)


class FakeIoctl:
    """ioctl stand-in: per-fd answers; OSError for fds that are not a tty."""

    def __init__(self, answers: dict[int, bytes]):
        self.answers, self.asked = answers, []

    def __call__(self, fd, request, buf):
        assert request == termios.TIOCGWINSZ
        self.asked.append(fd)
        if fd not in self.answers:
            raise OSError(25, "Inappropriate ioctl for device")
        return self.answers[fd]


# -- parse_args -----------------------------------------------------------

def test_parse_args_splits_machine_and_command():
    machine, cmd = parse_args(["bottle-demo-0001", "--", "smolvm", "machine", "exec", "--", "x"])
    assert machine == "bottle-demo-0001"
    assert cmd == ["smolvm", "machine", "exec", "--", "x"]  # later "--" kept verbatim


@pytest.mark.parametrize("argv", [
    [], ["m"], ["m", "--"], ["m", "smolvm"], ["--", "smolvm"], ["-x", "--", "a"],
])
def test_parse_args_rejects_bad_command_lines(argv):
    with pytest.raises(UsageError, match="usage: pty_resize.py MACHINE -- CMD"):
        parse_args(argv)


def test_main_prints_usage_and_exits_2(capsys):
    assert main(["only-machine"], install_signals=False) == 2
    assert "usage:" in capsys.readouterr().err


# -- the side channel --------------------------------------------------------

def test_resize_argv_is_a_root_exec_looping_over_every_pts():
    argv = resize_argv("bottle-demo-0001", 132, 43)
    assert argv[:6] == ["smolvm", "machine", "exec", "--name", "bottle-demo-0001", "--"]
    assert argv[6:8] == ["sh", "-c"]
    assert argv[8] == "for f in /dev/pts/*; do stty -F $f cols 132 rows 43; done"
    assert "-t" not in argv and "-i" not in argv  # the side channel has no tty


@pytest.mark.parametrize("cols,rows", [(0, 10), (10, 0), (-1, 5), ("80", 24), (80, "24; rm -rf /"), (True, 2)])
def test_resize_script_rejects_non_positive_or_non_int(cols, rows):
    with pytest.raises(ValueError):
        resize_script(cols, rows)


# -- _read_winsize -----------------------------------------------------------

def test_read_winsize_prefers_stdin():
    ioctl = FakeIoctl({0: winsize(40, 120), 1: winsize(10, 20)})
    assert _read_winsize(ioctl=ioctl) == (120, 40)
    assert ioctl.asked == [0]


def test_read_winsize_falls_back_to_stdout_then_stderr():
    ioctl = FakeIoctl({2: winsize(50, 200)})
    assert _read_winsize(ioctl=ioctl) == (200, 50)
    assert ioctl.asked == [0, 1, 2]


def test_read_winsize_skips_zero_zero_answer():
    # The ironic case: the fd is a fresh smolvm PTY that itself reports 0 0.
    ioctl = FakeIoctl({0: winsize(0, 0), 1: winsize(33, 99)})
    assert _read_winsize(ioctl=ioctl) == (99, 33)


def test_read_winsize_none_when_no_fd_has_a_size():
    assert _read_winsize(ioctl=FakeIoctl({0: winsize(0, 0), 1: winsize(0, 80)})) is None
    assert _read_winsize(ioctl=FakeIoctl({})) is None


def test_read_winsize_honours_given_fds():
    ioctl = FakeIoctl({7: winsize(24, 80)})
    assert _read_winsize([7], ioctl=ioctl) == (80, 24)


# -- main (real child process, fake side channel, no terminal) ---------------

def test_main_resizes_at_startup_and_returns_child_exit_code():
    side: list[list[str]] = []
    code = main(["m1", "--", sys.executable, "-c", "raise SystemExit(7)"],
                run_side=side.append, read_winsize=lambda: (100, 30),
                install_signals=False)
    assert code == 7
    assert side == [resize_argv("m1", 100, 30)]


def test_main_skips_side_channel_without_a_size():
    side: list[list[str]] = []
    code = main(["m1", "--", sys.executable, "-c", "pass"], run_side=side.append,
                read_winsize=lambda: None, install_signals=False)
    assert code == 0 and side == []


def test_main_reports_signal_death_shell_style():
    code = main(["m1", "--", sys.executable, "-c",
                 "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                run_side=lambda a: None, read_winsize=lambda: None, install_signals=False)
    assert code == 128 + signal.SIGKILL


def test_main_missing_command_is_127(capsys):
    code = main(["m1", "--", "/nonexistent/definitely-not-here"], install_signals=False,
                read_winsize=lambda: None)
    assert code == 127
    assert "cannot start" in capsys.readouterr().err


def test_sigwinch_triggers_a_new_resize_and_handlers_are_restored():
    sizes = iter([(80, 24), (120, 40)])
    side: list[list[str]] = []
    sent = threading.Event()

    def run_side(argv):
        side.append(argv)
        if len(side) == 1:  # after the startup resize, simulate a terminal resize
            os.kill(os.getpid(), signal.SIGWINCH)
            sent.set()

    before = signal.getsignal(signal.SIGWINCH)
    # The child lives long enough for the signal to be handled, then exits 3.
    code = main(["m2", "--", sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(3)"],
                run_side=run_side, read_winsize=lambda: next(sizes, (120, 40)))
    assert sent.is_set() and code == 3
    assert side == [resize_argv("m2", 80, 24), resize_argv("m2", 120, 40)]
    assert signal.getsignal(signal.SIGWINCH) is before


def test_unchanged_size_does_not_rerun_side_channel():
    side: list[list[str]] = []

    def run_side(argv):
        side.append(argv)
        os.kill(os.getpid(), signal.SIGWINCH)

    code = main(["m3", "--", sys.executable, "-c", "import time; time.sleep(0.3)"],
                run_side=run_side, read_winsize=lambda: (80, 24))
    assert code == 0 and side == [resize_argv("m3", 80, 24)]


# -- runs standalone, stdlib only ------------------------------------------

STDLIB = set(sys.stdlib_module_names)


def test_script_imports_only_the_standard_library():
    tree = ast.parse(SCRIPT.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import would break absolute-path execution"
            roots.add((node.module or "").split(".")[0])
    assert roots, "parsed no imports at all; the check would be vacuous"
    assert not (roots - STDLIB), f"non-stdlib imports: {sorted(roots - STDLIB)}"
    assert "bottle_ref" not in roots


def test_script_runs_by_absolute_path_from_a_foreign_cwd(tmp_path):
    # As tmux runs it: `python /abs/pty_resize.py ...` in a cwd without the package,
    # with no PYTHONPATH and isolated mode so the editable install cannot help.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), "m", "--", sys.executable, "-c", "raise SystemExit(5)"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=30,
    )
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
