"""The smolmachines reference backend, through the RecordingRunner (no smolvm here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bottle_ref import pty_resize
from bottle_api.host import CLAUDE_CREDENTIALS, HostContext
from bottle_api.plan import to_json
from bottle_ref.provision import CA_GUEST_PATH, ProvisionError
from bottle_ref.resume import resume_with_fallback
from bottle_api.runner import CommandError, RecordingRunner
from bottle_api.spec import BottleSpec, GitUser, Route, SpecError, Upstream
from bottle_ref.backends.smolmachines import (
    PTY_RESIZE_SCRIPT,
    LaunchError,
    SmolmachinesBackend,
    SmolmachinesPlan,
    SmolvmChannel,
    artifact_path,
    guest_addresses,
    mount_socket_specs,
    resolve_socket_route,
    socket_daemons,
    parse_port,
)
from bottle_ref.backends.docker import DaemonNotReady

TOKEN = "tok-REAL-secret-value-1234567890"
IDENT = "bottle-demo-0001"
NODE_PREFIX = ["-e", "HOME=/home/node", "-e", "USER=node"]
RUNUSER = ["runuser", "-u", "node", "--"]


# -- fixtures -----------------------------------------------------------------

@pytest.fixture
def backend():
    return SmolmachinesBackend()


@pytest.fixture
def host(tmp_path):
    return HostContext(env={"GH_TOKEN": TOKEN}, home=tmp_path / "home", cwd=tmp_path,
                       state_root=tmp_path / "state" / "bottle-ref")


@pytest.fixture
def socket_root():
    """A socket root (XDG_RUNTIME_DIR) of this test's own, for the tests that
    look at the socket folder on disk: /tmp/<ident> is shared by every
    process launching a "demo" bottle at once (xdist workers, other runs on
    the machine), and another's close() removed it under this test's host
    relay, which then failed to listen and the launch failed."""
    path = Path(tempfile.mkdtemp(prefix="bsock-", dir="/tmp"))  # short: sun_path
    yield path
    shutil.rmtree(path, ignore_errors=True)


def spec(**kw) -> BottleSpec:
    return BottleSpec(name=kw.pop("name", "demo"), **kw)


ROUTE = Route(host="api.github.com", token_env="GH_TOKEN")


def smol_runner(version="1.9.3"):
    """A recorded runner whose `smolvm --version` answers like smolvm's clap
    (`#[command(version)]` on `smolvm`: "smolvm X.Y.Z", 1.9.3 src/main.rs)."""
    return RecordingRunner().reply("smolvm", "--version", stdout=f"smolvm {version}\n")


def launched(backend, host, s, *, runner=None, script=True, **kw):
    plan = backend.prepare(s, host)
    runner = runner or smol_runner()
    if script:
        backend.script(runner, plan)
    bottle = backend.launch(plan, runner, **kw)
    return plan, runner, bottle


def smol_execs(runner):
    return [a for a in runner.argvs if a[:3] == ("smolvm", "machine", "exec")]


def after_dashdash(argv):
    argv = list(argv)
    return argv[argv.index("--") + 1:]


def before_dashdash(argv):
    argv = list(argv)
    return argv[:argv.index("--")]


def env_flags(argv):
    """``-e K=V`` values before ``--`` as a dict."""
    head = before_dashdash(argv) if "--" in argv else list(argv)
    return dict(head[i + 1].split("=", 1) for i, a in enumerate(head[:-1]) if a == "-e" and "=" in head[i + 1])


def index_of(runner, *prefix):
    for i, argv in enumerate(runner.argvs):
        if argv[:len(prefix)] == prefix:
            return i
    raise AssertionError(f"no call starting {prefix}")


# -- prepare ------------------------------------------------------------------

def test_prepare_is_pure_and_deterministic(backend, host, tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("prepare ran a subprocess")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    s = spec(routes=(ROUTE,), upstreams=(Upstream("app", "https://example.invalid/app.git"),),
             supervise=True, prompt="be nice")
    a, b = backend.prepare(s, host), backend.prepare(s, host)
    assert a == b and to_json(a) == to_json(b)
    assert isinstance(a, SmolmachinesPlan) and a.backend == "smolmachines"
    assert not (tmp_path / "state").exists()  # nothing written, no artifact dir, no state dir
    assert not artifact_path(a).parent.exists()


def test_prepare_carries_an_image_ref_never_an_artifact(backend, host):
    plan = backend.prepare(spec(), host)
    assert plan.agent_image_ref == "claude-bottle:latest"
    assert ".smolmachine" not in to_json(plan)


def test_sockets_are_one_per_agent_facing_daemon(backend, host):
    """Issue 14: one --mount-socket per agent-facing daemon, host end
    <state_dir>/sockets/<daemon>.sock, guest end /run/bottle/<daemon>.sock."""
    plain = backend.prepare(spec(), host)
    full = backend.prepare(spec(routes=(ROUTE,), supervise=True,
                                upstreams=(Upstream("app", "https://example.invalid/app.git"),)),
                           host)
    assert socket_daemons(plain) == ("pipelock",)
    assert socket_daemons(full) == ("egress", "git-gate", "supervise")
    assert full.socket_root == "/tmp"
    assert mount_socket_specs(full, "bottle-x-1") == [
        f"/tmp/bottle-x-1/{d}.sock:/run/bottle/{d}.sock" for d in ("egress", "git-gate", "supervise")]
    run = backend.prepare(spec(), replace(host, env={"XDG_RUNTIME_DIR": "/run/user/7/"}))
    assert mount_socket_specs(run, "b-1") == ["/run/user/7/b-1/pipelock.sock:/run/bottle/pipelock.sock"]
    a = guest_addresses(full)
    assert (a.proxy_url, a.git_gate_url, a.supervise_url) == (
        "http://127.0.0.1:9099", "git://127.0.0.1:9418", "http://127.0.0.1:9100/mcp")
    assert guest_addresses(plain).proxy_url == "http://127.0.0.1:8888"


@pytest.mark.parametrize("system,env,want", [
    ("Linux", {}, "bind-mount"), ("Darwin", {}, "host-relay"),
    ("Linux", {"BOTTLE_SMOL_SOCKET_ROUTE": "host-relay"}, "host-relay"),
    ("Darwin", {"BOTTLE_SMOL_SOCKET_ROUTE": "bind-mount"}, "bind-mount"),
])
def test_socket_route_by_host_and_override(system, env, want):
    """Docker Desktop on macOS does not pass Unix sockets through bind mounts."""
    assert resolve_socket_route(env, system) == want


def test_socket_route_override_is_checked(backend, host):
    with pytest.raises(ValueError, match="BOTTLE_SMOL_SOCKET_ROUTE"):
        backend.prepare(spec(), replace(host, env={"BOTTLE_SMOL_SOCKET_ROUTE": "tsi"}))


def test_vm_size_from_env_and_validated(backend, host):
    plan = backend.prepare(spec(), replace(host, env={"BOTTLE_SMOL_CPUS": "4", "BOTTLE_SMOL_MEM_MIB": "8192"}))
    assert (plan.cpus, plan.mem_mib) == (4, 8192)
    with pytest.raises(ValueError, match="BOTTLE_SMOL_CPUS"):
        backend.prepare(spec(), replace(host, env={"BOTTLE_SMOL_CPUS": "zero"}))


def fetch_listen(plan):
    return yaml.safe_load(plan.pipelock.config_yaml)["fetch_proxy"]["listen"]


def test_pipelock_stays_bundle_internal_when_routed(backend, host):
    routed = backend.prepare(spec(routes=(ROUTE,)), host)
    plain = backend.prepare(spec(), host)
    assert routed.routed and fetch_listen(routed) == "127.0.0.1:8888"
    # the bundle's socket relay dials pipelock on loopback: nothing published
    assert not plain.routed and fetch_listen(plain) == "127.0.0.1:8888"
    assert routed.egress.upstream_proxy == "http://127.0.0.1:8888"


def test_auto_routes_count_as_routed_for_pipelock_listen(backend, host):
    creds = json.dumps({"claudeAiOauth": {"accessToken": TOKEN, "refreshToken": "r",
                                          "expiresAt": 1_900_000_000_000, "scopes": ["user:inference"]}})
    h = replace(host, home_files={CLAUDE_CREDENTIALS: creds})
    plan = backend.prepare(spec(forward_host_credentials=True), h)
    assert plan.routed and fetch_listen(plan) == "127.0.0.1:8888"


# -- launch: the whole conversation ---------------------------------------------

def test_launch_argv_for_a_plain_bottle(backend, host):
    plan, runner, bottle = launched(backend, host, spec())
    art = str(artifact_path(plan))
    state = Path(plan.state_dir)
    assert bottle.ident == IDENT and bottle.machine == IDENT
    argvs = runner.argvs
    assert ("docker", "image", "inspect", "--format", "{{.Id}}", "claude-bottle:latest") in argvs
    assert ("docker", "image", "inspect", "--format", "{{.Id}}", "bottle-bundle:latest") in argvs
    # The version check comes first of all (smolvm >= 1.8.0, issue 8).
    assert argvs[0] == ("smolvm", "--version")
    # Saved beside the cache under a per-launch name, renamed when complete.
    assert ("docker", "save", "-o", f"{art}.{IDENT}.partial", "claude-bottle:latest") in argvs
    assert not [a for a in argvs if a[:2] == ("smolvm", "pack")]
    assert ("docker", "network", "create", "--label", f"bottle-ref.bottle={IDENT}",
            f"{IDENT}-net") in argvs
    run = next(a for a in argvs if a[:2] == ("docker", "run"))
    assert list(run) == [
        "docker", "run", "-d", "--name", f"{IDENT}-bundle", "--network", f"{IDENT}-net",
        "--label", f"bottle-ref.bottle={IDENT}",
        "--mount", f"type=bind,source={state}/pipelock.yaml,target=/etc/pipelock/pipelock.yaml,readonly",
        "--mount", f"type=bind,source={state}/pipelock-ca/ca.pem,target=/etc/pipelock/ca.pem,readonly",
        "--mount", f"type=bind,source={state}/pipelock-ca/ca-key.pem,target=/etc/pipelock/ca-key.pem,readonly",
        "--mount", f"type=bind,source={state}/egress-routes.yaml,target=/etc/egress/routes.yaml,readonly",
        "--mount", f"type=bind,source=/tmp/{IDENT},target=/run/bottle/sockets",
        "-e", "BOTTLE_SOCKET_RELAYS=unix:/run/bottle/sockets/pipelock.sock=tcp:127.0.0.1:8888",
        "-e", "EGRESS_UPSTREAM_PROXY=http://127.0.0.1:8888",
        "bottle-bundle:latest", "bottle-bundle", "egress,pipelock",
    ]
    assert not runner.find("docker", "port")
    proxy = "http://127.0.0.1:8888"
    no_proxy = "127.0.0.1,localhost"
    assert ("smolvm", "machine", "create", "--name", IDENT, "-I", art, "--cpus", "2", "--mem", "4096",
            "--mount-socket", f"/tmp/{IDENT}/pipelock.sock:/run/bottle/pipelock.sock",
            "-e", "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
            "-e", f"HTTPS_PROXY={proxy}", "-e", f"https_proxy={proxy}",
            "-e", f"HTTP_PROXY={proxy}", "-e", f"http_proxy={proxy}",
            "-e", f"NO_PROXY={no_proxy}", "-e", f"no_proxy={no_proxy}",
            "-w", "/home/node") in argvs
    assert ("smolvm", "machine", "start", "--name", IDENT) in argvs
    assert ("smolvm", "machine", "exec", "--name", IDENT, "--", "true") in argvs
    # CA: one cp of the pipelock CA (unrouted), one root sh -c.
    assert ("smolvm", "machine", "cp", str(state / "pipelock-ca" / "ca.pem"),
            f"{IDENT}:{CA_GUEST_PATH}") in argvs
    ca_exec = next(a for a in argvs if any("update-ca-certificates" in t for t in a))
    assert list(ca_exec[:8]) == ["smolvm", "machine", "exec", "--name", IDENT, "-w", "/", "--"]
    assert ca_exec[8:10] == ("sh", "-c") and len(ca_exec) == 11
    # ordering: image -> pack -> bundle -> port -> create -> start -> probe -> provision
    order = [index_of(runner, "smolvm", "--version"),
             index_of(runner, "docker", "image", "inspect"), index_of(runner, "docker", "save"),
             index_of(runner, "docker", "network", "create"), index_of(runner, "docker", "run"),
             index_of(runner, "docker", "exec"), index_of(runner, "smolvm", "machine", "create"),
             index_of(runner, "smolvm", "machine", "start"),
             index_of(runner, "smolvm", "machine", "exec", "--name", IDENT, "--", "true"),
             index_of(runner, "smolvm", "machine", "cp")]
    assert order == sorted(order)


def test_launch_never_calls_docker_build_or_pack_outside_launch(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    assert runner.calls == []  # script only adds replies
    backend.launch(plan, runner)
    assert not [a for a in runner.argvs if a[:2] == ("docker", "build")]
    assert len(runner.find("docker", "save")) == 1
    assert runner.find("smolvm", "pack") == []


def test_save_is_skipped_when_the_archive_is_cached(backend, host):
    plan = backend.prepare(spec(), host)
    art = artifact_path(plan)
    assert art.parent == Path(plan.state_dir).parent.parent / "smolmachines"
    # Absolute and *.tar: smolvm's classify takes it as a local archive.
    assert art.is_absolute() and art.name.startswith("agent-") and art.suffix == ".tar"
    assert len(art.stem) == len("agent-") + 16
    art.parent.mkdir(parents=True)
    art.write_bytes(b"cached")
    runner = smol_runner()
    backend.script(runner, plan)
    backend.launch(plan, runner)
    assert runner.find("docker", "save") == []
    create = runner.find("smolvm", "machine", "create")[0].argv
    assert create[create.index("-I") + 1] == str(art)


def test_artifact_is_keyed_by_image_ref(backend, host):
    a = backend.prepare(spec(), host)
    b = backend.prepare(spec(image="other:1"), host)
    assert artifact_path(a) != artifact_path(b)
    assert artifact_path(a) == artifact_path(backend.prepare(spec(name="other"), host))


def test_artifact_follows_the_image_id_and_is_renamed_into_place(backend, host):
    """Rebuilding an image under the same tag saves it again; a completed
    save appears under the cache name only once it is whole."""
    plan = backend.prepare(spec(), host)
    assert artifact_path(plan, "sha256:aaa") != artifact_path(plan, "sha256:bbb")
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("docker", "image", "inspect", "--format", "{{.Id}}", "claude-bottle:latest",
                 stdout="sha256:aaa\n", first=True)
    real_run = runner.run

    def run(argv, **kw):
        if tuple(argv[:2]) == ("docker", "save"):
            Path(argv[argv.index("-o") + 1]).write_bytes(b"saved")
        return real_run(argv, **kw)

    runner.run = run
    backend.launch(plan, runner).close()
    art = artifact_path(plan, "sha256:aaa")
    assert art.read_bytes() == b"saved"
    assert list(art.parent.glob("*.partial")) == []
    create = runner.find("smolvm", "machine", "create")[0].argv
    assert create[create.index("-I") + 1] == str(art)


def test_failed_save_leaves_no_cached_archive_and_cleans_up(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("docker", "save", returncode=1, stderr="save failed")
    art = artifact_path(plan)
    art.parent.mkdir(parents=True)

    real_run = runner.run

    written = []

    def run(argv, **kw):  # a save that dies half-way leaves a partial file
        if tuple(argv[:2]) == ("docker", "save"):
            out = Path(argv[argv.index("-o") + 1])
            out.write_bytes(b"partial")
            written.append(out)
        return real_run(argv, **kw)

    runner.run = run
    with pytest.raises(CommandError, match="save failed"):
        backend.launch(plan, runner)
    assert written and not any(p.exists() for p in written)
    assert not art.exists()
    assert runner.find("docker", "network", "rm", f"{IDENT}-net")
    assert not Path(plan.state_dir).exists()


# -- ports ----------------------------------------------------------------------

FULL = dict(routes=(ROUTE,), supervise=True,
            upstreams=(Upstream("app", "https://example.invalid/app.git"),))


def published(runner):
    run = runner.find("docker", "run")[0].argv
    return [run[i + 1] for i, a in enumerate(run) if a == "-p"]


def mounted_sockets(runner):
    create = runner.find("smolvm", "machine", "create")[0].argv
    return [create[i + 1] for i, a in enumerate(create) if a == "--mount-socket"]


@pytest.mark.parametrize("kw,daemons", [
    ({}, ["pipelock"]),
    ({"routes": (ROUTE,)}, ["egress"]),
    ({"upstreams": (Upstream("app", "https://example.invalid/app.git"),)},
     ["pipelock", "git-gate"]),
    ({"supervise": True}, ["pipelock", "supervise"]),
    (FULL, ["egress", "git-gate", "supervise"]),
])
def test_one_socket_per_agent_facing_daemon_and_no_port(backend, host, kw, daemons):
    """Issue 14 (bind-mount route): the bundle publishes nothing; the guest
    gets one --mount-socket per agent-facing daemon and no network flag."""
    plan, runner, _ = launched(backend, host, spec(**kw))
    assert plan.socket_route == "bind-mount"
    assert published(runner) == [] and not runner.find("docker", "port")
    assert mounted_sockets(runner) == [f"/tmp/{IDENT}/{d}.sock:/run/bottle/{d}.sock"
                                       for d in daemons]
    run = runner.find("docker", "run")[0].argv
    assert f"type=bind,source=/tmp/{IDENT},target=/run/bottle/sockets" in run
    relays = next(a for a in run if a.startswith("BOTTLE_SOCKET_RELAYS="))
    from bottle_api.plan import PORTS
    assert relays.split("=", 1)[1].split() == [
        f"unix:/run/bottle/sockets/{d}.sock=tcp:127.0.0.1:{PORTS[d]}" for d in daemons]
    create = runner.find("smolvm", "machine", "create")[0].argv
    for flag in ("--net", "--allow-cidr", "--allow-host", "--outbound-localhost-only",
                 "--dns", "--network", "-p", "--port", "--net-backend"):
        assert flag not in create


def test_guest_addresses_are_loopback_relays(backend, host):
    plan, runner, bottle = launched(backend, host, spec(**FULL))
    create = runner.find("smolvm", "machine", "create")[0].argv
    env = dict(create[i + 1].split("=", 1) for i, a in enumerate(create) if a == "-e")
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://127.0.0.1:9099"
    assert env["NO_PROXY"] == "127.0.0.1,localhost"
    assert bottle.addresses.git_gate_url == "git://127.0.0.1:9418"
    assert bottle.addresses.supervise_url == "http://127.0.0.1:9100/mcp"
    insteadof = [a for a in smol_execs(runner) if "url.git://127.0.0.1:9418/app.git.insteadOf" in a]
    assert len(insteadof) == 1 and after_dashdash(insteadof[0])[:4] == RUNUSER
    mcp = [a for a in smol_execs(runner) if "mcp" in a]
    assert mcp and mcp[0][-1] == "http://127.0.0.1:9100/mcp"


def test_guest_relay_is_copied_as_root_and_started_as_root(backend, host):
    """The relay: stdlib-only file copied to a root-owned absolute path
    (machine cp writes as root), started as root (no runuser) under a
    restart loop, mapping each daemon port to its mounted socket; launch
    returns once the guest's loopback ports answer."""
    from bottle_ref.backends.smolmachines import GUEST_RELAY, SOCKET_RELAY_SCRIPT
    plan, runner, _ = launched(backend, host, spec(**FULL))
    argvs = runner.argvs
    cp = ("smolvm", "machine", "cp", SOCKET_RELAY_SCRIPT, f"{IDENT}:{GUEST_RELAY}")
    assert cp in argvs and GUEST_RELAY.startswith("/usr/local/")
    start = next(a for a in argvs if "setsid" in " ".join(a))
    assert "runuser" not in start and "while :; do python3" in " ".join(start)
    assert list(start[-4:]) == [GUEST_RELAY, "tcp:127.0.0.1:9099=unix:/run/bottle/egress.sock",
                                "tcp:127.0.0.1:9418=unix:/run/bottle/git-gate.sock",
                                "tcp:127.0.0.1:9100=unix:/run/bottle/supervise.sock"]
    probe = argvs[-1]
    assert probe[:3] == ("smolvm", "machine", "exec") and probe[-3:] == ("9099", "9418", "9100")
    assert argvs.index(cp) < argvs.index(start) < len(argvs) - 1
    text = Path(SOCKET_RELAY_SCRIPT).read_text()
    imports = {m.split()[1].split(".")[0] for m in text.splitlines()
               if m.startswith(("import ", "from ")) and "__future__" not in m}
    assert imports <= {"os", "socket", "stat", "sys", "threading", "collections"}, imports


def test_host_relay_lines_written_at_once_are_all_read(backend, host, socket_root, tmp_path,
                                                        monkeypatch):
    """A relay that reports every socket in one write (as a fast relay on a
    loaded host does) is seen at once: the launch reads the pipe itself, so
    no line waits in a buffer select() cannot see until the timeout."""
    import bottle_ref.backends.smolmachines as smol

    fake = tmp_path / "relay.py"
    fake.write_text("import sys, time\n"
                    "sys.stdout.write(''.join(f'ok {m}\\n' for m in sys.argv[1:]))\n"
                    "sys.stdout.flush()\n"
                    "time.sleep(60)\n")
    monkeypatch.setattr(smol, "SOCKET_RELAY_SCRIPT", str(fake))
    monkeypatch.setattr(smol, "HOST_RELAY_TIMEOUT", 10.0)
    h = replace(host, env={**host.env, "BOTTLE_SMOL_SOCKET_ROUTE": "host-relay",
                           "XDG_RUNTIME_DIR": str(socket_root)})
    plan = backend.prepare(spec(supervise=True), h)
    (Path(plan.state_dir)).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pid = smol.start_host_relay(plan, "bottle-demo-0001", {p: 40000 + i for i, p in
                                                          enumerate(smol.PORTS.values())})
    try:
        assert time.monotonic() - started < 5, "lines already written were waited for"
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_host_relay_route_publishes_loopback_and_runs_a_host_relay(backend, host, socket_root):
    """macOS route: the bundle publishes the agent-facing ports on host
    127.0.0.1 (engine-chosen) and a host relay serves the sockets; its pid
    file is in the state dir and close() stops it and removes the sockets."""
    h = replace(host, env={**host.env, "BOTTLE_SMOL_SOCKET_ROUTE": "host-relay",
                           "XDG_RUNTIME_DIR": str(socket_root)})
    plan, runner, bottle = launched(backend, h, spec(supervise=True))
    try:
        assert published(runner) == ["127.0.0.1::8888", "127.0.0.1::9100"]
        assert fetch_listen(plan) == "0.0.0.0:8888"  # docker's forward dials it
        pid = int((Path(plan.state_dir) / "host-relay.pid").read_text())
        os.kill(pid, 0)  # alive
        for d in ("pipelock", "supervise"):
            assert (socket_root / IDENT / f"{d}.sock").is_socket()
    finally:
        bottle.close()
    with pytest.raises((ProcessLookupError, ChildProcessError)):
        os.kill(pid, 0)  # close() stopped and reaped it
    assert not (socket_root / IDENT).exists()


def test_missing_bundle_sockets_fail_launch_clearly_and_clean_up(backend, host, socket_root):
    host = replace(host, env={**host.env, "XDG_RUNTIME_DIR": str(socket_root)})
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("docker", "exec", f"{IDENT}-bundle", "sh", "-c", returncode=1)
    with pytest.raises(LaunchError, match="sockets"):
        backend.launch(plan, runner)
    assert runner.find("smolvm", "machine", "create") == []
    assert runner.find("docker", "rm", "-f", f"{IDENT}-bundle")
    assert not Path(plan.state_dir).exists() and not (socket_root / IDENT).exists()


@pytest.mark.parametrize("out", ["", "garbage", "127.77.1.1:", "127.77.1.1:http", "127.0.0.1:70000"])
def test_unparsable_docker_port_is_a_clear_error(out):
    with pytest.raises(LaunchError, match="docker port"):
        parse_port(out, container="b-bundle", port=8888)


def test_parse_port_takes_the_first_line():
    assert parse_port("127.77.3.4:40001\n[::]:40002\n", container="c", port=1) == 40001


# -- readiness ------------------------------------------------------------------

def test_readiness_polls_with_no_fixed_sleep(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("smolvm", "machine", "exec", "--name", IDENT, "--", "true", returncode=1, times=2)
    backend.launch(plan, runner)
    kinds = [(c.kind, c.argv) for c in runner.calls]
    start = kinds.index(("run", ("smolvm", "machine", "start", "--name", IDENT)))
    probe = ("run", ("smolvm", "machine", "exec", "--name", IDENT, "--", "true"))
    # the first probe comes straight after start: no sleep first
    assert kinds[start + 1] == probe
    window = runner.calls[start + 1:start + 6]
    assert [c.kind for c in window] == ["run", "sleep", "run", "sleep", "run"]
    sleeps = [c.seconds for c in runner.calls if c.kind == "sleep"]
    assert len(sleeps) == 2 and all(s < 1.5 for s in sleeps)
    # no exec but the probe before readiness
    last_probe = max(i for i, k in enumerate(kinds) if k == probe)
    early = [k for k in kinds[start + 1:last_probe] if k[0] == "run" and k != probe]
    assert early == []


def test_readiness_timeout_is_bounded_and_cleans_up(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("smolvm", "machine", "exec", "--name", IDENT, "--", "true", returncode=1)
    with pytest.raises(TimeoutError, match=IDENT):
        backend.launch(plan, runner)
    assert runner.monotonic() <= backend.ready_timeout + 1
    assert runner.find("smolvm", "machine", "delete", "--name", IDENT, "-f")
    assert runner.find("smolvm", "machine", "cp") == []  # never provisioned


def bundle_probe(port):
    return ("docker", "exec", f"{IDENT}-bundle", "python3", "-c",
            f"import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()")


def test_socket_probe_before_the_machine_daemon_probes_last(backend, host):
    """The bundle's sockets exist before the machine is created (the stand-in
    bind-mounts them); the daemons start while the VM boots and are probed
    after provisioning; the guest relay's probe is the last command."""
    seen: list[str] = []
    _, runner, _ = launched(backend, host, spec(**FULL), progress=seen.append)
    argvs = runner.argvs
    expected = [bundle_probe(p) for p in (9099, 8888, 9418, 9100)]
    at = [argvs.index(p) for p in expected]
    assert at == sorted(at)  # egress, pipelock behind it, git-gate, supervise
    sockets = next(i for i, a in enumerate(argvs)
                   if a[:3] == ("docker", "exec", f"{IDENT}-bundle") and "test -S" in a[-1])
    assert argvs[sockets][-1] == " && ".join(
        f"test -S /run/bottle/sockets/{d}.sock" for d in ("egress", "git-gate", "supervise"))
    create = argvs.index(runner.find("smolvm", "machine", "create")[0].argv)
    assert sockets < create
    assert argvs.index(("smolvm", "machine", "exec", "--name", IDENT, "--", "true")) < at[0]
    last_provision = max(i for i, a in enumerate(argvs) if a[:3] == ("smolvm", "machine", "cp"))
    assert last_provision < at[0] and at[-1] == len(argvs) - 2
    assert argvs[-1][-3:] == ("9099", "9418", "9100")  # the guest relay answers
    assert seen.index("waiting for bundle daemons") < seen.index("waiting for the guest relay")


def test_unrouted_bundle_probes_only_pipelock(backend, host):
    _, runner, _ = launched(backend, host, spec())
    probes = [a for a in runner.argvs if a[:2] == ("docker", "exec") and "test -S" not in a[-1]]
    assert probes == [bundle_probe(8888)]


def test_bundle_probe_failures_are_retried_with_runner_sleep(backend, host):
    runner = smol_runner().reply(*bundle_probe(8888), returncode=1, times=2)
    _, runner, _ = launched(backend, host, spec(routes=(ROUTE,)), runner=runner)
    calls = runner.calls
    tries = [i for i, c in enumerate(calls) if c.argv == bundle_probe(8888)]
    assert [calls[i].returncode for i in tries] == [1, 1, 0]
    for a, b in zip(tries, tries[1:]):
        assert [c.kind for c in calls[a + 1:b]] == ["sleep"]


def test_never_ready_daemon_fails_launch_and_cleans_up(backend, host):
    plan = backend.prepare(spec(routes=(ROUTE,)), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply(*bundle_probe(9099), returncode=1, first=True)
    with pytest.raises(DaemonNotReady, match=rf"egress .*9099.*{IDENT}-bundle"):
        backend.launch(plan, runner)
    total = sum(c.seconds for c in runner.calls if c.kind == "sleep")
    assert backend.daemon_timeout <= total <= backend.daemon_timeout + 1
    assert runner.find(*bundle_probe(8888)) == []  # gave up at the first hop
    assert runner.argvs[-4:] == teardown_argvs()
    assert not Path(plan.state_dir).exists()


# -- failure cleanup --------------------------------------------------------------

def teardown_argvs():
    return [("smolvm", "machine", "stop", "--name", IDENT),
            ("smolvm", "machine", "delete", "--name", IDENT, "-f"),
            ("docker", "rm", "-f", f"{IDENT}-bundle"),
            ("docker", "network", "rm", f"{IDENT}-net")]


def test_failed_start_tears_everything_down_then_reraises(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("smolvm", "machine", "start", returncode=1, stderr="krun: boom")
    with pytest.raises(CommandError, match="krun: boom"):
        backend.launch(plan, runner)
    assert runner.argvs[-4:] == teardown_argvs()
    assert not Path(plan.state_dir).exists()


def test_failed_ca_provisioning_is_clear_and_cleans_up(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("smolvm", "machine", "exec", contains="update-ca-certificates",
                 stdout="Killed\n", returncode=137, first=True)
    with pytest.raises(ProvisionError, match="1 added"):
        backend.launch(plan, runner)
    assert runner.argvs[-4:] == teardown_argvs()


def test_missing_image_is_clear_and_cleans_up(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("docker", "image", "inspect", "--format", "{{.Id}}", "bottle-bundle:latest",
                 returncode=1, stderr="Error response from daemon: no such image: "
                                      "bottle-bundle:latest: No such image: bottle-bundle:latest")
    with pytest.raises(LaunchError, match="bundle image 'bottle-bundle:latest' not found"):
        backend.launch(plan, runner)
    assert runner.find("smolvm", "pack") == []
    assert runner.argvs[-4:] == teardown_argvs()


def test_missing_token_is_a_spec_error_before_anything(backend, host):
    s = replace(spec(routes=(ROUTE,)), source="bottle.yaml",
                lines={"egress.routes[0].token_env": 7})
    plan = backend.prepare(s, replace(host, env={}))
    runner = smol_runner()
    with pytest.raises(SpecError) as err:
        backend.launch(plan, runner)
    assert str(err.value) == ("bottle.yaml:7: egress.routes[0].token_env: "
                              "token environment variable is not set on the host")
    assert runner.calls == []
    assert not Path(plan.state_dir).exists()


# -- secrets ----------------------------------------------------------------------

def test_token_never_on_argv(backend, host):
    plan, runner, bottle = launched(backend, host, spec(routes=(ROUTE,), supervise=True))
    assert TOKEN in runner.secret_values  # it did travel, via env=
    assert not any(TOKEN in a for argv in runner.argvs for a in argv)
    run_call = runner.find("docker", "run")[0]
    run = list(run_call.argv)
    assert run[run.index("BOTTLE_EGRESS_TOKEN_0") - 1] == "-e"  # bare name
    assert run_call.env_names == ("BOTTLE_EGRESS_TOKEN_0",)
    assert TOKEN not in repr(plan) and TOKEN not in json.dumps(bottle.handle())
    # the egress CA (routed) is what the guest trusts
    cp = runner.find("smolvm", "machine", "cp")[0].argv
    assert cp[3].endswith("egress-ca/ca.pem")


def test_exec_refuses_a_token_on_argv(backend, host):
    _, runner, bottle = launched(backend, host, spec(routes=(ROUTE,)))
    n = len(runner.calls)
    with pytest.raises(ValueError, match="token value"):
        bottle.exec(["env"], env={"LEAK": TOKEN})
    assert len(runner.calls) == n


# -- provisioning as node -----------------------------------------------------------

def test_every_node_exec_sets_home_and_user(backend, host, tmp_path):
    skill = tmp_path / "skills" / "review"
    skill.mkdir(parents=True)
    s = spec(prompt="hello", skills=(skill,), supervise=True, git_user=GitUser("Ann", "a@x.invalid"),
             upstreams=(Upstream("app", "https://example.invalid/app.git"),))
    _, runner, _ = launched(backend, host, s)
    execs = smol_execs(runner)
    node = [a for a in execs if after_dashdash(a)[:4] == RUNUSER]
    root = [a for a in execs if after_dashdash(a)[:4] != RUNUSER]
    # mkdir skills, insteadOf, user.name, user.email, mcp add, claude.json merge
    assert len(node) == 6
    for argv in node:
        assert list(argv[5:9]) == NODE_PREFIX, argv
        assert "runuser" not in before_dashdash(argv)
    for argv in root:  # root: the probe, chown/chmod/update-ca, the relay's chmod, start, probe
        assert "HOME=/home/node" not in argv
        assert after_dashdash(argv)[0] in ("true", "sh", "chown", "chmod", "python3"), argv


@pytest.mark.parametrize("git_user,expected", [
    (GitUser(), []),
    (GitUser("Ann", "ann@x.invalid"), [("user.name", "Ann"), ("user.email", "ann@x.invalid")]),
    (GitUser(name="Ann"), [("user.name", "Ann")]),
    (GitUser(email="ann@x.invalid"), [("user.email", "ann@x.invalid")]),
])
def test_git_user_runs_as_node_via_runuser(backend, host, git_user, expected):
    _, runner, _ = launched(backend, host, spec(git_user=git_user))
    calls = [a for a in smol_execs(runner) if "config" in a and any(t.startswith("user.") for t in a)]
    assert [tuple(a[-2:]) for a in calls] == expected
    for argv in calls:
        assert list(argv) == ["smolvm", "machine", "exec", "--name", IDENT, *NODE_PREFIX, "--",
                              *RUNUSER, "git", "config", "--global", *argv[-2:]]


def test_mcp_add_runs_as_node(backend, host):
    plan, runner, bottle = launched(backend, host, spec(supervise=True))
    (mcp,) = [a for a in smol_execs(runner) if "mcp" in a]
    url = "http://127.0.0.1:9100/mcp"
    assert list(mcp) == ["smolvm", "machine", "exec", "--name", IDENT, *NODE_PREFIX, "--", *RUNUSER,
                         "claude", "mcp", "add", "--scope", "user", "--transport", "http",
                         "supervise", url]


def test_mcp_failure_is_logged_not_fatal(backend, host):
    plan = backend.prepare(spec(supervise=True), host)
    runner = smol_runner()
    backend.script(runner, plan)
    runner.reply("smolvm", "machine", "exec", contains="mcp", returncode=1, stderr="no claude")
    seen: list[str] = []
    bottle = backend.launch(plan, runner, progress=seen.append)
    assert any("MCP registration failed" in m for m in seen)
    assert not runner.find("smolvm", "machine", "delete")
    assert bottle.ident == IDENT


def test_progress_is_reported_before_slow_steps(backend, host):
    seen: list[str] = []
    launched(backend, host, spec(), progress=seen.append)
    joined = "\n".join(seen)
    for word in ("checking smolvm", "saving", "bundle", "machine", "provisioning"):
        assert word in joined


# -- exec framing -----------------------------------------------------------------

def test_channel_exec_and_copy_argv():
    ch = SmolvmChannel("m1")
    assert ch.exec_argv(["id"]) == ["smolvm", "machine", "exec", "--name", "m1", *NODE_PREFIX,
                                    "--", *RUNUSER, "id"]
    # issue 16: a root exec starts in / (never node's workdir)
    assert ch.exec_argv(["id"], user="root") == ["smolvm", "machine", "exec", "--name", "m1",
                                                 "-w", "/", "--", "id"]
    assert ch.exec_argv(["id"], user="root", env={"A": "1"}) == [
        "smolvm", "machine", "exec", "--name", "m1", "-e", "A=1", "-w", "/", "--", "id"]
    assert ch.exec_argv(["sh"], env={"A": "1"}, tty=True) == [
        "smolvm", "machine", "exec", "--name", "m1", *NODE_PREFIX, "-e", "A=1", "-i", "-t",
        "--", *RUNUSER, "sh"]
    assert ch.copy_argv("/h/f", "/g/f") == ["smolvm", "machine", "cp", "/h/f", "m1:/g/f"]
    with pytest.raises(ValueError, match="node"):
        ch.exec_argv(["id"], user="www-data")
    with pytest.raises(ValueError):
        ch.exec_argv(["id"], env={"A=B": "c"})


@pytest.mark.parametrize("agent", ["claude", "codex"])
@pytest.mark.parametrize("tty", [True, False])
def test_agent_argv_runs_the_agent_as_node(backend, host, agent, tty):
    plan, _, bottle = launched(backend, host, spec(agent=agent, prompt="be brief"))
    argv = bottle.agent_argv(["--model", "x"], tty=tty)
    i = argv.index(agent)
    assert argv[i - 4:i] == RUNUSER  # runuser precedes the agent binary
    assert argv[:i].count("--") == (3 if tty else 2)  # wrapper, smolvm exec, runuser
    inner = argv[4:] if tty else argv
    assert inner[:5] == ["smolvm", "machine", "exec", "--name", IDENT]
    assert inner[5:9] == NODE_PREFIX
    env = env_flags(inner)
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:8888"
    for key, value in plan.guest_env.items():
        assert env[key] == value
    head = before_dashdash(inner)
    assert (head[-2:] == ["-i", "-t"]) == tty
    assert ("-t" in head) == tty and ("-i" in head) == tty
    tail = argv[i:]
    if agent == "claude":
        assert tail == ["claude", "--append-system-prompt-file", "/home/node/.claude-bottle-prompt.txt",
                        "--model", "x"]
    else:
        assert tail == ["codex", "--model", "x"]  # the prompt flag is claude's alone
        assert env["CODEX_CA_CERTIFICATE"] == "/etc/ssl/certs/ca-certificates.crt"


def test_no_prompt_flag_without_a_prompt(backend, host):
    _, _, bottle = launched(backend, host, spec(prompt=""))
    assert "--append-system-prompt-file" not in bottle.agent_argv(tty=False)


def test_tty_wrapper_is_the_absolute_stdlib_script(backend, host):
    _, _, bottle = launched(backend, host, spec())
    with_tty = bottle.agent_argv(tty=True)
    assert with_tty[1] == PTY_RESIZE_SCRIPT
    assert os.path.isabs(PTY_RESIZE_SCRIPT) and os.path.isfile(PTY_RESIZE_SCRIPT)
    assert Path(PTY_RESIZE_SCRIPT) == Path(pty_resize.__file__).resolve()
    assert "-m" not in with_tty[:2]
    assert with_tty[2:4] == [IDENT, "--"]
    assert with_tty[4:] == bottle.agent_argv(tty=False)[:5] + with_tty[9:]
    no_tty = bottle.agent_argv(tty=False)
    assert not any("pty_resize" in a for a in no_tty)
    assert no_tty[0] == "smolvm"


def test_resume_wrap_keeps_runuser_before_sh(backend, host):
    _, _, bottle = launched(backend, host, spec())
    out = resume_with_fallback(bottle.agent_argv(tty=True))
    sh = out.index("sh")
    assert out[sh - 4:sh] == RUNUSER
    assert out[1] == PTY_RESIZE_SCRIPT
    assert out[sh + 1:] == ["-c", "claude --continue || claude"]


def test_exec_frames_user_and_env(backend, host):
    plan, runner, bottle = launched(backend, host, spec())
    runner.reply("smolvm", "machine", "exec", contains="whoami", stdout="node\n", first=True)
    result = bottle.exec(["whoami"], env={"X": "1"}, timeout=5)
    assert result.stdout == "node\n"
    call = runner.calls[-1]
    assert call.timeout == 5
    assert after_dashdash(call.argv) == [*RUNUSER, "whoami"]
    env = env_flags(call.argv)
    assert env["HOME"] == "/home/node" and env["X"] == "1"
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:8888"
    root = bottle.exec(["id", "-u"], user="root")
    assert after_dashdash(root.argv) == ["id", "-u"] and "HOME=/home/node" not in root.argv


# -- teardown, handle, attach -------------------------------------------------------

def test_close_is_exact_and_idempotent(backend, host):
    plan, runner, bottle = launched(backend, host, spec())
    assert Path(plan.state_dir).is_dir()
    n = len(runner.calls)
    bottle.close()
    assert runner.argvs[n:] == teardown_argvs()
    assert [c for c in runner.calls[n:] if c.kind == "run"] and not Path(plan.state_dir).exists()
    bottle.close()
    assert len(runner.calls) == n + 4


def test_context_manager_closes(backend, host):
    _, runner, bottle = launched(backend, host, spec())
    with bottle:
        pass
    assert runner.argvs[-4:] == teardown_argvs()


def test_handle_round_trips_through_attach(backend, host):
    plan, runner, bottle = launched(backend, host, spec(prompt="p", supervise=True))
    handle = json.loads(json.dumps(bottle.handle()))
    again = backend.attach(plan, smol_runner(), handle)
    assert again.agent_argv(["x"]) == bottle.agent_argv(["x"])
    assert again.agent_argv(["x"], tty=False) == bottle.agent_argv(["x"], tty=False)
    assert again.addresses == bottle.addresses
    with pytest.raises(ValueError):
        backend.attach(plan, smol_runner(), {"backend": "docker", "ident": "x"})


# -- script, live_unavailable, identity ------------------------------------------------

def test_script_answers_on_host_loopback(backend, host):
    plan = backend.prepare(spec(routes=(ROUTE,), supervise=True), host)
    runner = smol_runner()
    backend.script(runner, plan)
    out = runner.run(["docker", "port", f"{IDENT}-bundle", "9099/tcp"]).stdout
    assert out.startswith("127.0.0.1:")
    ca = runner.run(["smolvm", "machine", "exec", "--name", IDENT, "--", "sh", "-c",
                     "chown x && update-ca-certificates"]).stdout
    assert "1 added" in ca


def test_launch_without_script_ca_reply_fails(backend, host):
    plan = backend.prepare(spec(), host)
    runner = smol_runner()
    with pytest.raises(ProvisionError):
        backend.launch(plan, runner)


@pytest.mark.parametrize("fail,reason", [
    (("smolvm", "--version"), "smolvm"),
    (("docker", "info"), "docker"),
])
def test_live_unavailable_names_the_missing_tool(backend, fail, reason):
    runner = smol_runner()
    runner.reply(*fail, returncode=127, stderr=f"{fail[0]}: command not found", first=True)
    msg = backend.live_unavailable(runner)
    assert msg is not None and reason in msg and "command not found" in msg


def test_live_available_when_both_answer(backend):
    assert backend.live_unavailable(smol_runner()) is None


def test_identity(backend):
    assert backend.name == "smolmachines"
    assert backend.capabilities == frozenset({"live", "tty", "git_gate", "supervise", "codex", "claude"})


def test_launch_rejects_a_foreign_plan(backend, host):
    from bottle_ref.backends.docker import DockerBackend

    plan = DockerBackend().prepare(spec(), host)
    with pytest.raises(TypeError):
        backend.launch(plan, smol_runner())


# -- one rule for a missing tool and a missing engine (issue 10) -------------------------


def test_missing_smolvm_is_error_not_not_supported(backend, monkeypatch):
    """No smolvm on a host that could run its guests is a broken environment
    (live_unavailable: ERROR), like a docker engine that does not answer."""
    import bottle_ref.backends.smolmachines as sm

    monkeypatch.setattr(sm.platform, "system", lambda: "Linux")
    monkeypatch.setattr(sm.os.path, "exists", lambda p: p == sm.KVM_DEVICE)
    runner = RecordingRunner()
    runner.reply("smolvm", "--version", returncode=127, stderr="smolvm: command not found")
    assert backend.live_unsupported(runner) is None
    assert "smolvm not available" in backend.live_unavailable(runner)


@pytest.mark.parametrize("system,kvm,unsupported", [
    ("Linux", False, "no /dev/kvm"), ("Linux", True, None), ("Darwin", False, None),
    ("Windows", False, "not on Windows"),
])
def test_live_unsupported_only_where_guests_cannot_run(backend, monkeypatch, system, kvm,
                                                       unsupported):
    import bottle_ref.backends.smolmachines as sm

    monkeypatch.setattr(sm.platform, "system", lambda: system)
    monkeypatch.setattr(sm.os.path, "exists", lambda p: kvm and p == sm.KVM_DEVICE)
    got = backend.live_unsupported(RecordingRunner())
    assert (got is None) if unsupported is None else (unsupported in got)


# -- issue 17: close() needs proof each resource is gone ------------------------------

def test_close_against_an_unreachable_engine_raises_and_keeps_state(backend, host):
    """Every teardown command failing (engine and smolvm unreachable) is not
    "nothing to remove": close() raises naming the machine and the bundle,
    keeps the state dir, and runs again on the next close()."""
    plan, runner, bottle = launched(backend, host, spec())
    runner.reply("docker", returncode=1, stderr="Cannot connect to the Docker daemon",
                 first=True)
    runner.reply("smolvm", returncode=1, stderr="database operation failed: open: locked",
                 first=True)
    with pytest.raises(RuntimeError) as info:
        bottle.close()
    assert IDENT in str(info.value) and f"{IDENT}-bundle" in str(info.value)
    assert Path(plan.state_dir).is_dir()
    n = len(runner.calls)
    with pytest.raises(RuntimeError):
        bottle.close()
    assert len(runner.calls) > n


def test_close_takes_vm_not_found_as_proof(backend, host):
    """smolvm src/error.rs (commit 9ab0050f) `Error::VmNotFound`: "vm not
    found: {name}" proves the machine is gone; docker's "No such" likewise."""
    plan, runner, bottle = launched(backend, host, spec())
    runner.reply("smolvm", "machine", returncode=1, stderr=f"Error: vm not found: {IDENT}",
                 first=True)
    runner.reply("docker", "rm", returncode=1,
                 stderr=f"Error response from daemon: No such container: {IDENT}-bundle",
                 first=True)
    runner.reply("docker", "network", "rm", returncode=1,
                 stderr=f"Error response from daemon: network {IDENT}-net not found",
                 first=True)
    bottle.close()
    assert not Path(plan.state_dir).exists()


def test_close_frees_a_stale_endpoint_of_its_bundle(backend, host):
    """The bundle's network kept "in use" by the removed bundle's stale
    endpoint (docker 20.10 under load): dropped, then removed once more."""
    plan, runner, bottle = launched(backend, host, spec())
    runner.reply("docker", "network", "rm", returncode=1,
                 stderr=f"Error response from daemon: error while removing network: network "
                        f"{IDENT}-net id 1f has active endpoints\nexit status 1\n",
                 times=1, first=True)
    runner.reply("docker", "network", "inspect", "--format", "{{.Name}}",
                 stdout=f"{IDENT}-net\n", times=1, first=True)
    runner.reply("docker", "network", "inspect", "--format", "{{.Name}}{{range .Containers}}*",
                 stdout=f"{IDENT}-net {IDENT}-bundle\n", first=True)
    bottle.close()
    assert not Path(plan.state_dir).exists()
    assert ("docker", "network", "disconnect", "-f", f"{IDENT}-net", f"{IDENT}-bundle") in [
        tuple(a) for a in runner.argvs]


def test_launch_with_an_unreachable_engine_says_so(backend, host):
    runner = smol_runner().reply("docker", "image", "inspect", returncode=1,
                                 stderr="Cannot connect to the Docker daemon at unix:///x.sock",
                                 first=True)
    with pytest.raises(RuntimeError) as info:
        launched(backend, host, spec(), runner=runner)
    assert "unreachable" in str(info.value) and "not found" not in str(info.value)


# -- issue 16: limits from the spec ---------------------------------------------------------


def test_spec_limits_size_the_machine_and_the_env_overrides(host):
    import dataclasses

    from bottle_api.spec import Limits

    spec = dataclasses.replace(BottleSpec(name="demo"), limits=Limits(memory_mib=1536, cpus=2.5))
    plan = SmolmachinesBackend().prepare(spec, host)
    assert (plan.cpus, plan.mem_mib) == (3, 1536)  # smolvm --cpus is a whole number: round up
    env = dict(host.env, BOTTLE_SMOL_CPUS="1", BOTTLE_SMOL_MEM_MIB="512")
    plan = SmolmachinesBackend().prepare(spec, dataclasses.replace(host, env=env))
    assert (plan.cpus, plan.mem_mib) == (1, 512)


# -- recorded launches of one scenario share an ident (xdist, nested runs) ----------------

def test_socket_folder_survives_a_concurrent_removal(tmp_path, monkeypatch):
    """Another process's close() of the same recorded ident may remove the
    folder between mkdir and chmod (seen in CI under xdist: FileNotFoundError
    from the launch); make_socket_dir starts over instead of failing, and
    still refuses a folder that is not a private one of this user."""
    from types import SimpleNamespace

    from bottle_ref.backends import smolmachines as smol

    plan = SimpleNamespace(socket_root=str(tmp_path))
    real_chmod, removed = os.chmod, []

    def racing_chmod(path, mode):
        if not removed:
            removed.append(path)
            os.rmdir(path)  # the other process's remove_socket_dir
        real_chmod(path, mode)

    monkeypatch.setattr(smol.os, "chmod", racing_chmod)
    made = smol.make_socket_dir(plan, "bottle-x-0001")
    assert removed and made.is_dir() and (made.stat().st_mode & 0o777) == 0o700
    monkeypatch.setattr(smol.os, "chmod", real_chmod)
    (tmp_path / "bottle-y-0001").mkdir(mode=0o755)
    os.chmod(tmp_path / "bottle-y-0001", 0o755)
    with pytest.raises(smol.LaunchError, match="not a private folder"):
        smol.make_socket_dir(plan, "bottle-y-0001")
