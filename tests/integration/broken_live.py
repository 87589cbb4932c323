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

from bottle_api.runner import Completed, DelegatingRunner, Runner
from bottle_ref.backends.docker import DockerBackend, DockerBottle, docker_exec_argv
from conformance.live import dns_canary
from conformance.live.canary import host_addresses
from conformance.tiers.live import LiveTier


class _Rewriting(DelegatingRunner):
    """Runs through ``inner``, letting ``rewrite(argv)`` alter an argv or
    drop it (None: not run, reported as success)."""

    def __init__(self, inner: Runner, rewrite):
        super().__init__(inner)
        self.rewrite = rewrite

    def run(self, argv, **kw):
        new = self.rewrite(list(argv))
        if new is None:
            return Completed(tuple(argv), 0, "", "")
        return self.inner.run(new, **kw)


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


# ================================================================================
# issue 14 item 5: codex bottles provisioned the Claude way (the old behaviour)
# ================================================================================


def _claude_way(argv):
    """A codex bottle's provisioning as it was before issue 14: the prompt in
    Claude's prompt file, skills in ~/.claude/skills, supervise registered
    with `claude mcp add`."""
    out = [a.replace("/home/node/.codex/AGENTS.md", "/home/node/.claude-bottle-prompt.txt")
            .replace("/home/node/.agents/skills", "/home/node/.claude/skills") for a in argv]
    for i in range(len(out) - 3):
        if out[i:i + 3] == ["codex", "mcp", "add"] and "--url" in out[i:]:
            j = out.index("--url", i)
            return out[:i] + ["claude", "mcp", "add", "--scope", "user", "--transport", "http",
                              out[i + 3], out[j + 1]]
    return out


class CodexClaudeWayBackend(DockerBackend):
    """PROV-CODEX-*: a codex bottle gets the prompt, skills and supervise
    where Claude Code reads them, which codex never does."""

    name: ClassVar[str] = "broken-codex-claude-way"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, _Rewriting(runner, _claude_way), **kw)
        bottle.runner = runner  # the tests' own guest commands run as written
        return bottle


TestCodexClaudeWay = _case(CodexClaudeWayBackend)


# --- issue 15: egress and pipelock as real gatekeepers -----------------------------
# Each bug is the daemon's code as it was (or a matcher that disagrees),
# loaded into the bundle container at interpreter start: a ``.pth`` file in
# the bundle venv imports a patch module next to it. The image is untouched.

_PATCH_SITE = "/opt/bundle/lib/python3.11/site-packages"

EGRESS_CONNECT_ONLY = '''
# issue 15's bug: the route chosen by the CONNECT target alone; the guest's
# SNI and Host pass on unchanged, nothing is refused.
m.decide = lambda injector, names: (injector.header_for(names.scheme, names.target), None)
m.EgressAddon.tls_clienthello = lambda self, data: None
'''

EGRESS_STRIPS_DOT = '''
import dataclasses
from bottle_api import hostnames
_decide = m.decide
def decide(injector, names):
    # matches routes on the normalised name but forwards the spelling the
    # guest chose (pipelock's isPassthrough does not strip the dot)
    try:
        canon = hostnames.canonical(names.target)
    except hostnames.HostError:
        return _decide(injector, names)
    return _decide(injector, dataclasses.replace(
        names, target=canon, sni=canon if names.sni else None,
        host=canon if names.host else None))
m.decide = decide
'''

PIPELOCK_CONNECT_ONLY = '''
# a stand-in that checks only the CONNECT (or request-URI) host
m.PipelockPolicy.sni_mismatch = staticmethod(lambda target, sni: False)
m.PipelockPolicy.authority_mismatch = staticmethod(lambda target, port, authority: False)
m.same_authority = lambda header, host, port: True
'''

ONBOARDING_ON = '''
from bottle_bundle import mitm
mitm.HARDENED_OPTIONS = {"onboarding": True}
'''

# The daemons run as ``python -m bottle_bundle.<daemon>`` (a ``__main__``
# copy of the module), so the patch takes over runpy: it imports the
# daemon's module, patches it as ``m``, and runs its main().
_PATCH_TEMPLATE = '''
import importlib, runpy, sys
_orig = runpy._run_module_as_main
def _run(mod_name, alter_argv=True):
    if mod_name != {module!r}:
        return _orig(mod_name, alter_argv)
    m = importlib.import_module(mod_name)
{body}
    sys.exit(m.main())
runpy._run_module_as_main = _run
'''


class _PatchedDaemonBackend(DockerBackend):
    """Runs daemon ``DAEMON``'s container with ``PATCH`` imported first."""

    DAEMON: ClassVar[str] = ""
    PATCH: ClassVar[str] = ""

    def launch(self, plan, runner, **kw):
        tmp = Path(tempfile.mkdtemp(prefix="bctl-patch-"))
        from bottle_bundle import DAEMONS

        body = "\n".join("    " + ln for ln in self.PATCH.strip().splitlines())
        (tmp / "bottle_broken_patch.py").write_text(
            _PATCH_TEMPLATE.format(module=DAEMONS[self.DAEMON], body=body))
        (tmp / "zz-bottle-broken.pth").write_text("import bottle_broken_patch\n")
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)

        def rewrite(argv):
            if _creates(argv, f"-{self.DAEMON}"):
                i = argv.index("--network")
                mounts = ["--mount", f"type=bind,source={tmp}/bottle_broken_patch.py,"
                          f"target={_PATCH_SITE}/bottle_broken_patch.py,readonly",
                          "--mount", f"type=bind,source={tmp}/zz-bottle-broken.pth,"
                          f"target={_PATCH_SITE}/zz-bottle-broken.pth,readonly"]
                return argv[:i] + mounts + argv[i:]
            return argv
        try:
            bottle = super().launch(plan, _Rewriting(runner, rewrite), **kw)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        bottle.__class__ = _SharingBottle
        bottle.share = tmp
        return bottle


class EgressConnectOnlyBackend(_PatchedDaemonBackend):
    """egress routes by the CONNECT target only (issue 15's first finding)."""

    name: ClassVar[str] = "broken-egress-connect-only"
    DAEMON, PATCH = "egress", EGRESS_CONNECT_ONLY


class EgressStripsDotBackend(_PatchedDaemonBackend):
    """egress and pipelock disagree on the trailing dot (issue 15)."""

    name: ClassVar[str] = "broken-egress-dot"
    DAEMON, PATCH = "egress", EGRESS_STRIPS_DOT


class PipelockConnectOnlyBackend(_PatchedDaemonBackend):
    """The pipelock stand-in checks only the CONNECT / request-URI host."""

    name: ClassVar[str] = "broken-pipelock-connect-only"
    DAEMON, PATCH = "pipelock", PIPELOCK_CONNECT_ONLY


class OnboardingBackend(_PatchedDaemonBackend):
    """mitmproxy's onboarding app left on in pipelock: mitm.it answers."""

    name: ClassVar[str] = "broken-onboarding"
    DAEMON, PATCH = "pipelock", ONBOARDING_ON


TestEgressConnectOnly = _case(EgressConnectOnlyBackend)
TestEgressStripsDot = _case(EgressStripsDotBackend)
TestPipelockConnectOnly = _case(PipelockConnectOnlyBackend)
TestOnboarding = _case(OnboardingBackend)


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


# --- issue 16: guest hardening (LIVE-HOST from root, LIVE-PRIVS, LIVE-ROOT-EXEC-CLEAN) ---

from bottle_ref.backends.docker import NO_IPV6_SYSCTLS  # noqa: E402


def _agent_create(argv) -> bool:
    return (argv[:2] == ["docker", "create"] and "--name" in argv
            and argv[argv.index("--name") + 1].endswith("-agent"))


def _without(argv, flags: dict[str, tuple[str, ...] | None]) -> list[str]:
    """``argv`` less each ``--flag value`` pair whose flag is in ``flags``
    (and whose value is in ``flags[flag]``, when that is not None)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in flags and i + 1 < len(argv) and (
                flags[argv[i]] is None or argv[i + 1] in flags[argv[i]]):
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


class DefaultCapsBackend(DockerBackend):
    """The agent keeps docker's default capabilities (NET_RAW included) and
    no no-new-privileges, while declaring the hardened set."""

    name: ClassVar[str] = "broken-default-caps"

    def launch(self, plan, runner, **kw):
        def rewrite(argv):
            if _agent_create(argv):
                return _without(argv, {"--cap-drop": None, "--cap-add": None,
                                       "--security-opt": ("no-new-privileges",)})
            return argv
        return super().launch(plan, _Rewriting(runner, rewrite), **kw)


class IPv6OnBackend(DockerBackend):
    """The agent's IPv6 is left on (explicitly: docker 20.10 turns it off on
    a network without IPv6), capabilities still dropped: node can reach the
    host bridge's link-local address."""

    name: ClassVar[str] = "broken-ipv6-on"

    def launch(self, plan, runner, **kw):
        on = ["--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
              "--sysctl", "net.ipv6.conf.default.disable_ipv6=0",
              "--sysctl", "net.ipv6.conf.eth0.disable_ipv6=0"]

        def rewrite(argv):
            if _agent_create(argv):
                argv = _without(argv, {"--sysctl": NO_IPV6_SYSCTLS})
                i = argv.index("--entrypoint")
                return argv[:i] + on + argv[i:]
            return argv
        return super().launch(plan, _Rewriting(runner, rewrite), **kw)


class _WorkdirRootBottle(DockerBottle):
    def exec(self, cmd, *, user="node", env=None, timeout=None, check=False):
        env = dict(env or {})
        argv = docker_exec_argv(self.agent, cmd, user=user, env_names=env,
                                workdir="/home/node/work" if user == "root" else None)
        return self.run(argv, env=env or None, timeout=timeout, check=check)


class WorkdirRootExecBackend(DockerBackend):
    """Root execs start in node's workdir (the image's WORKDIR), where plain
    ``python3 -c`` imports a module node planted."""

    name: ClassVar[str] = "broken-root-workdir"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.__class__ = _WorkdirRootBottle
        return bottle


class NoLimitsBackend(DockerBackend):
    """The agent gets no memory, pids or CPU limit, while declaring the spec's."""

    name: ClassVar[str] = "broken-no-limits"

    def launch(self, plan, runner, **kw):
        def rewrite(argv):
            if _agent_create(argv):
                return _without(argv, {"--memory": None, "--memory-swap": None,
                                       "--pids-limit": None, "--cpus": None})
            return argv
        return super().launch(plan, _Rewriting(runner, rewrite), **kw)


TestDefaultCaps = _case(DefaultCapsBackend)
TestIPv6On = _case(IPv6OnBackend)
TestWorkdirRootExec = _case(WorkdirRootExecBackend)
TestNoLimits = _case(NoLimitsBackend)


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


# --- issue 15 (second pass): the pipelock stand-in without its SSRF guard ----------

PIPELOCK_NO_SSRF = '''
# the stand-in as it was before: no SSRF guard, every resolved address passes
m.PipelockPolicy.ssrf = lambda self, host, resolved=None: None
'''


class PipelockNoSsrfBackend(_PatchedDaemonBackend):
    """The pipelock stand-in forwards to hosts that resolve to internal addresses."""

    name: ClassVar[str] = "broken-pipelock-no-ssrf"
    DAEMON, PATCH = "pipelock", PIPELOCK_NO_SSRF


TestPipelockNoSsrf = _case(PipelockNoSsrfBackend)


# --- ca-ec (found under issue 19): an RSA bottle CA, which real pipelock refuses ---------

def _rsa_ca(argv):
    """`bottle_ref.ca.ca_init_argv` as it was: ``-newkey rsa:2048`` instead
    of ``-newkey ec -pkeyopt ec_paramgen_curve:prime256v1`` (both CAs)."""
    if argv[:3] == ["openssl", "req", "-x509"] and argv[3:7] == [
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]:
        return argv[:3] + ["-newkey", "rsa:2048"] + argv[7:]
    return argv


class RsaCaBackend(DockerBackend):
    """LIVE-CA-TRUST: the bottle CAs are RSA-2048. Real pipelock's LoadCA
    (luckyPipewrench/pipelock internal/certgen/certgen.go) refuses an RSA key
    ("CA key must be ECDSA, got *rsa.PrivateKey"), and so does the stand-in:
    pipelock never starts, and launch fails naming it."""

    name: ClassVar[str] = "broken-rsa-ca"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, _Rewriting(runner, _rsa_ca), **kw)
        bottle.runner = runner
        return bottle


TestRsaCa = _case(RsaCaBackend)
