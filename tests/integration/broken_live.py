"""Deliberately broken docker backends, one bug each, for the live meta-tests.

Not collected on its own (no ``test_`` prefix): `test_live_meta` runs it in a
nested pytest and checks that the live clause aimed at each bug FAILS.
Each class has its own backend ``name`` so the nested run writes one report
per broken backend.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import shutil
import socket
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from bottle_api.runner import Completed, Runner
from bottle_ref.backends.docker import DockerBackend, DockerBottle, docker_exec_argv
from conformance.live import dns_canary
from conformance.live.canary import host_addresses
from conformance.tiers.live import LiveTier


class _Rewriting(Runner):
    """Runs through ``inner``, letting ``rewrite(argv)`` alter an argv or
    drop it (None: not run, reported as success)."""

    def __init__(self, inner: Runner, rewrite):
        self.inner, self.rewrite = inner, rewrite

    def run(self, argv, **kw):
        new = self.rewrite(list(argv))
        if new is None:
            return Completed(tuple(argv), 0, "", "")
        return self.inner.run(new, **kw)

    def sleep(self, seconds):
        self.inner.sleep(seconds)

    def monotonic(self):
        return self.inner.monotonic()

    def unique(self, prefix):
        return self.inner.unique(prefix)


def _creates(argv, suffix: str) -> bool:
    return argv[:2] == ["docker", "create"] and any(a.endswith(suffix) for a in argv)


class HostReachBackend(DockerBackend):
    """The fix undone: plain --internal networks (the host keeps an address
    on the bridge) and the agent keeps docker's default route."""

    name: ClassVar[str] = "broken-hostreach"

    def launch(self, plan, runner, **kw):
        def rewrite(argv):
            if argv[:3] == ["docker", "network", "create"]:
                return [a for a in argv if a not in ("-o", "com.docker.network.bridge.inhibit_ipv4=true")]
            if argv[:2] == ["docker", "run"] and any(a.endswith("-routes") for a in argv):
                return None
            return argv
        return super().launch(plan, _Rewriting(runner, rewrite), **kw)


class EngineSocketBackend(DockerBackend):
    """A host directory holding a socket named docker.sock is mounted into
    the guest (a stand-in: no real engine socket is ever handed out)."""

    name: ClassVar[str] = "broken-socket"

    def launch(self, plan, runner, **kw):
        share = Path(tempfile.mkdtemp(prefix="bctl-share-"))
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(share / "docker.sock"))
        sock.close()  # the socket file stays: what the walk looks for

        def rewrite(argv):
            if _creates(argv, "-agent"):
                i = argv.index("--network")
                return argv[:i] + ["--mount", f"type=bind,source={share},target=/run/host-share"] + argv[i:]
            return argv
        try:
            bottle = super().launch(plan, _Rewriting(runner, rewrite), **kw)
        except BaseException:
            shutil.rmtree(share, ignore_errors=True)
            raise
        bottle.__class__ = _SharingBottle
        bottle.share = share
        return bottle


class _SharingBottle(DockerBottle):
    def close(self):
        super().close()
        shutil.rmtree(self.share, ignore_errors=True)


class EncodedTokenBackend(DockerBackend):
    """The real token lands in the guest base64-encoded, outside the
    directories the old scan read."""

    name: ClassVar[str] = "broken-encoded-token"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        token = next(v for v in plan.secrets.values() if v)
        bottle.exec(["sh", "-c", 'mkdir -p /run/secrets && printf %s "$T" | base64 > /run/secrets/t'],
                    user="root", env={"T": token}, check=True)
        return bottle


def _host_side_address() -> str:
    """A non-loopback address of this host that is not on an outside
    network (a private bridge address), for a deliberately wrong publish."""
    for a in host_addresses():
        ip = ipaddress.ip_address(a)
        if ip.version == 4 and ip.is_private and not ip.is_loopback:
            return a
    raise RuntimeError("no private non-loopback host address to publish on")


class PublishWideBackend(DockerBackend):
    """egress published on a host address that is not loopback."""

    name: ClassVar[str] = "broken-publish"

    def launch(self, plan, runner, **kw):
        addr = _host_side_address()

        def rewrite(argv):
            if _creates(argv, "-egress"):
                i = argv.index("--network")
                return argv[:i] + ["--publish", f"{addr}::9099"] + argv[i:]
            return argv
        return super().launch(plan, _Rewriting(runner, rewrite), **kw)


class _LabelKeyBottle(DockerBottle):
    def close(self):
        if not self._closed:  # lists every bottle's containers: a removal by key would follow
            self.runner.run(["docker", "ps", "-aq", "--filter", "label=bottle-ref.bottle"],
                            check=False)
        super().close()


class LabelKeyTeardownBackend(DockerBackend):
    """Teardown selects by the label key alone (read-only here, so the
    engine's other users are never touched by the meta-test itself)."""

    name: ClassVar[str] = "broken-labelkey"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.__class__ = _LabelKeyBottle
        return bottle


class BypassBackend(DockerBackend):
    """The agent is also wired to the outbound network: a way around the hop."""

    name: ClassVar[str] = "broken-bypass"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        runner.run(["docker", "network", "connect", bottle.outbound_network(), bottle.agent])
        return bottle


class WrongTokenBackend(DockerBackend):
    """egress is handed some other token than the host's."""

    name: ClassVar[str] = "broken-token"

    def launch(self, plan, runner, **kw):
        wrong = {k: "bottle-live-" + "0" * 32 for k in plan.secrets}
        return super().launch(dataclasses.replace(plan, secrets=wrong), runner, **kw)


class NoTrustBackend(DockerBackend):
    """The guest's trust store loses the bottle CA after provisioning."""

    name: ClassVar[str] = "broken-trust"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.exec(["sh", "-c", "rm -f /usr/local/share/ca-certificates/*.crt && "
                     "update-ca-certificates --fresh >/dev/null"], user="root", check=True)
        return bottle


class RootBottle(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        return docker_exec_argv(self.agent, [self.plan.agent, *argv], user="root", tty=tty,
                                interactive=True)


class RootAgentBackend(DockerBackend):
    """The agent runs as root."""

    name: ClassVar[str] = "broken-root"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.__class__ = RootBottle
        return bottle


class LeakyBottle(DockerBottle):
    def close(self):
        self.networks = []  # "forgets" its networks
        super().close()


class LeakyBackend(DockerBackend):
    """Teardown leaves the networks behind."""

    name: ClassVar[str] = "broken-leak"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.__class__ = LeakyBottle
        return bottle


class BalancedPipelockBackend(DockerBackend):
    """Issue 9: pipelock.yaml renders ``mode: balanced``. The stand-in, like
    real pipelock (internal/scanner/scanner.go New: the allowlist is
    enforced only in strict mode), then lets a non-allowlisted host through,
    so LIVE-PIPELOCK must fail exactly as the bottle would leak."""

    name: ClassVar[str] = "broken-balanced"

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        data = yaml.safe_load(plan.pipelock.config_yaml)
        data["mode"] = "balanced"
        text = yaml.safe_dump(data, sort_keys=False)
        return dataclasses.replace(plan, pipelock=dataclasses.replace(plan.pipelock,
                                                                      config_yaml=text))


def _case(backend_cls):
    class Case(LiveTier):
        @pytest.fixture(scope="class")
        @classmethod
        def backend(cls):
            return backend_cls()

    Case.__name__ = Case.__qualname__ = f"Test{backend_cls.__name__}"
    return Case


TestBypass = _case(BypassBackend)
TestWrongToken = _case(WrongTokenBackend)
TestNoTrust = _case(NoTrustBackend)
TestRootAgent = _case(RootAgentBackend)
TestLeaky = _case(LeakyBackend)
TestHostReach = _case(HostReachBackend)
TestEngineSocket = _case(EngineSocketBackend)
TestEncodedToken = _case(EncodedTokenBackend)
TestPublishWide = _case(PublishWideBackend)
TestLabelKeyTeardown = _case(LabelKeyTeardownBackend)
TestBalancedPipelock = _case(BalancedPipelockBackend)


# --- issue 20: the live tier's blind spots ---------------------------------------------

def _bundle_exec_detached(runner: Runner, container: str, code: str, *args: str) -> None:
    """Start ``python3 -c CODE ARGS`` in a bundle container, detached."""
    runner.run(["docker", "exec", "-d", container, "python3", "-c", code, *args])


# A DNS forwarder: every UDP/TCP query on port 53 relayed to the harness's
# resolver canary (found by its alias on the outbound network, per query).
DNS_FORWARDER = r"""
import socket, sys, threading
target = sys.argv[1]
def upstream():
    return socket.getaddrinfo(target, 53, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53))
    while True:
        q, peer = s.recvfrom(4096)
        def relay(q=q, peer=peer):
            try:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
                u.sendto(q, upstream()); s.sendto(u.recv(4096), peer)
            except OSError:
                pass
        threading.Thread(target=relay, daemon=True).start()
def tcp_one(c):
    try:
        c.settimeout(5)
        q = c.recv(4096)
        u = socket.create_connection(upstream(), timeout=3); u.sendall(q)
        c.sendall(u.recv(4096))
    except OSError:
        pass
    finally:
        c.close()
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 53)); s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_one, args=(c,), daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
tcp()
"""


class DnsForwarderBackend(DockerBackend):
    """A ``dns`` sidecar on the agent network (alias ``dns``, also on the
    outbound network) forwards every query to the resolver the guest's
    resolv.conf now also names: here the harness's canary, standing in for
    the engine's resolver (NETWORK RULE: nothing is forwarded outside). The
    sidecar's own lookups go to 127.0.0.2 (``--dns``), where nothing
    listens, so not even the canary's alias can leave through docker's
    embedded DNS before the canary exists."""

    name: ClassVar[str] = "broken-dns"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        dns = f"{bottle.ident}-dns"
        bottle.will_create("container", dns)
        runner.run(["docker", "create", "--name", dns, "--network", f"{bottle.ident}-agent",
                    "--network-alias", "dns", "--dns", "127.0.0.2", "--entrypoint", "python3",
                    plan.bundle_image_ref, "-c", DNS_FORWARDER, dns_canary.CANARY_HOST])
        runner.run(["docker", "network", "connect", bottle.outbound_network(), dns])
        runner.run(["docker", "start", dns])
        ip = json.loads(runner.run(["docker", "inspect", "--format",
                                    "{{json .NetworkSettings.Networks}}", dns]).stdout)
        addr = ip[f"{bottle.ident}-agent"]["IPAddress"]
        bottle.exec(["sh", "-c", f"echo 'nameserver {addr}' >> /etc/resolv.conf"], user="root",
                    check=True)
        return bottle


# What real pipelock's `metrics_listen` would serve: a second listener.
METRICS_LISTENER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9090)); s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(b"HTTP/1.0 200 OK\r\n\r\npipelock_requests_total 0\n"); c.close()
"""


class MetricsPortBackend(DockerBackend):
    """pipelock also listens on 0.0.0.0:9090 (its metrics listener), which
    the guest reaches wherever pipelock is the first hop."""

    name: ClassVar[str] = "broken-metrics-port"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        _bundle_exec_detached(runner, f"{bottle.ident}-pipelock", METRICS_LISTENER)
        return bottle


class HelperTokenBackend(DockerBackend):
    """A credential-helper process runs in the guest as node with the
    route's real token in its environment (passed by name, never on argv)."""

    name: ClassVar[str] = "broken-helper-token"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        token = next(v for v in plan.secrets.values() if v)
        runner.run(["docker", "exec", "-d", "-u", "node", "-e", "BOTTLE_CREDENTIAL_HELPER_TOKEN",
                    bottle.agent, "sleep", "infinity"],
                   env={"BOTTLE_CREDENTIAL_HELPER_TOKEN": token})
        return bottle


class CaKeyCopyBackend(DockerBackend):
    """Provisioning copies the CA's directory, key included, into ~/.config."""

    name: ClassVar[str] = "broken-ca-key"

    def launch(self, plan, runner, **kw):
        from bottle_ref.state import state_files

        bottle = super().launch(plan, runner, **kw)
        files = state_files(plan)
        ca_dir = files.egress_ca_dir if plan.routed else files.pipelock_ca_dir
        bottle.exec(["mkdir", "-p", "/home/node/.config"], check=True)
        runner.run(["docker", "cp", str(ca_dir), f"{bottle.agent}:/home/node/.config/bottle-ca"])
        bottle.exec(["chown", "-R", "node:node", "/home/node/.config/bottle-ca"], user="root",
                    check=True)
        return bottle


class _SharedNetBottle(DockerBottle):
    def close(self):
        super().close()
        # the last bottle off the shared network removes it; the others fail quietly
        self.runner.run(["docker", "network", "rm", self.shared], check=False)


class SharedNetworkBackend(DockerBackend):
    """Every bottle of a project (here: of one harness run) also joins one
    shared internal network, so each guest reaches the others directly."""

    name: ClassVar[str] = "broken-shared-net"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        shared = plan.bottle.rsplit("-", 1)[0] + "-shared"
        made = runner.run(["docker", "network", "create", "--internal", "-o",
                           "com.docker.network.bridge.inhibit_ipv4=true", shared], check=False)
        if not made.ok and "already exists" not in made.stderr:
            bottle.close()
            raise RuntimeError(f"could not create {shared}: {made.stderr.strip()}")
        bottle.__class__ = _SharedNetBottle
        bottle.shared = shared
        runner.run(["docker", "network", "connect", shared, bottle.agent])
        return bottle


TestDnsForwarder = _case(DnsForwarderBackend)
TestMetricsPort = _case(MetricsPortBackend)
TestHelperToken = _case(HelperTokenBackend)
TestCaKeyCopy = _case(CaKeyCopyBackend)
TestSharedNetwork = _case(SharedNetworkBackend)
