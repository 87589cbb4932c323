"""Deliberately broken docker backends, one bug each, for the live meta-tests.

Not collected on its own (no ``test_`` prefix): `test_live_meta` runs it in a
nested pytest and checks that the live clause aimed at each bug FAILS.
Each class has its own backend ``name`` so the nested run writes one report
per broken backend.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shutil
import socket
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from bottle_api.runner import Completed, Runner
from bottle_ref.backends.docker import DockerBackend, DockerBottle, docker_exec_argv
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


# --- issue 14: smolmachines, no network but its mounted sockets ---

from bottle_ref.backends.smolmachines import SmolmachinesBackend  # noqa: E402


class SmolEngineSocketBackend(SmolmachinesBackend):
    """Issue 14: the guest must reach exactly its daemons' mounted sockets.
    Reintroduced: the engine's socket mounted into the machine too
    (``--mount-socket /var/run/docker.sock:/run/docker.sock``), which on the
    stand-in is the same bind mount real smolvm's vsock bridge stands for."""

    name: ClassVar[str] = "broken-smol-socket"

    def launch(self, plan, runner, **kw):
        def rewrite(argv):
            if argv[:3] == ["smolvm", "machine", "create"]:
                return [*argv[:5], "--mount-socket", "/var/run/docker.sock:/run/docker.sock",
                        *argv[5:]]
            return argv
        return super().launch(plan, _Rewriting(runner, rewrite), **kw)


TestSmolEngineSocket = _case(SmolEngineSocketBackend)


class SmolNetBackend(SmolmachinesBackend):
    """Issue 14: the old design, ``--net --allow-cidr 127.77.1.2/32``, on top
    of the sockets. The stand-in refuses smolvm networking as not modelled,
    so there the live clauses must come out NOT_SUPPORTED, never PASSED."""

    name: ClassVar[str] = "broken-smol-net"

    def launch(self, plan, runner, **kw):
        def rewrite(argv):
            if argv[:3] == ["smolvm", "machine", "create"]:
                return [*argv[:5], "--net", "--allow-cidr", "127.77.1.2/32", *argv[5:]]
            return argv
        return super().launch(plan, _Rewriting(runner, rewrite), **kw)


TestSmolNet = _case(SmolNetBackend)
