"""smolmachines, live where it can run.

Bundle half (any Linux with docker): the smolmachines bundle container is
started with the backend's own argv helpers (bind-mount route); it must
publish no port at all and serve each agent-facing daemon on its Unix
socket in the launch's socket folder, which the host can dial like a guest
through its --mount-socket would.

Guest half (needs smolvm >= 1.8.0, or the CI stand-in that `nox -s
integration` puts on PATH when no real smolvm is there): the whole contract
(`BackendConformance`) against the backend, plus facts of its guest half.
Without a usable smolvm it is NOT_SUPPORTED, with the reason.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys

import pytest

from bottle_ref.backends.smolmachines import (
    SmolmachinesBackend,
    bundle_run_argv,
    host_socket,
    make_socket_dir,
    remove_socket_dir,
    socket_daemons,
    token_slots,
)
from bottle_ref.ca import CaFiles, ensure_ca
from bottle_api.plan import PORTS
from bottle_api.runner import SubprocessRunner, poll
from bottle_ref.state import remove_state, state_files, write_state
from conformance.base import BackendConformance
from conformance.live import upstream
from conformance.live.harness import GIT_UPSTREAM, PLACEHOLDER, SCENARIOS, LiveHarness
from conformance.tiers.live import LiveTier


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    h = LiveHarness(SmolmachinesBackend(), SubprocessRunner(), tmp_path_factory.mktemp("smol"),
                    timeout=120)
    reason = h.engine.answers()
    if reason:
        pytest.skip(f"ERROR: {reason}")
    try:
        yield h
    finally:
        h.cleanup()


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP (to a proxy) over a Unix socket: what the guest relay forwards."""

    def __init__(self, path: str, timeout: float = 10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)
        if self._tunnel_host:
            self._tunnel()


class Bundle:
    """A smolmachines bundle started the way launch starts it (no guest)."""

    def __init__(self, harness: LiveHarness, key: str):
        self.harness = harness
        self.plan = harness.prepare(SCENARIOS[key])
        assert self.plan.socket_route == "bind-mount"
        self.ident = harness.runner.unique(f"bottle-{self.plan.bottle}")
        runner, eng, res = harness.runner, harness.engine, harness.res
        res.defer("state dir", lambda: remove_state(self.plan.state_dir))
        res.defer("socket dir", lambda: remove_socket_dir(self.plan, self.ident))
        files = write_state(self.plan)
        ensure_ca(runner, files.pipelock_ca_dir, common_name="bottle-ref pipelock CA")
        if self.plan.routed:
            ensure_ca(runner, files.egress_ca_dir, common_name="bottle-ref egress CA")
        make_socket_dir(self.plan, self.ident)
        self.network = res.network(f"{self.ident}-net")
        eng.run("network", "create", "--label", f"bottle-ref.bottle={self.ident}", self.network)
        argv = bundle_run_argv(self.plan, self.ident)
        res.container(f"{self.ident}-bundle")
        runner.run(argv, env={s: self.plan.secrets[s] for s in token_slots(self.plan)} or None)
        self.sites = upstream.start_sites(eng, res, self.network, self.plan.bundle_image_ref,
                                          harness.pki, timeout=harness.timeout)

    def sock(self, daemon: str) -> str:
        return str(host_socket(self.plan, self.ident, daemon))

    def wait_listening(self, daemon: str) -> None:
        """Until a request through the hop's socket reaches the test upstream
        (a socket accepts before the daemon behind it listens)."""

        def answers() -> bool:
            try:
                status, _ = _proxy_get(self.sock(daemon),
                                       f"http://{upstream.UPSTREAM_HOST}/ready", timeout=3)
                return status == 200
            except (OSError, http.client.HTTPException):
                return False

        poll(self.harness.runner, answers, timeout=self.harness.timeout,
             what=f"bundle socket {self.sock(daemon)}")


def _proxy_get(path: str, url: str, timeout: float = 10) -> tuple[int, str]:
    conn = UnixHTTPConnection(path, timeout=timeout)
    try:
        conn.request("GET", url)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def _proxy_tls_get(path: str, target: str, url_path: str, cafile: str,
                   headers: dict[str, str]) -> tuple[int, str]:
    raw = UnixHTTPConnection(path)
    raw.set_tunnel(target, 443)
    raw.connect()
    ctx = ssl.create_default_context(cafile=cafile)
    tls = ctx.wrap_socket(raw.sock, server_hostname=target)
    conn = http.client.HTTPConnection(target, 443, timeout=10)
    conn.sock = tls
    try:
        conn.request("GET", url_path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


@pytest.mark.parametrize("key", ["unrouted", "routed"])
def test_bundle_publishes_nothing_and_serves_each_daemon_on_its_socket(harness, key):
    """Issue 14, bind-mount route: no port published; one socket per
    agent-facing daemon (egress iff routed, else pipelock; git-gate iff
    upstreams) and no other; the first hop answers through its socket."""
    b = Bundle(harness, key)
    hop = "egress" if b.plan.routed else "pipelock"
    assert socket_daemons(b.plan)[0] == hop
    info = json.loads(harness.engine.run("inspect", f"{b.ident}-bundle").stdout)[0]
    assert not info["HostConfig"].get("PortBindings"), info["HostConfig"].get("PortBindings")
    b.wait_listening(hop)
    present = sorted(p.name for p in host_socket(b.plan, b.ident, hop).parent.iterdir())
    assert present == sorted(f"{d}.sock" for d in socket_daemons(b.plan)), present
    other = "pipelock" if b.plan.routed else "egress"
    assert f"{other}.sock" not in present, f"{other} must not be served to the guest"
    status, body = _proxy_get(b.sock(hop), f"http://{upstream.UPSTREAM_HOST}/smol-allowed")
    assert status == 200 and json.loads(body)["host"] == upstream.UPSTREAM_HOST
    status, _ = _proxy_get(b.sock(hop), f"http://{upstream.DENIED_HOST}/smol-denied")
    assert status == 403
    if b.plan.routed:
        # Through egress the route host gets the real token (egress CA trusted).
        cafile = str(CaFiles(state_files(b.plan).egress_ca_dir).cert)
        status, body = _proxy_tls_get(b.sock(hop), upstream.UPSTREAM_HOST, "/smol-auth", cafile,
                                      {"Authorization": f"Bearer {PLACEHOLDER}"})
        assert status == 200
        assert json.loads(body)["authorization"] == f"Bearer {harness.token}", \
            "egress did not inject the real token"
        # git-gate answers on its socket and serves the declared repo (git's
        # own client, through a one-connection TCP forwarder of ours).
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        srv.close()
        relay = subprocess.Popen([sys.executable, "-m", "bottle_bundle.socket_relay",
                                  f"tcp:127.0.0.1:{port}=unix:{b.sock('git-gate')}"],
                                 stdout=subprocess.PIPE)
        try:
            assert relay.stdout.readline().startswith(b"socket-relay:")
            gate = f"git://127.0.0.1:{port}/{GIT_UPSTREAM.name}.git"
            ls = subprocess.run(["git", "ls-remote", gate], capture_output=True, text=True,
                                timeout=30)
            assert ls.returncode == 0, f"git-gate does not serve {GIT_UPSTREAM.name}: {ls.stderr}"
        finally:
            relay.terminate()
            relay.wait(timeout=10)
        # pipelock binds the bundle's loopback only: its bridge address refuses.
        ip = harness.engine.container_ips(f"{b.ident}-bundle")[b.network]
        with pytest.raises(OSError):
            socket.create_connection((ip, PORTS["pipelock"]), 2).close()


def _guest_half_reason() -> str | None:
    """None where guests can run and a usable smolvm (>= 1.8.0, real or the
    CI stand-in the integration nox session puts on PATH) answers; else why not."""
    backend, runner = SmolmachinesBackend(), SubprocessRunner()
    return backend.live_unsupported(runner) or backend.live_unavailable(runner)


if _guest_half_reason() is None:
    class TestSmolmachinesConformance(BackendConformance):
        """The whole contract against smolmachines, guest half live: on real
        smolvm, or on the stand-in (tests/standins/smolvm), where the report
        says `smolvm: stand-in` and the guest, as on real smolvm, has no
        network but its mounted sockets."""

        @pytest.fixture(scope="class")
        @classmethod
        def backend(cls):
            return SmolmachinesBackend()

        # -- guest-half checks (not clauses: facts of this backend) -------------
        def test_directory_copy_is_a_tar_stream_keeping_modes_and_links(
                self, live_harness, tmp_path):
            """`machine cp` copies one file (smolvm 1.9.3 src/cli/machine.rs
            CpCmd::run), so a directory goes as a tar stream into `machine
            exec -i`: contents, modes and symlinks arrive, host owners do not."""
            lb = live_harness.bottle("routed")
            src = tmp_path / "tree"
            (src / "sub").mkdir(parents=True)
            (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
            (src / "run.sh").chmod(0o755)
            (src / "sub" / "secret").write_text("s\n")
            (src / "sub" / "secret").chmod(0o600)
            (src / "link").symlink_to("sub/secret")
            dest = "/tmp/h8b-tree/copied"
            argv = lb.bottle.channel.copy_argv(str(src), dest)
            assert "cp" not in argv[:4] and argv[0] == sys.executable
            result = live_harness.runner.run(argv, check=False)
            assert result.ok, f"directory copy failed: {result.stderr.strip()[-300:]}"
            listing = lb.bottle.exec(["sh", "-c", f"cd {dest} && find . -mindepth 1 "
                                      "-printf '%P %m %U %y %l\\n' | sort"], user="root")
            assert listing.ok, listing.stderr
            assert listing.stdout.splitlines() == [
                "link 777 0 l sub/secret",
                "run.sh 755 0 f ",
                "sub 755 0 d ",
                "sub/secret 600 0 f ",
            ], listing.stdout

        def test_provisioned_ca_is_in_the_guest_store(self, live_harness):
            """CA provisioning ran for real: the bottle's CA (egress's when
            routed) is one of the certificates the guest's store holds."""
            lb = live_harness.bottle("routed")
            from bottle_ref.state import state_files

            pem = CaFiles(state_files(lb.plan).egress_ca_dir).cert.read_text().strip()
            bundle = lb.bottle.exec(["cat", "/etc/ssl/certs/ca-certificates.crt"])
            assert bundle.ok and pem in bundle.stdout, "the bottle CA is not in the guest's store"

        def test_tty_agent_argv_runs_through_the_absolute_pty_wrapper(self, live_harness):
            """agent_argv(tty=True) is `python /abs/pty_resize.py M -- smolvm
            machine exec ... -i -t ...`; run on a real pty from `/` (where the
            package is not importable) it starts the agent in the guest."""
            import pty

            lb = live_harness.bottle("routed")
            argv = lb.bottle.agent_argv(["--version"], tty=True)
            assert argv[1].startswith("/") and argv[1].endswith("pty_resize.py"), argv[:3]
            main, child = pty.openpty()
            try:
                env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child,
                                        cwd="/", env={**env, "TERM": "xterm"})
                os.close(child)
                child = -1
                out = b""
                try:
                    while True:
                        chunk = os.read(main, 4096)
                        if not chunk:
                            break
                        out += chunk
                except OSError:
                    pass  # EIO: the pty closed
                assert proc.wait(timeout=120) == 0, out.decode(errors="replace")[-500:]
            finally:
                os.close(main)
                if child >= 0:
                    os.close(child)
            assert "Claude Code" in out.decode(errors="replace"), out[-300:]
else:
    def test_smolmachines_guest_half():
        # One rule (issue 10): NOT_SUPPORTED only where no guest can run on
        # this host at all; a missing smolvm where one could is ERROR.
        backend = SmolmachinesBackend()
        unsupported = backend.live_unsupported(SubprocessRunner())
        if unsupported:
            pytest.skip(f"NOT_SUPPORTED: {unsupported}")
        broken = backend.live_unavailable(SubprocessRunner())
        assert broken, "smolvm answers --version, yet the guest-half class was not collected"
        pytest.skip(f"ERROR: {broken}")
