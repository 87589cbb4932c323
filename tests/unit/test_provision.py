"""Shared guest provisioning (DESIGN §4; PROV-* clauses), through a neutral
fake channel so these tests pin the steps, not one backend's framing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bottle_ref import provision as provision_mod

import pytest

from bottle_api.plan import EgressPlan, GitGatePlan, GuestFile, PipelockPlan, Plan, SupervisePlan
from bottle_ref.provision import (
    CA_GUEST_PATH,
    PROMPT_PATH,
    SKILLS_DIR,
    WORKDIR,
    Addresses,
    GuestChannel,
    ProvisionError,
    home_of,
    provision,
)
from bottle_api.runner import RecordingRunner
from bottle_api.spec import GitUser, Upstream

CA_OK = "Updating certificates in /etc/ssl/certs...\n1 added, 0 removed; done.\n"


class FakeChannel(GuestChannel):
    """``guest exec USER HOME=... -- CMD`` / ``guest cp SRC DST``."""

    def exec_argv(self, cmd, *, user="node", env=None, tty=False):
        return ["guest", "exec", user, f"HOME={home_of(user)}", "--", *cmd]

    def copy_argv(self, host_path, guest_path):
        return ["guest", "cp", host_path, guest_path]


class SnoopRunner(RecordingRunner):
    """Records what each copied host file held at copy time (staged files
    are deleted afterwards, so this is the only way to see them)."""

    def __init__(self):
        super().__init__()
        self.copied: dict[str, str] = {}

    def run(self, argv, **kw):
        argv = [str(a) for a in argv]
        if argv[:2] == ["guest", "cp"] and Path(argv[2]).is_file():
            self.copied[argv[3]] = Path(argv[2]).read_text()
        return super().run(argv, **kw)


def make_plan(tmp_path, **kw) -> Plan:
    base = dict(
        backend="test", bottle="demo", agent="claude",
        agent_image_ref="claude-bottle:latest", bundle_image_ref="bottle-bundle:latest",
        state_dir=str(tmp_path / "state" / "demo"), daemons=("egress", "pipelock"),
        first_hop="pipelock", pipelock=PipelockPlan(config_yaml="version: 1\n"),
        egress=EgressPlan(routes=(), routes_yaml="routes: []\n", token_slots=(),
                          upstream_proxy="http://pipelock:8888"),
    )
    base.update(kw)
    return Plan(**base)


def runner_ok() -> SnoopRunner:
    r = SnoopRunner()
    r.reply("guest", "exec", "root", "*", "--", "sh", "-c", "*update-ca-certificates*",
            stdout=CA_OK)
    return r


def run(plan, runner=None, addresses=None, logs=None):
    runner = runner or runner_ok()
    logs = [] if logs is None else logs
    result = provision(plan, FakeChannel(), runner,
                       addresses or Addresses(proxy_url="http://pipelock:8888"),
                       ca_pem_host_path="/host/ca.pem", log=logs.append)
    return result, runner, logs


def execs(runner, user=None):
    """Guest commands (after ``--``) run through exec, optionally for one user."""
    out = []
    for a in runner.argvs:
        if a[:2] == ("guest", "exec") and (user is None or a[2] == user):
            out.append(a[5:])
    return out


# -- CA ------------------------------------------------------------------------


def test_ca_is_one_copy_then_one_root_sh(tmp_path):
    _, runner, _ = run(make_plan(tmp_path))
    first, second = runner.argvs[:2]
    assert first == ("guest", "cp", "/host/ca.pem", CA_GUEST_PATH)
    assert second[:6] == ("guest", "exec", "root", "HOME=/root", "--", "sh")
    script = second[7]
    assert second[6] == "-c"
    assert script == (f"chown root:root {CA_GUEST_PATH} && chmod 0644 {CA_GUEST_PATH}"
                      " && update-ca-certificates")
    assert len(runner.find("guest", "cp", "*", CA_GUEST_PATH)) == 1
    assert len(runner.find("guest", "exec", "*", "*", "--", "*", "*",
                           "*update-ca-certificates*")) == 1


@pytest.mark.parametrize("stdout,rc", [
    ("Updating certificates in /etc/ssl/certs...\n", 0),  # the seed's silent SIGKILL
    ("0 added, 0 removed; done.\n", 0),
    ("11 added, 0 removed; done.\n", 0),  # something besides our CA changed
    ("", 137),
])
def test_ca_without_1_added_is_a_provision_error(tmp_path, stdout, rc):
    runner = SnoopRunner()
    runner.reply("guest", "exec", "root", "*", "--", "sh", "-c", "*update-ca-certificates*",
                 stdout=stdout, returncode=rc)
    with pytest.raises(ProvisionError, match="1 added"):
        run(make_plan(tmp_path, prompt="hi"), runner=runner)
    # Nothing ran after the failed CA step.
    assert len(runner.argvs) == 2


# -- guest files (credential placeholders) ---------------------------------------


def test_guest_file_copied_as_file_chowned_and_chmodded(tmp_path):
    secretish = '{"OPENAI_API_KEY": null, "marker": "placeholder-XYZ"}'
    gf = GuestFile(path="/home/node/.codex/auth.json", content=secretish, mode=0o600)
    _, runner, _ = run(make_plan(tmp_path, guest_files=(gf,)))
    assert runner.copied[gf.path] == secretish
    assert not any("placeholder-XYZ" in a for argv in runner.argvs for a in argv)
    assert ("mkdir", "-p", "/home/node/.codex") in execs(runner, "node")
    assert ("sh", "-c", f"chown node:node {gf.path} && chmod 0600 {gf.path}") in execs(
        runner, "root")
    # mkdir before copy before chown
    argvs = runner.argvs
    i_mkdir = argvs.index(("guest", "exec", "node", "HOME=/home/node", "--",
                           "mkdir", "-p", "/home/node/.codex"))
    i_cp = next(i for i, a in enumerate(argvs) if a[:2] == ("guest", "cp") and a[3] == gf.path)
    i_chown = next(i for i, a in enumerate(argvs) if "chmod 0600 " + gf.path in " ".join(a))
    assert i_mkdir < i_cp < i_chown
    # The staged copy does not linger on the host.
    assert not list((tmp_path / "state" / "demo" / "guest-files").iterdir())


def test_guest_file_mode_is_octal(tmp_path):
    gf = GuestFile(path="/etc/thing.conf", content="x", mode=0o644, owner="root")
    _, runner, _ = run(make_plan(tmp_path, guest_files=(gf,)))
    assert ("sh", "-c", "chown root:root /etc/thing.conf && chmod 0644 /etc/thing.conf") in \
        execs(runner, "root")


# -- prompt ------------------------------------------------------------------------


def test_prompt_nonempty_returns_path_and_lands_0600_node(tmp_path):
    result, runner, _ = run(make_plan(tmp_path, prompt="be careful"))
    assert result == PROMPT_PATH
    assert runner.copied[PROMPT_PATH] == "be careful"
    assert ("sh", "-c", f"chown node:node {PROMPT_PATH} && chmod 0600 {PROMPT_PATH}") in \
        execs(runner, "root")


def test_prompt_empty_still_copied_but_returns_none(tmp_path):
    result, runner, _ = run(make_plan(tmp_path, prompt=""))
    assert result is None
    assert runner.copied[PROMPT_PATH] == ""
    assert any(f"chmod 0600 {PROMPT_PATH}" in " ".join(a) for a in execs(runner, "root"))


# -- skills --------------------------------------------------------------------------


def test_no_skills_no_skill_calls(tmp_path):
    _, runner, _ = run(make_plan(tmp_path))
    assert not [a for a in runner.argvs if any(SKILLS_DIR in x for x in a)]


def test_skills_mkdir_copy_chown_each(tmp_path):
    a, b = tmp_path / "s1", tmp_path / "s2"
    a.mkdir()
    b.mkdir()
    _, runner, _ = run(make_plan(tmp_path, skills=((str(a), "alpha"), (str(b), "beta"))))
    skill_argvs = [x for x in runner.argvs if any(SKILLS_DIR in y for y in x)]
    assert skill_argvs == [
        ("guest", "exec", "node", "HOME=/home/node", "--", "mkdir", "-p", SKILLS_DIR),
        ("guest", "cp", str(a), f"{SKILLS_DIR}/alpha"),
        ("guest", "exec", "root", "HOME=/root", "--", "chown", "-R", "node:node",
         f"{SKILLS_DIR}/alpha"),
        ("guest", "exec", "node", "HOME=/home/node", "--", "mkdir", "-p", SKILLS_DIR),
        ("guest", "cp", str(b), f"{SKILLS_DIR}/beta"),
        ("guest", "exec", "root", "HOME=/root", "--", "chown", "-R", "node:node",
         f"{SKILLS_DIR}/beta"),
    ]


def test_missing_skill_dir_fails_before_any_guest_call(tmp_path):
    runner = runner_ok()
    missing = tmp_path / "nope"
    with pytest.raises(ProvisionError, match=r"skill 'gone'.*not found.*nope"):
        run(make_plan(tmp_path, skills=((str(missing), "gone"),)), runner=runner)
    assert runner.argvs == []


# -- git ---------------------------------------------------------------------------------


def git_calls(runner):
    return [a for a in runner.argvs if "git" in a[5:6]]


@pytest.mark.parametrize("user,expected", [
    (GitUser(), []),
    (GitUser(name="Ada", email="ada@example.org"),
     [("user.name", "Ada"), ("user.email", "ada@example.org")]),
    (GitUser(name="Ada"), [("user.name", "Ada")]),
    (GitUser(email="ada@example.org"), [("user.email", "ada@example.org")]),
])
def test_git_user_one_config_per_set_field_as_node(tmp_path, user, expected):
    _, runner, _ = run(make_plan(tmp_path, git_user=user))
    calls = git_calls(runner)
    assert calls == [("guest", "exec", "node", "HOME=/home/node", "--",
                      "git", "config", "--global", k, v) for k, v in expected]


def test_insteadof_per_upstream_to_gate(tmp_path):
    ups = (Upstream("app", "https://example.org/app.git"),
           Upstream("lib", "git@example.org:lib.git"))
    plan = make_plan(tmp_path, git_gate=GitGatePlan(upstreams=ups),
                     daemons=("egress", "pipelock", "git-gate"))
    _, runner, _ = run(plan, addresses=Addresses("http://pipelock:8888",
                                                   git_gate_url="git://git-gate:9418"))
    assert git_calls(runner) == [
        ("guest", "exec", "node", "HOME=/home/node", "--", "git", "config", "--global",
         "url.git://git-gate:9418/app.git.insteadOf", "https://example.org/app.git"),
        ("guest", "exec", "node", "HOME=/home/node", "--", "git", "config", "--global",
         "url.git://git-gate:9418/lib.git.insteadOf", "git@example.org:lib.git"),
    ]


def test_no_insteadof_without_gate_address(tmp_path):
    ups = (Upstream("app", "https://example.org/app.git"),)
    _, runner, _ = run(make_plan(tmp_path, git_gate=GitGatePlan(upstreams=ups)))
    assert git_calls(runner) == []


def test_cwd_git_dir_copied_and_chowned(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _, runner, _ = run(make_plan(tmp_path, cwd=str(repo)))
    argvs = runner.argvs
    i = argvs.index(("guest", "cp", str(repo / ".git"), f"{WORKDIR}/.git"))
    assert argvs[i - 1] == ("guest", "exec", "node", "HOME=/home/node", "--",
                            "mkdir", "-p", WORKDIR)
    assert argvs[i + 1] == ("guest", "exec", "root", "HOME=/root", "--",
                            "chown", "-R", "node:node", WORKDIR)


def test_cwd_without_git_is_logged_not_copied(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    _, runner, logs = run(make_plan(tmp_path, cwd=str(plain)))
    # nothing copied to or made in the workdir (the claude.json trust merge
    # names it as a key, and only that)
    assert not [a for a in runner.argvs if any(WORKDIR in x for x in a)
                and "python3" not in a]
    assert any("no .git" in line for line in logs)


# -- supervise -------------------------------------------------------------------------


SUP = Addresses("http://pipelock:8888", supervise_url="http://supervise:9100/mcp")


def test_supervise_registers_as_node(tmp_path):
    plan = make_plan(tmp_path, supervise=SupervisePlan())
    _, runner, _ = run(plan, addresses=SUP)
    assert runner.argvs[-2] == (
        "guest", "exec", "node", "HOME=/home/node", "--", "claude", "mcp", "add",
        "--scope", "user", "--transport", "http", "supervise", "http://supervise:9100/mcp")
    # then, as node too, the claude.json merge (after mcp add, so it keeps its entry)
    assert runner.argvs[-1][:6] == ("guest", "exec", "node", "HOME=/home/node", "--", "python3")


def test_supervise_failure_is_logged_not_fatal(tmp_path):
    runner = runner_ok()
    runner.reply("guest", "exec", "node", "*", "--", "claude", "mcp", "add",
                 returncode=1, stderr="boom: no such server")
    result, runner, logs = run(make_plan(tmp_path, supervise=SupervisePlan(), prompt="p"),
                               runner=runner, addresses=SUP)
    assert result == PROMPT_PATH
    assert any("supervise" in line and "boom" in line for line in logs)


def test_no_supervise_without_plan_or_address(tmp_path):
    _, r1, _ = run(make_plan(tmp_path), addresses=SUP)
    _, r2, _ = run(make_plan(tmp_path, supervise=SupervisePlan()))
    for r in (r1, r2):
        assert not r.find("guest", "exec", "*", "*", "--", "claude")


# -- whole run ---------------------------------------------------------------------------


def test_step_order_and_every_node_exec_has_home(tmp_path):
    skill = tmp_path / "sk"
    skill.mkdir()
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    plan = make_plan(
        tmp_path, prompt="p", skills=((str(skill), "sk"),), cwd=str(repo),
        git_user=GitUser(name="Ada"), supervise=SupervisePlan(),
        git_gate=GitGatePlan(upstreams=(Upstream("app", "https://example.org/app.git"),)),
        guest_files=(GuestFile(path="/home/node/.claude/.credentials.json", content="{}"),),
    )
    addresses = Addresses("http://pipelock:8888", git_gate_url="git://git-gate:9418",
                          supervise_url="http://supervise:9100/mcp")
    _, runner, _ = run(plan, addresses=addresses)
    joined = [" ".join(a) for a in runner.argvs]

    def first(text):
        return next(i for i, j in enumerate(joined) if text in j)

    order = [first("update-ca-certificates"), first(".credentials.json"), first(PROMPT_PATH),
             first(SKILLS_DIR), first("insteadOf"), first("user.name"), first(WORKDIR),
             first("mcp add")]
    assert order == sorted(order)
    for a in runner.argvs:
        if a[:2] == ("guest", "exec"):
            assert a[3] == f"HOME={home_of(a[2])}"


# -- ~/.claude.json: onboarding and workdir trust (issue 9) ------------------------

class TestClaudeConfigMerge:
    """The merge script the guest runs, run here on a scratch file: keys as
    Claude Code 2.1.330 writes them when the trust dialog is accepted
    (checked offline in a pty: projects["<dir>"].hasTrustDialogAccepted)."""

    def run(self, path, workdirs=("/home/node/work",)):
        import subprocess

        argv = provision_mod.claude_config_argv(workdirs)
        argv[3] = str(path)  # the guest path, redirected to the scratch file
        return subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True)

    def test_guest_command_trusts_home_and_workdir(self):
        # agent_argv runs the agent in node's home; the host cwd's .git lands in work/
        assert provision_mod.claude_config_argv()[3:] == [
            "/home/node/.claude.json", "/home/node", "/home/node/work"]

    def test_fresh_home_gets_onboarding_and_trust(self, tmp_path):
        cfg = tmp_path / ".claude.json"
        assert self.run(cfg, ("/home/node", "/home/node/work")).returncode == 0
        assert json.loads(cfg.read_text())["projects"] == {
            "/home/node": {"hasTrustDialogAccepted": True},
            "/home/node/work": {"hasTrustDialogAccepted": True}}
        cfg.unlink()
        assert self.run(cfg).returncode == 0
        data = json.loads(cfg.read_text())
        assert data == {"hasCompletedOnboarding": True,
                        "projects": {"/home/node/work": {"hasTrustDialogAccepted": True}}}
        assert cfg.stat().st_mode & 0o777 == 0o600

    def test_keeps_what_claude_mcp_add_wrote(self, tmp_path):
        cfg = tmp_path / ".claude.json"
        mcp = {"supervise": {"type": "http", "url": "http://127.0.0.1:9100/mcp"}}
        cfg.write_text(json.dumps({"mcpServers": mcp, "userID": "u",
                                   "projects": {"/home/node/work": {"allowedTools": ["x"]},
                                                "/other": {"hasTrustDialogAccepted": False}}}))
        assert self.run(cfg).returncode == 0
        data = json.loads(cfg.read_text())
        assert data["mcpServers"] == mcp and data["userID"] == "u"
        assert data["projects"]["/home/node/work"] == {"allowedTools": ["x"],
                                                       "hasTrustDialogAccepted": True}
        assert data["projects"]["/other"] == {"hasTrustDialogAccepted": False}
        assert data["hasCompletedOnboarding"] is True

    def test_not_json_is_left_alone_and_fails(self, tmp_path):
        cfg = tmp_path / ".claude.json"
        cfg.write_text("{not json")
        result = self.run(cfg)
        assert result.returncode != 0 and "is not JSON" in result.stderr
        assert cfg.read_text() == "{not json"


# -- issue 14 item 5: a codex bottle gets them where Codex reads them ------------------
CODEX_PROMPT = "/home/node/.codex/AGENTS.md"
CODEX_SKILLS = "/home/node/.agents/skills"


def test_codex_prompt_is_agents_md_0600_node(tmp_path):
    plan = make_plan(tmp_path, agent="codex", prompt="be careful", prompt_path=CODEX_PROMPT)
    result, runner, _ = run(plan)
    assert result == CODEX_PROMPT
    assert runner.copied == {CODEX_PROMPT: "be careful"}
    mkdir = runner.argvs.index(("guest", "exec", "node", "HOME=/home/node", "--", "mkdir",
                                "-p", "/home/node/.codex"))
    copy = runner.argvs.index(("guest", "cp", str(tmp_path / "state" / "demo" / "AGENTS.md"),
                               CODEX_PROMPT))
    assert mkdir < copy
    assert ("sh", "-c", f"chown node:node {CODEX_PROMPT} && chmod 0600 {CODEX_PROMPT}") in \
        execs(runner, "root")
    assert not any(PROMPT_PATH in t for a in runner.argvs for t in a)


def test_codex_prompt_defaults_to_agents_md_and_empty_writes_nothing(tmp_path):
    result, runner, _ = run(make_plan(tmp_path, agent="codex", prompt="x"))
    assert result == CODEX_PROMPT and CODEX_PROMPT in runner.copied
    result, runner, _ = run(make_plan(tmp_path, agent="codex", prompt=""))
    assert result is None and not runner.copied
    assert not any("AGENTS.md" in t or PROMPT_PATH in t for a in runner.argvs for t in a)


def test_codex_skills_go_to_agents_skills(tmp_path):
    a = tmp_path / "s1"
    a.mkdir()
    _, runner, _ = run(make_plan(tmp_path, agent="codex", skills=((str(a), "alpha"),)))
    assert ("guest", "cp", str(a), f"{CODEX_SKILLS}/alpha") in runner.argvs
    assert ("chown", "-R", "node:node", f"{CODEX_SKILLS}/alpha") in execs(runner, "root")
    assert not [x for x in runner.argvs if any(SKILLS_DIR in y for y in x)]


def test_codex_supervise_registers_with_codex_mcp_add_as_node(tmp_path):
    plan = make_plan(tmp_path, agent="codex", supervise=SupervisePlan(),
                     daemons=("egress", "pipelock", "supervise"))
    _, runner, logs = run(plan, addresses=SUP)
    assert ("codex", "mcp", "add", "supervise", "--url", "http://supervise:9100/mcp") in \
        execs(runner, "node")
    assert not [a for a in runner.argvs if "claude" in a]
    assert any("registered MCP server" in m for m in logs)
