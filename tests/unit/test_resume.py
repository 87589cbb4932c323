"""resume_with_fallback keeps the exec framing and wraps only the agent tail (EXEC-RESUME)."""

from __future__ import annotations

import shlex

import pytest

from bottle_ref.resume import agent_index, resume_with_fallback

SMOL = ["smolvm", "machine", "exec", "--name", "bottle-demo-0001",
        "-e", "HOME=/home/node", "-e", "USER=node", "-i", "-t", "--",
        "runuser", "-u", "node", "--"]
WRAPPED_SMOL = ["/usr/bin/python3", "/abs/bottle_ref/pty_resize.py", "bottle-demo-0001", "--", *SMOL]
DOCKER = ["docker", "exec", "-it", "-u", "node", "-e", "HOME=/home/node", "bottle-demo-0001-agent"]


def test_claude_matches_the_documented_formula():
    tail = ["claude", "--append-system-prompt-file", "/home/node/.claude-bottle-prompt.txt", "fix it"]
    out = resume_with_fallback(SMOL + tail)
    assert out == SMOL + ["sh", "-c", f"{shlex.join(tail + ['--continue'])} || {shlex.join(tail)}"]


def test_runuser_prefix_stays_before_sh():
    out = resume_with_fallback(SMOL + ["claude"])
    sh = out.index("sh")
    assert out[sh - 4:sh] == ["runuser", "-u", "node", "--"]
    assert "claude" not in out[:sh]  # the agent only runs inside the shell, as node


def test_pty_wrapper_prefix_survives():
    out = resume_with_fallback(WRAPPED_SMOL + ["claude"])
    assert out[:len(WRAPPED_SMOL)] == WRAPPED_SMOL
    assert out[len(WRAPPED_SMOL):] == ["sh", "-c", "claude --continue || claude"]


def test_works_on_docker_argv():
    out = resume_with_fallback(DOCKER + ["claude", "-p", "hi there"])
    assert out[:len(DOCKER)] == DOCKER
    assert out[-1] == "claude -p 'hi there' --continue || claude -p 'hi there'"


def test_codex_resumes_with_its_subcommand():
    out = resume_with_fallback(SMOL + ["codex", "--model", "o4"])
    assert out == SMOL + ["sh", "-c", "codex resume --last --model o4 || codex --model o4"]


def test_tail_is_shell_quoted():
    out = resume_with_fallback(SMOL + ["claude", "it's; rm -rf /"])
    fresh = out[-1].split(" || ")[1]
    assert shlex.split(fresh) == ["claude", "it's; rm -rf /"]


def test_splits_at_first_agent_token_only():
    out = resume_with_fallback(SMOL + ["claude", "ask codex about claude"])
    assert out[len(SMOL)] == "sh"
    assert out[-1].startswith("claude 'ask codex about claude' --continue || ")


def test_agent_by_absolute_path_is_found():
    assert agent_index(["x", "/usr/local/bin/claude", "y"]) == 1


def test_names_that_merely_contain_agent_are_not_agents():
    argv = ["smolvm", "machine", "exec", "--name", "bottle-claude-0001", "--", "claude"]
    assert agent_index(argv) == 6


def test_no_agent_token_is_a_clear_error():
    with pytest.raises(ValueError, match="no agent binary .*claude, codex"):
        resume_with_fallback(SMOL + ["bash"])


def test_custom_agent_names():
    out = resume_with_fallback(["runuser", "-u", "node", "--", "myagent", "go"], agents=("myagent",))
    assert out == ["runuser", "-u", "node", "--", "sh", "-c", "myagent go --continue || myagent go"]
