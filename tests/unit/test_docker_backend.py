"""The reference docker backend, recorded (no engine): topology, secrets,
provisioning through `docker exec`/`docker cp`, readiness, teardown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bottle_ref.backends.docker import (
    DockerBackend,
    DockerBottle,
    DockerChannel,
    DockerError,
    DockerPlan,
    DaemonNotReady,
    daemon_probe_argv,
)
from bottle_ref.ca import ca_init_argv, ensure_ca
from bottle_api.host import HostContext
from bottle_ref.provision import CA_GUEST_PATH, PROMPT_PATH, SKILLS_DIR, ProvisionError
from bottle_api.runner import CommandError, RecordingRunner
from bottle_api.spec import BottleSpec, GitUser, Route, SpecError, Upstream
from bottle_ref.state import remove_state, write_state

TOKEN = "tok-VERY-distinctive-9f3a1c"
IDENT = "bottle-demo-0001"
LABEL = f"bottle-ref.bottle={IDENT}"
AGENT = f"{IDENT}-agent"


@pytest.fixture
def host(tmp_path) -> HostContext:
    return HostContext(env={"DEMO_TOKEN": TOKEN}, home=tmp_path / "home", cwd=tmp_path,
                       state_root=tmp_path / "state")


@pytest.fixture
def skill(tmp_path) -> Path:
    d = tmp_path / "skills" / "review"
    d.mkdir(parents=True)
    (d / "SKILL.md").write_text("# review\n")
    return d


def full_spec(skill: Path, **kw) -> BottleSpec:
    base = dict(
        name="demo", prompt="be brief", skills=(skill,),
        routes=(Route(host="api.example.org", token_env="DEMO_TOKEN"),),
        upstreams=(Upstream(name="app", url="https://example.org/app.git"),),
        git_user=GitUser(name="Ada", email="ada@example.org"), supervise=True,
    )
    base.update(kw)
    return BottleSpec(**base)


def launched(spec, host, runner=None, progress=None):
    backend = DockerBackend()
    plan = backend.prepare(spec, host)
    runner = runner or RecordingRunner()
    backend.script(runner, plan)
    bottle = backend.launch(plan, runner, **({"progress": progress} if progress else {}))
    return bottle, runner, plan


def creates(runner) -> dict[str, tuple[str, ...]]:
    """container name -> its docker create argv."""
    out = {}
    for argv in runner.argvs:
        if argv[:2] == ("docker", "create"):
            out[argv[argv.index("--name") + 1]] = argv
    return out


def connects(runner) -> set[tuple[str, str]]:
    """(network, container) pairs: create's --network plus network connect."""
    pairs = set()
    for argv in runner.argvs:
        if argv[:2] == ("docker", "create"):
            pairs.add((argv[argv.index("--network") + 1], argv[argv.index("--name") + 1]))
        if argv[:3] == ("docker", "network", "connect"):
            pairs.add((argv[-2], argv[-1]))
    return pairs


def net(role):
    return f"{IDENT}-{role}"


def ctr(role):
    return f"{IDENT}-{role}"


# -- prepare -------------------------------------------------------------------


def test_prepare_is_pure_and_deterministic(host, skill, monkeypatch):
    import subprocess

    def boom(*a, **k):
        raise AssertionError("prepare must not run a subprocess")

    monkeypatch.setattr(subprocess, "run", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    backend = DockerBackend()
    a = backend.prepare(full_spec(skill), host)
    b = backend.prepare(full_spec(skill), host)
    assert isinstance(a, DockerPlan) and a == b
    assert a.backend == "docker"
    assert a.egress.upstream_proxy == "http://pipelock:8888"
    assert "0.0.0.0:8888" in a.pipelock.config_yaml
    assert not Path(a.state_dir).exists()  # launch writes state, not prepare


def test_capabilities_and_name():
    assert DockerBackend.name == "docker"
    assert DockerBackend.capabilities == frozenset(
        {"live", "tty", "git_gate", "supervise", "codex", "claude"})


# -- topology --------------------------------------------------------------------


def test_networks_internal_flags_and_labels(host, skill):
    _, runner, _ = launched(full_spec(skill), host)
    made = {a[-1]: a for a in runner.argvs if a[:3] == ("docker", "network", "create")}
    assert set(made) == {net("agent"), net("bundle"), net("out")}
    assert "--internal" in made[net("agent")]
    assert "--internal" in made[net("bundle")]
    assert "--internal" not in made[net("out")]
    for argv in made.values():
        assert LABEL in argv
    for argv in creates(runner).values():
        assert argv[argv.index("--label") + 1] == LABEL


def test_routed_topology(host, skill):
    _, runner, _ = launched(full_spec(skill), host)
    pairs = connects(runner)
    assert {n for n, c in pairs if c == ctr("agent")} == {net("agent")}
    assert {n for n, c in pairs if c == ctr("pipelock")} == {net("bundle"), net("out")}
    assert {n for n, c in pairs if c == ctr("egress")} == {net("bundle"), net("agent")}
    assert {n for n, c in pairs if c == ctr("git-gate")} == {net("agent")}
    assert {n for n, c in pairs if c == ctr("supervise")} == {net("agent")}
    # only pipelock reaches the outside network
    assert {c for n, c in pairs if n == net("out")} == {ctr("pipelock")}
    agent = creates(runner)[ctr("agent")]
    assert "HTTPS_PROXY=http://egress:9099" in agent
    assert "HTTP_PROXY=http://egress:9099" in agent
    assert "NO_PROXY=git-gate,supervise" in agent


def test_unrouted_pipelock_is_the_agents_hop(host, skill):
    _, runner, plan = launched(full_spec(skill, routes=()), host)
    assert not plan.routed
    pairs = connects(runner)
    assert {n for n, c in pairs if c == ctr("egress")} == {net("bundle")}
    assert {n for n, c in pairs if c == ctr("pipelock")} == {net("bundle"), net("out"),
                                                               net("agent")}
    assert "HTTPS_PROXY=http://pipelock:8888" in creates(runner)[ctr("agent")]
    # Only the pipelock CA is generated; egress gets no CA mounts.
    assert [a for a in runner.argvs if a[0] == "openssl"] == [
        a for a in runner.argvs if a[0] == "openssl" and any("pipelock-ca" in x for x in a)]
    assert len([a for a in runner.argvs if a[0] == "openssl"]) == 1
    assert not any("/etc/egress/ca.pem" in x for x in creates(runner)[ctr("egress")])
    # The guest trusts pipelock's CA.
    cp = runner.find("docker", "cp", "*", f"{AGENT}:{CA_GUEST_PATH}")
    assert len(cp) == 1 and "pipelock-ca" in cp[0].argv[2]


def test_optional_daemons_absent_without_upstreams_or_supervise(host, skill):
    _, runner, _ = launched(full_spec(skill, upstreams=(), supervise=False), host)
    assert set(creates(runner)) == {ctr("pipelock"), ctr("egress"), ctr("agent")}
    assert not runner.find("docker", "exec", "*", "*", "*", "*", AGENT, "git", "config",
                           "--global", "url.*")


def test_no_published_ports_and_create_before_start(host, skill):
    _, runner, _ = launched(full_spec(skill), host)
    for argv in runner.argvs:
        if argv[:2] in (("docker", "create"), ("docker", "run")):
            assert "-p" not in argv and "--publish" not in argv and "-P" not in argv
            assert argv.count("--network") == 1  # API 1.41: one network at create
    argvs = runner.argvs
    for name in creates(runner):
        i_create = next(i for i, a in enumerate(argvs)
                        if a[:2] == ("docker", "create") and name in a)
        i_start = argvs.index(("docker", "start", name))
        i_connects = [i for i, a in enumerate(argvs)
                      if a[:3] == ("docker", "network", "connect") and a[-1] == name]
        assert all(i_create < i < i_start for i in i_connects)
        assert i_create < i_start


def test_bundle_daemons_and_readonly_config_mounts(host, skill):
    _, runner, plan = launched(full_spec(skill), host)
    c = creates(runner)
    state = Path(plan.state_dir)
    for role in ("pipelock", "egress", "git-gate", "supervise"):
        assert c[ctr(role)][-3:] == (plan.bundle_image_ref, "bottle-bundle", role)
    assert (f"type=bind,source={state / 'pipelock.yaml'},"
            "target=/etc/pipelock/pipelock.yaml,readonly") in c[ctr("pipelock")]
    assert (f"type=bind,source={state / 'pipelock-ca' / 'ca-key.pem'},"
            "target=/etc/pipelock/ca-key.pem,readonly") in c[ctr("pipelock")]
    assert (f"type=bind,source={state / 'egress-routes.yaml'},"
            "target=/etc/egress/routes.yaml,readonly") in c[ctr("egress")]
    assert (f"type=bind,source={state / 'egress-ca' / 'ca.pem'},"
            "target=/etc/egress/ca.pem,readonly") in c[ctr("egress")]
    assert "EGRESS_UPSTREAM_PROXY=http://pipelock:8888" in c[ctr("egress")]
    assert c[ctr("agent")][-3:] == ("sleep", plan.agent_image_ref, "infinity")
    # state files written with the plan's text
    assert (state / "pipelock.yaml").read_text() == plan.pipelock.config_yaml
    assert (state / "egress-routes.yaml").read_text() == plan.egress.routes_yaml
    for role in ("egress", "pipelock", "git-gate", "supervise", "agent"):
        assert ("docker", "start", ctr(role)) in runner.argvs


def test_images_inspected(host, skill):
    _, runner, plan = launched(full_spec(skill), host)
    assert runner.find("docker", "image", "inspect", plan.agent_image_ref)
    assert runner.find("docker", "image", "inspect", plan.bundle_image_ref)


def test_missing_image_is_a_clear_error_and_cleans_up(host, skill):
    backend = DockerBackend()
    plan = backend.prepare(full_spec(skill), host)
    runner = RecordingRunner().reply("docker", "image", "inspect", plan.bundle_image_ref,
                                     returncode=1, stderr="No such image")
    with pytest.raises(DockerError, match="bottle-bundle:latest.*not found"):
        backend.launch(plan, runner)
    assert not runner.find("docker", "network", "create")
    assert not Path(plan.state_dir).exists()


# -- secrets ------------------------------------------------------------------------


def test_token_value_never_on_argv_only_bare_slot(host, skill):
    _, runner, plan = launched(full_spec(skill), host)
    assert TOKEN in runner.secret_values
    for argv in runner.argvs:
        assert not any(TOKEN in a for a in argv), argv
    egress = creates(runner)[ctr("egress")]
    i = egress.index("BOTTLE_EGRESS_TOKEN_0")
    assert egress[i - 1] == "-e"
    call = next(c for c in runner.calls if c.argv == egress)
    assert call.env_names == ("BOTTLE_EGRESS_TOKEN_0",)
    # No other command received the token through env either.
    assert [c for c in runner.calls if c.env_names] == [call]
    assert TOKEN not in repr(plan)


def test_missing_token_is_a_spec_error_before_any_call(tmp_path, skill):
    host = HostContext(env={}, state_root=tmp_path / "state")
    spec = full_spec(skill, source="bottle.yaml",
                     lines={"egress.routes[0].token_env": 7})
    backend = DockerBackend()
    plan = backend.prepare(spec, host)
    runner = RecordingRunner()
    with pytest.raises(SpecError) as err:
        backend.launch(plan, runner)
    assert err.value.file == "bottle.yaml"
    assert err.value.key == "egress.routes[0].token_env"
    assert err.value.line == 7
    assert "DEMO_TOKEN" in str(err.value)
    assert runner.calls == []


def test_missing_forwarded_credential_file_is_a_spec_error(tmp_path):
    host = HostContext(env={}, state_root=tmp_path / "state")
    spec = BottleSpec(name="demo", agent="codex", forward_host_credentials=True,
                      source="bottle.yaml", lines={"forward_host_credentials": 3})
    backend = DockerBackend()
    plan = backend.prepare(spec, host)
    runner = RecordingRunner()
    with pytest.raises(SpecError, match=r"bottle.yaml:3: forward_host_credentials: .*codex"):
        backend.launch(plan, runner)
    assert runner.calls == []


# -- provisioning through docker ------------------------------------------------------


def test_ca_round_trip_is_one_cp_and_one_sh(host, skill):
    _, runner, plan = launched(full_spec(skill), host)
    cps = runner.find("docker", "cp", "*", f"{AGENT}:{CA_GUEST_PATH}")
    assert len(cps) == 1
    assert cps[0].argv[2] == str(Path(plan.state_dir) / "egress-ca" / "ca.pem")
    shs = runner.find("docker", "exec", "-u", "root", "-e", "HOME=/root", "-w", "/", AGENT,
                      "sh", "-c",
                      "*update-ca-certificates*")
    assert len(shs) == 1
    assert shs[0].argv[-1] == (f"chown root:root {CA_GUEST_PATH} && chmod 0644 "
                               f"{CA_GUEST_PATH} && update-ca-certificates")
    assert runner.argvs.index(cps[0].argv) + 1 == runner.argvs.index(shs[0].argv)


def test_ca_without_1_added_fails_launch_and_cleans_up(host, skill):
    backend = DockerBackend()
    plan = backend.prepare(full_spec(skill), host)
    runner = RecordingRunner().reply("docker", "exec", "-u", "root", "*", "*", AGENT, "sh",
                                     "-c", "*update-ca-certificates*",
                                     stdout="Updating certificates in /etc/ssl/certs...\n")
    with pytest.raises(ProvisionError, match="1 added"):
        backend.launch(plan, runner)
    assert runner.argvs[-2][:3] == ("docker", "rm", "-f")
    assert runner.argvs[-1][:3] == ("docker", "network", "rm")
    assert not Path(plan.state_dir).exists()


@pytest.mark.parametrize("user,expected", [
    (GitUser(), []),
    (GitUser(name="Ada", email="ada@example.org"),
     [("user.name", "Ada"), ("user.email", "ada@example.org")]),
    (GitUser(name="Ada"), [("user.name", "Ada")]),
    (GitUser(email="ada@example.org"), [("user.email", "ada@example.org")]),
])
def test_git_user_as_node_with_home(host, skill, user, expected):
    _, runner, _ = launched(full_spec(skill, git_user=user), host)
    calls = [c.argv for c in runner.find("docker", "exec", "*", "*", "*", "*", AGENT, "git",
                                         "config", "--global", "user.*")]
    assert calls == [("docker", "exec", "-u", "node", "-e", "HOME=/home/node", AGENT,
                      "git", "config", "--global", k, v) for k, v in expected]


def test_insteadof_points_at_git_gate_alias(host, skill):
    _, runner, _ = launched(full_spec(skill), host)
    assert ("docker", "exec", "-u", "node", "-e", "HOME=/home/node", AGENT, "git", "config",
            "--global", "url.git://git-gate:9418/app.git.insteadOf",
            "https://example.org/app.git") in runner.argvs


def test_prompt_contract(host, skill):
    with_prompt, _, _ = launched(full_spec(skill), host)
    assert with_prompt.prompt_path == PROMPT_PATH
    assert "--append-system-prompt-file" in with_prompt.agent_argv()
    no_prompt, runner, _ = launched(full_spec(skill, prompt=""), host)
    assert no_prompt.prompt_path is None
    assert "--append-system-prompt-file" not in no_prompt.agent_argv()
    # the file is still copied
    assert runner.find("docker", "cp", "*", f"{AGENT}:{PROMPT_PATH}")


def test_skills_copied_and_chowned(host, skill):
    _, runner, _ = launched(full_spec(skill), host)
    assert ("docker", "cp", str(skill), f"{AGENT}:{SKILLS_DIR}/review") in runner.argvs
    assert ("docker", "exec", "-u", "root", "-e", "HOME=/root", "-w", "/", AGENT, "chown", "-R",
            "node:node", f"{SKILLS_DIR}/review") in runner.argvs


def test_missing_skill_dir_fails_and_cleans_up(host, tmp_path):
    backend = DockerBackend()
    plan = backend.prepare(full_spec(tmp_path / "absent"), host)
    runner = RecordingRunner()
    backend.script(runner, plan)
    with pytest.raises(ProvisionError, match="absent"):
        backend.launch(plan, runner)
    assert runner.calls == []  # checked before anything was created


def test_mcp_failure_logged_not_fatal(host, skill):
    runner = RecordingRunner().reply("docker", "exec", "-u", "node", "*", "*", AGENT,
                                     "claude", "mcp", "add", returncode=1,
                                     stderr="mcp: config locked")
    lines: list[str] = []
    bottle, runner, _ = launched(full_spec(skill), host, runner=runner, progress=lines.append)
    assert isinstance(bottle, DockerBottle)
    assert any("supervise" in x and "config locked" in x for x in lines)
    assert not runner.find("docker", "rm")
    mcp = runner.find("docker", "exec", "-u", "node", "-e", "HOME=/home/node", AGENT, "claude",
                      "mcp", "add", "--scope", "user", "--transport", "http", "supervise",
                      "http://supervise:9100/mcp")
    assert len(mcp) == 1


# -- readiness -------------------------------------------------------------------------


def test_readiness_polls_without_fixed_sleep(host, skill):
    runner = RecordingRunner().reply("docker", "exec", AGENT, "true", returncode=1, times=2)
    _, runner, _ = launched(full_spec(skill), host, runner=runner)
    kinds = [(c.kind, c.argv) for c in runner.calls]
    probes = [i for i, (k, a) in enumerate(kinds) if a == ("docker", "exec", AGENT, "true")]
    sleeps = [i for i, (k, _) in enumerate(kinds) if k == "sleep"]
    assert len(probes) == 3 and len(sleeps) == 2
    assert probes[0] < sleeps[0] < probes[1] < sleeps[1] < probes[2]
    # nothing else runs in the guest before it answered
    first_guest = next(i for i, (k, a) in enumerate(kinds)
                       if a[:2] in (("docker", "cp"),) or (a[:2] == ("docker", "exec")
                                                           and a[2] == "-u"))
    assert first_guest > probes[2]
    assert kinds[probes[0] - 1][1] == ("docker", "start", AGENT)


def test_readiness_timeout_cleans_up(host, skill):
    runner = RecordingRunner().reply("docker", "exec", AGENT, "true", returncode=1)
    backend = DockerBackend()
    plan = backend.prepare(full_spec(skill), host)
    with pytest.raises(TimeoutError, match="agent container"):
        backend.launch(plan, runner)
    assert runner.find("docker", "rm", "-f")
    total = sum(c.seconds for c in runner.calls if c.kind == "sleep")
    assert 30 <= total <= 31


def probe(role, port):
    return ("docker", "exec", ctr(role), "python3", "-c",
            f"import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()")


def test_daemon_probe_argv_dials_loopback_inside_the_container():
    assert tuple(daemon_probe_argv(ctr("egress"), 9099)) == probe("egress", 9099)


def test_daemon_probes_after_daemons_start_before_launch_returns(host, skill):
    seen: list[str] = []
    _, runner, _ = launched(full_spec(skill), host, progress=seen.append)
    argvs = runner.argvs
    expected = [probe("egress", 9099), probe("pipelock", 8888),
                probe("git-gate", 9418), probe("supervise", 9100)]
    at = [argvs.index(p) for p in expected]
    assert at == sorted(at)  # first hop, the pipelock behind it, then the rest
    for role, i in zip(("egress", "pipelock", "git-gate", "supervise"), at):
        assert argvs.index(("docker", "start", ctr(role))) < i
    # the agent's readiness probe stays the first guest exec, provisioning
    # (guest files only) comes next, and launch returns only once every
    # daemon answered: the probes are its last commands
    assert argvs.index(("docker", "exec", AGENT, "true")) < at[0]
    last_provision = max(i for i, a in enumerate(argvs)
                         if a[:2] == ("docker", "cp") or a[:3] == ("docker", "exec", "-u"))
    assert last_provision < at[0] and at[-1] == len(argvs) - 1
    assert "waiting for bundle daemons" in seen


def test_unrouted_probes_only_pipelock(host, skill):
    _, runner, _ = launched(full_spec(skill, routes=(), upstreams=(), supervise=False), host)
    probes = [a for a in runner.argvs if a[:2] == ("docker", "exec") and "python3" in a
              and not any(x.startswith("import json") for x in a)]  # not the claude.json merge
    assert probes == [probe("pipelock", 8888)]


def test_daemon_probe_failures_are_retried_with_runner_sleep(host, skill):
    runner = RecordingRunner().reply(*probe("egress", 9099), returncode=1, times=2)
    _, runner, _ = launched(full_spec(skill), host, runner=runner)
    calls = runner.calls
    tries = [i for i, c in enumerate(calls) if c.argv == probe("egress", 9099)]
    assert [calls[i].returncode for i in tries] == [1, 1, 0]
    for a, b in zip(tries, tries[1:]):
        assert [c.kind for c in calls[a + 1:b]] == ["sleep"]
    assert runner.argvs[-1] == probe("supervise", 9100)  # went on to the rest


def test_never_ready_daemon_fails_launch_and_cleans_up(host, skill):
    runner = RecordingRunner().reply(*probe("git-gate", 9418), returncode=1)
    backend = DockerBackend()
    plan = backend.prepare(full_spec(skill), host)
    backend.script(runner, plan)
    with pytest.raises(DaemonNotReady, match=rf"git-gate .*9418.*{ctr('git-gate')}"):
        backend.launch(plan, runner)
    total = sum(c.seconds for c in runner.calls if c.kind == "sleep")
    assert 30 <= total <= 31
    assert runner.find(*probe("supervise", 9100)) == []  # gave up at git-gate
    assert runner.argvs[-2][:3] == ("docker", "rm", "-f") and ctr("git-gate") in runner.argvs[-2]
    assert runner.argvs[-1][:3] == ("docker", "network", "rm")
    assert not Path(plan.state_dir).exists()


def test_a_daemon_whose_container_exited_fails_launch_at_once_with_its_own_line(host, skill):
    """A daemon that refused to start (its container exited: pipelock on a CA
    certgen.go LoadCA refuses) is not polled out to the 30 s bound: launch
    fails at the first probe with the daemon's own line from docker logs."""
    refusal = ("pipelock: refusing to start: load TLS CA: parse CA key: CA key must be "
               "ECDSA, got *rsa.PrivateKey (run 'pipelock tls init' to generate)")
    runner = (RecordingRunner()
              .reply(*probe("pipelock", 8888), returncode=1,
                     stderr=f"Error response from daemon: container {ctr('pipelock')} is not running")
              .reply("docker", "logs", "--tail", "20", ctr("pipelock"),
                     stderr=f"bottle-bundle: started pipelock (pid 7)\n{refusal}\n"
                            "bottle-bundle: pipelock exited with code 2; stopping the bundle\n"))
    backend = DockerBackend()
    plan = backend.prepare(full_spec(skill), host)
    backend.script(runner, plan)
    with pytest.raises(DaemonNotReady) as info:
        backend.launch(plan, runner)
    assert str(info.value) == (f"bundle daemon pipelock exited before accepting connections on "
                               f"port 8888 inside {ctr('pipelock')}: {refusal}")
    assert len(runner.find(*probe("pipelock", 8888))) == 1
    assert sum(c.seconds for c in runner.calls if c.kind == "sleep") < 1
    assert runner.argvs[-1][:3] == ("docker", "network", "rm")  # cleaned up
    assert not Path(plan.state_dir).exists()


# -- failure midway -------------------------------------------------------------------


def test_failure_midway_removes_exactly_what_was_created(host, skill):
    # The failed create is removed too: a resource is recorded BEFORE its
    # create (crash safety), and a create that failed client-side may still
    # have happened in the engine; removing a missing name is harmless.
    runner = RecordingRunner().reply("docker", "create", "--name", ctr("git-gate"),
                                     returncode=125, stderr="Conflict")
    backend = DockerBackend()
    plan = backend.prepare(full_spec(skill), host)
    with pytest.raises(CommandError, match="Conflict"):
        backend.launch(plan, runner)
    assert runner.argvs[-2] == ("docker", "rm", "-f", ctr("git-gate"), ctr("egress"),
                                ctr("pipelock"))
    assert runner.argvs[-1] == ("docker", "network", "rm", net("out"), net("bundle"),
                                net("agent"))
    assert not Path(plan.state_dir).exists()


# -- bottle -----------------------------------------------------------------------------


def test_agent_argv_tty_and_not(host, skill):
    bottle, _, _ = launched(full_spec(skill), host)
    assert bottle.agent_argv(["--resume"], tty=True) == [
        "docker", "exec", "-i", "-t", "-u", "node", "-e", "HOME=/home/node", "-w",
        "/home/node", AGENT, "claude", "--append-system-prompt-file", PROMPT_PATH, "--resume"]
    no_tty = bottle.agent_argv(["-p", "hi"], tty=False)
    assert no_tty == [
        "docker", "exec", "-i", "-u", "node", "-e", "HOME=/home/node", "-w", "/home/node",
        AGENT, "claude", "--append-system-prompt-file", PROMPT_PATH, "-p", "hi"]


def test_codex_never_gets_prompt_flag(host, skill):
    bottle, _, _ = launched(full_spec(skill, agent="codex"), host)
    argv = bottle.agent_argv(["exec", "hi"], tty=False)
    assert argv[argv.index(AGENT) + 1:] == ["codex", "exec", "hi"]


def test_exec_frames_user_and_keeps_env_values_off_argv(host, skill):
    bottle, runner, _ = launched(full_spec(skill), host)
    bottle.exec(["id", "-u"], user="root", env={"PROBE": "value-xyz"}, timeout=5)
    call = runner.calls[-1]
    assert call.argv == ("docker", "exec", "-u", "root", "-e", "HOME=/root", "-e", "PROBE",
                         "-w", "/", AGENT, "id", "-u")
    assert call.env_names == ("PROBE",) and call.timeout == 5
    bottle.exec(["true"])
    assert runner.argvs[-1][:6] == ("docker", "exec", "-u", "node", "-e", "HOME=/home/node")


def test_close_idempotent_and_removes_state(host, skill):
    bottle, runner, plan = launched(full_spec(skill), host)
    assert Path(plan.state_dir).is_dir()
    bottle.close()
    n = len(runner.calls)
    assert runner.argvs[-2] == ("docker", "rm", "-f", ctr("routes"), ctr("agent"),
                                ctr("supervise"), ctr("git-gate"), ctr("egress"),
                                ctr("pipelock"))
    assert runner.argvs[-1] == ("docker", "network", "rm", net("out"), net("bundle"),
                                net("agent"))
    assert not Path(plan.state_dir).exists()
    bottle.close()
    assert len(runner.calls) == n


def test_close_tolerates_missing_resources(host, skill):
    bottle, runner, _ = launched(full_spec(skill), host)
    runner.reply("docker", "rm", returncode=1, stderr="No such container")
    runner.reply("docker", "network", "rm", returncode=1, stderr="No such network")
    bottle.close()  # no raise


def test_close_raises_when_docker_keeps_a_network(host, skill):
    """A network docker refuses to remove is not ignored: close() names it,
    keeps the state dir, and a later close() tries again."""
    bottle, runner, plan = launched(full_spec(skill), host)
    runner.reply("docker", "network", "rm", returncode=1,
                 stderr="Error response from daemon: error while removing network: "
                        "network has active endpoints")
    runner.reply("docker", "network", "inspect", stdout=net("agent") + "\n")
    with pytest.raises(DockerError, match=net("agent")):
        bottle.close()
    assert Path(plan.state_dir).is_dir()
    n = len(runner.calls)
    with pytest.raises(DockerError):
        bottle.close()
    assert len(runner.calls) > n, "a failed close() must be retried, not marked done"


def test_close_names_the_engines_reason_not_the_clis_exit_line(host, skill):
    """`docker network rm` ends its stderr with "exit status 1" whenever a
    name failed (docker/cli cli/command/network/remove.go: each error, then
    ``cli.StatusError{Status: "exit status " + strconv.Itoa(status)}``); the
    error carries the daemon's reason instead."""
    bottle, runner, _ = launched(full_spec(skill), host)
    runner.reply("docker", "network", "rm", returncode=1,
                 stderr="Error response from daemon: error while removing network: "
                        f"network {net('agent')} id 362f has active endpoints\nexit status 1\n")
    runner.reply("docker", "network", "inspect", stdout=net("agent") + "\n")
    with pytest.raises(DockerError) as info:
        bottle.close()
    assert "has active endpoints" in str(info.value), str(info.value)
    assert "exit status" not in str(info.value), str(info.value)


_ACTIVE = ("Error response from daemon: error while removing network: network {n} id 362f "
           "has active endpoints\nexit status 1\n")
_ENDPOINTS = ("docker", "network", "inspect", "--format", "{{.Name}}{{range .Containers}}*")


def test_close_frees_a_stale_endpoint_of_its_own_container_and_removes_again(host, skill):
    """Docker 20.10 under load can keep a removed container's endpoint (an
    iptables step of its release failing): the network then stays "in use"
    by nothing. close() drops that endpoint (`network disconnect -f`, its
    own container's name only) and removes the network once more."""
    bottle, runner, plan = launched(full_spec(skill), host)
    runner.reply("docker", "network", "rm", returncode=1, stderr=_ACTIVE.format(n=net("agent")),
                 times=1, first=True)
    runner.reply("docker", "network", "inspect", "--format", "{{.Name}}",
                 stdout=net("agent") + "\n", times=1, first=True)
    runner.reply(*_ENDPOINTS, stdout=f"{net('agent')} {ctr('agent')}\n", first=True)
    bottle.close()
    assert not Path(plan.state_dir).exists()
    freed = [a for a in runner.argvs if a[:3] == ("docker", "network", "disconnect")]
    assert freed == [("docker", "network", "disconnect", "-f", net("agent"), ctr("agent"))]
    removes = [a for a in runner.argvs if a[:3] == ("docker", "network", "rm")]
    assert len(removes) == 2 and removes[1] == ("docker", "network", "rm", net("agent"))


def test_close_leaves_an_endpoint_that_is_not_its_own_and_says_why(host, skill):
    """A container the bottle did not create on its network (someone
    else's) is never disconnected: close() raises with the engine's reason."""
    bottle, runner, plan = launched(full_spec(skill), host)
    runner.reply("docker", "network", "rm", returncode=1, stderr=_ACTIVE.format(n=net("agent")),
                 first=True)
    runner.reply("docker", "network", "inspect", "--format", "{{.Name}}",
                 stdout=net("agent") + "\n", first=True)
    runner.reply(*_ENDPOINTS, stdout=f"{net('agent')} someone-elses-container\n", first=True)
    with pytest.raises(DockerError) as info:
        bottle.close()
    assert net("agent") in str(info.value) and "has active endpoints" in str(info.value)
    assert not [a for a in runner.argvs if a[:3] == ("docker", "network", "disconnect")]
    removes = [a for a in runner.argvs if a[:3] == ("docker", "network", "rm")]
    assert len(removes) == 2, "a network that stays is removed once more, then reported"
    assert Path(plan.state_dir).is_dir()


def test_close_does_not_retry_against_an_engine_that_does_not_answer(host, skill):
    """A retry is for an engine that answers: one that does not (each
    command could wait out its timeout) gets none, and close() says so."""
    bottle, runner, plan = launched(full_spec(skill), host)
    runner.reply("docker", returncode=1, stderr=UNREACHABLE, first=True)
    with pytest.raises(DockerError) as info:
        bottle.close()
    assert "Cannot connect" in str(info.value)
    assert len([a for a in runner.argvs if a[:3] == ("docker", "network", "rm")]) == 1
    assert not [c for c in runner.calls if c.kind == "sleep"]


def test_close_tries_a_network_removal_once_more_after_a_pause(host, skill):
    """A removal that fails for a moment (docker's iptables steps racing
    under load) is not yet a leftover: one more try, after a pause."""
    bottle, runner, plan = launched(full_spec(skill), host)
    runner.reply("docker", "network", "rm", returncode=1, times=1, first=True,
                 stderr="Error response from daemon: error while removing network: iptables "
                        "failed: iptables --wait -D FORWARD -j DOCKER-USER: iptables: Bad rule "
                        "(does a matching rule exist in that chain?).\n (exit status 1))\n"
                        "exit status 1\n")
    runner.reply("docker", "network", "inspect", "--format", "{{.Name}}",
                 stdout=net("agent") + "\n", times=1, first=True)
    bottle.close()
    assert not Path(plan.state_dir).exists()
    removes = [i for i, c in enumerate(runner.calls) if c.argv[:3] == ("docker", "network", "rm")]
    assert len(removes) == 2
    between = runner.calls[removes[0]:removes[1]]
    assert any(c.kind == "sleep" and c.seconds > 0 for c in between), "no pause before the retry"


def test_agent_networks_give_the_host_no_address_and_no_default_route(host, skill):
    _, runner, _ = launched(full_spec(skill), host)
    creates = [a for a in runner.argvs if a[:3] == ("docker", "network", "create")]
    for a in creates:
        internal = "--internal" in a
        assert internal == ("com.docker.network.bridge.inhibit_ipv4=true" in a), a
    assert sum("--internal" in a for a in creates) == 2
    routes = [a for a in runner.argvs if a[:2] == ("docker", "run") and ctr("routes") in a]
    assert len(routes) == 1 and f"container:{ctr('agent')}" in routes[0]
    assert "NET_ADMIN" in routes[0]
    agent = [a for a in runner.argvs if a[:2] == ("docker", "create")
             and a[a.index("--name") + 1] == ctr("agent")]
    assert agent, "no agent container created"
    # issue 16: every capability dropped, only GUEST_CAPS added back, never NET_ADMIN
    a = list(agent[0])
    added = [a[i + 1] for i, x in enumerate(a) if x == "--cap-add"]
    assert a[a.index("--cap-drop") + 1] == "ALL" and a.index("--cap-drop") < a.index("--cap-add")
    assert added == ["CHOWN", "DAC_OVERRIDE", "FOWNER"], added


def test_handle_and_attach_round_trip(host, skill):
    bottle, runner, plan = launched(full_spec(skill), host)
    handle = bottle.handle()
    assert handle == {"ident": IDENT,
                      "containers": [ctr(r) for r in ("pipelock", "egress", "git-gate",
                                                       "supervise", "agent", "routes")],
                      "networks": [net("agent"), net("bundle"), net("out")]}
    again = DockerBackend().attach(plan, runner, handle)
    assert again.agent_argv(["x"]) == bottle.agent_argv(["x"])
    again.close()
    assert runner.argvs[-2][:3] == ("docker", "rm", "-f")


def test_channel_framing():
    ch = DockerChannel("c1")
    assert ch.exec_argv(["ls"]) == ["docker", "exec", "-u", "node", "-e", "HOME=/home/node",
                                    "c1", "ls"]
    assert ch.exec_argv(["sh"], user="root", tty=True, env={"A": "1"}) == [
        "docker", "exec", "-i", "-t", "-u", "root", "-e", "HOME=/root", "-e", "A=1", "-w", "/",
        "c1", "sh"]
    assert ch.copy_argv("/h/f", "/g/f") == ["docker", "cp", "/h/f", "c1:/g/f"]


def test_live_unavailable(tmp_path):
    ok = RecordingRunner()
    assert DockerBackend().live_unavailable(ok) is None
    assert ok.argvs[0][:2] == ("docker", "info")
    down = RecordingRunner().reply("docker", "info", returncode=1,
                                   stderr="Cannot connect to the Docker daemon")
    reason = DockerBackend().live_unavailable(down)
    assert reason and "Cannot connect" in reason


# -- ca / state helpers -------------------------------------------------------------------


def test_ensure_ca_argv_and_key_mode(tmp_path):
    runner = RecordingRunner()
    ca = ensure_ca(runner, tmp_path / "ca")
    assert runner.argvs == [tuple(ca_init_argv(tmp_path / "ca"))]
    argv = runner.argvs[0]
    assert argv[argv.index("-keyout") + 1] == str(tmp_path / "ca" / "ca-key.pem")
    assert argv[argv.index("-out") + 1] == str(tmp_path / "ca" / "ca.pem")
    assert stat.S_IMODE(os.stat(ca.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "ca").st_mode) == 0o700


def test_ensure_ca_skips_existing(tmp_path):
    d = tmp_path / "ca"
    d.mkdir()
    (d / "ca.pem").write_text("x")
    (d / "ca-key.pem").write_text("y")
    runner = RecordingRunner()
    ensure_ca(runner, d)
    assert runner.argvs == []


@pytest.mark.skipif(not any((Path(p) / "openssl").exists()
                            for p in os.environ.get("PATH", "").split(":")),
                    reason="openssl not installed")
def test_ensure_ca_real_openssl(tmp_path):
    from bottle_api.runner import SubprocessRunner

    ca = ensure_ca(SubprocessRunner(), tmp_path / "ca", common_name="test CA")
    assert "BEGIN CERTIFICATE" in ca.cert.read_text()
    assert "PRIVATE KEY" in ca.key.read_text()
    assert stat.S_IMODE(os.stat(ca.key).st_mode) == 0o600


def test_write_and_remove_state(host, skill):
    plan = DockerBackend().prepare(full_spec(skill), host)
    files = write_state(plan)
    assert files.pipelock_yaml.read_text() == plan.pipelock.config_yaml
    assert stat.S_IMODE(os.stat(files.dir).st_mode) == 0o700
    remove_state(plan.state_dir)
    remove_state(plan.state_dir)
    assert not files.dir.exists()


# -- issue 17: close() needs proof each resource is gone ------------------------------

UNREACHABLE = ("Cannot connect to the Docker daemon at unix:///nonexistent.sock. "
               "Is the docker daemon running?")


def test_close_against_an_unreachable_engine_raises_and_keeps_state(host, skill):
    """A failed `docker inspect` is not "none exist": with the engine
    unreachable, close() names what may still run and keeps the state dir."""
    bottle, runner, plan = launched(full_spec(skill), host)
    runner.reply("docker", returncode=1, stderr=UNREACHABLE, first=True)
    with pytest.raises(DockerError) as info:
        bottle.close()
    message = str(info.value)
    assert ctr("egress") in message and net("out") in message
    assert "Cannot connect" in message
    assert Path(plan.state_dir).is_dir()
    n = len(runner.calls)
    with pytest.raises(DockerError):
        bottle.close()
    assert len(runner.calls) > n, "a failed close() must be retried"


def test_close_takes_no_such_object_as_proof(host, skill):
    """`docker inspect` answering "No such object" for every name proves
    they are gone, even though inspect itself exits 1."""
    bottle, runner, plan = launched(full_spec(skill), host)
    runner.reply("docker", "rm", returncode=1, stderr=UNREACHABLE, first=True)
    runner.reply("docker", "network", "rm", returncode=1, stderr="boom", first=True)
    names = [*bottle.containers, *bottle.networks]
    runner.reply("docker", "inspect", returncode=1,
                 stderr="".join(f"Error: No such object: {n}\n" for n in bottle.containers))
    runner.reply("docker", "network", "inspect", returncode=1,
                 stderr="".join(f"Error response from daemon: network {n} not found\n"
                                for n in bottle.networks))
    assert names
    bottle.close()
    assert not Path(plan.state_dir).exists()


def test_up_with_an_unreachable_engine_says_so_not_image_not_found(host, skill):
    runner = RecordingRunner().reply("docker", "image", "inspect", returncode=1,
                                     stderr=UNREACHABLE)
    with pytest.raises(DockerError) as info:
        launched(full_spec(skill), host, runner=runner)
    assert "unreachable" in str(info.value) and "Cannot connect" in str(info.value)
    assert "not found" not in str(info.value)


def test_a_missing_image_is_still_named(host, skill):
    runner = RecordingRunner().reply(
        "docker", "image", "inspect", returncode=1,
        stderr="Error response from daemon: No such image: claude-bottle:latest")
    with pytest.raises(DockerError, match="not found in the docker engine"):
        launched(full_spec(skill), host, runner=runner)


def test_every_launch_makes_a_fresh_ca_key(host, skill):
    """A state dir left behind (a kill, an older bug) must not hand its CA
    private key to the next launch of that name: launch starts from an
    empty state dir and generates the CA anew."""
    spec = full_spec(skill)
    plan = DockerBackend().prepare(spec, host)
    stale = Path(plan.state_dir) / "pipelock-ca"
    stale.mkdir(parents=True)
    (stale / "ca.pem").write_text("OLD CERT")
    (stale / "ca-key.pem").write_text("OLD KEY")
    (Path(plan.state_dir) / "leftover").write_text("x")
    _, runner, _ = launched(spec, host)
    assert tuple(ca_init_argv(stale, common_name="bottle-ref pipelock CA")) in runner.argvs
    assert (stale / "ca-key.pem").read_text() != "OLD KEY"
    assert not (Path(plan.state_dir) / "leftover").exists()


def test_a_failed_launch_whose_cleanup_also_fails_keeps_the_launch_error(host, skill):
    runner = RecordingRunner()
    runner.reply("docker", "create", "--name", f"{IDENT}-egress", returncode=125,
                 stderr="docker: Error response from daemon: Conflict.")
    runner.reply("docker", "rm", returncode=1, stderr=UNREACHABLE)
    runner.reply("docker", "inspect", returncode=1, stderr=UNREACHABLE)
    with pytest.raises(CommandError, match="Conflict") as info:
        launched(full_spec(skill), host, runner=runner)
    assert any("cleanup after failed launch also failed" in n and ctr("pipelock") in n
               for n in getattr(info.value, "__notes__", []))


# -- issue 16: the hardened agent container -------------------------------------------


def test_agent_container_is_hardened_with_the_spec_limits(host, skill):
    import dataclasses

    from bottle_api.spec import Limits

    spec = dataclasses.replace(full_spec(skill), limits=Limits(memory_mib=1024, pids=300,
                                                                 cpus=1.5))
    bottle, runner, _ = launched(spec, host)
    agent = next(list(a) for a in runner.argvs
                 if a[:2] == ("docker", "create") and a[a.index("--name") + 1].endswith("-agent"))

    def value(flag):
        return [agent[i + 1] for i, x in enumerate(agent) if x == flag]

    assert value("--security-opt") == ["no-new-privileges"]
    assert value("--memory") == ["1024m"] and value("--memory-swap") == ["1024m"]
    assert value("--pids-limit") == ["300"] and value("--cpus") == ["1.5"]
    assert value("--sysctl") == ["net.ipv6.conf.all.disable_ipv6=1",
                                 "net.ipv6.conf.default.disable_ipv6=1"]
    declared = bottle.guest_privileges()
    assert declared.root_caps == {"CHOWN", "DAC_OVERRIDE", "FOWNER"} and declared.no_new_privs
    assert (declared.memory_bytes, declared.pids, declared.cpus) == (1024 << 20, 300, 1.5)


def test_root_execs_start_in_slash_node_execs_do_not():
    from bottle_ref.backends.docker import docker_exec_argv

    root = docker_exec_argv("c", ["python3", "-c", "import json"], user="root")
    assert root[root.index("-w") + 1] == "/" and root.index("-w") < root.index("c")
    assert "-w" not in docker_exec_argv("c", ["true"], user="node")
    assert docker_exec_argv("c", ["true"], user="root", workdir="/tmp")[-3:-1] == ["/tmp", "c"]


# -- issue 19: overlapped launch steps (Runner.concurrent) ---------------------------------


class _ConcurrentRecorder(RecordingRunner):
    """A recording runner that lets the backend overlap its steps (the order
    of its record then means nothing; the set of commands does)."""

    concurrent = True

    def __init__(self, fail: str | None = None):
        super().__init__()
        import threading

        self._lock = threading.Lock()
        self.fail = fail

    def run(self, argv, **kw):
        with self._lock:
            result = super().run(argv, **kw)
        if self.fail and self.fail in " ".join(map(str, argv)):
            raise CommandError(result.__class__(tuple(argv), 1, "", "injected"))
        return result


def test_an_overlapped_launch_runs_the_same_commands_and_joins_before_the_daemon_probes(
        host, skill):
    """With a concurrent runner the launch runs exactly the commands of the
    serial (recorded) one, every daemon's start before any readiness probe
    of the daemons, and the routes helper and the CA step before launch
    returns."""
    _, serial, _ = launched(full_spec(skill), host)
    bottle, overlapped, _ = launched(full_spec(skill), host, runner=_ConcurrentRecorder())
    assert sorted(overlapped.argvs) == sorted(serial.argvs)
    argvs = overlapped.argvs
    probes = [i for i, a in enumerate(argvs) if a[:2] == ("docker", "exec")
              and not a[2].startswith("-") and not a[2].endswith("-agent")]
    starts = [i for i, a in enumerate(argvs) if a[:2] == ("docker", "start")]
    helpers = [i for i, a in enumerate(argvs) if a[:2] == ("docker", "run")]
    ca = [i for i, a in enumerate(argvs) if "update-ca-certificates" in " ".join(a)]
    assert probes and starts and helpers and ca
    assert max(starts + helpers + ca) < min(probes), argvs


def test_an_overlapped_launch_that_fails_closes_after_every_step_ended(host, skill):
    """A step failing in a background thread fails the launch, and close()
    (docker rm -f) runs only after every step it started has ended: nothing
    is created after the teardown."""
    runner = _ConcurrentRecorder(fail="-supervise")
    with pytest.raises(CommandError):
        launched(full_spec(skill), runner=runner, host=host)
    argvs = runner.argvs
    rm = [i for i, a in enumerate(argvs) if a[:3] == ("docker", "rm", "-f")]
    assert rm, argvs
    made = [i for i, a in enumerate(argvs) if a[:2] in (("docker", "create"), ("docker", "start"),
                                                         ("docker", "run"))
            or a[:3] == ("docker", "network", "create")]
    assert max(made) < rm[0], argvs
