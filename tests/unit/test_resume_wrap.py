"""The suite's own EXEC-RESUME oracle (conformance.resume_wrap) agrees with
the reference's wrap on every reference argv shape, and is not the
reference's code (the suite never imports bottle_ref)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conformance.resume_wrap import NoAgentBinary, unwrap, wrap

ARGVS = [
    ("claude", ["docker", "exec", "-i", "-u", "node", "-e", "HOME=/home/node", "c", "claude",
                "--print", "hi there"]),
    ("claude", ["smolvm", "machine", "exec", "-n", "m", "-e", "HOME=/home/node", "-e",
                "USER=node", "--", "runuser", "-u", "node", "--", "/usr/bin/claude", "-p", "x'y"]),
    ("codex", ["podman", "exec", "--user", "node:node", "c", "codex", "exec", "do it"]),
]


@pytest.mark.parametrize("agent,argv", ARGVS)
def test_wrap_keeps_prefix_and_round_trips(agent, argv):
    w = wrap(argv, agent)
    assert list(w.prefix) == argv[:w.at] and w.argv[w.at:w.at + 2] == ("sh", "-c")
    again, fresh = unwrap(w.argv[-1])
    assert fresh == argv[w.at:] and again == list(w.resume)
    if agent == "claude":
        assert again == argv[w.at:] + ["--continue"]
    else:
        assert again[:3] == [argv[w.at], "resume", "--last"]


@pytest.mark.parametrize("agent,argv", ARGVS)
def test_wrap_agrees_with_the_reference(agent, argv):
    from bottle_ref.resume import resume_with_fallback

    assert list(wrap(argv, agent).argv) == resume_with_fallback(argv)


def test_no_agent_binary_is_refused():
    with pytest.raises(NoAgentBinary, match="no claude binary"):
        wrap(["docker", "exec", "c", "sh", "-c", "claude --print"], "claude")


def test_the_oracle_is_the_suites_own():
    src = (Path(__file__).resolve().parents[2] / "conformance" / "resume_wrap.py").read_text()
    mods = {n.module for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Import) for a in n.names}
    assert not any(str(m).startswith(("bottle_ref", "bottle_bundle")) for m in mods)
