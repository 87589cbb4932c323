"""Live checks that the guest is confined: the host's services, the guest's
routes, engine sockets and host mounts inside the guest, and (host side)
where the bottle's containers publish ports."""

from __future__ import annotations

import ipaddress
import json
import secrets

from ...live import probes
from ...live.canary import host_addresses
from ...live.harness import TOKEN_BODY, TOKEN_PREFIX
from ...markers import clause
from ...outcomes import not_supported
from .support import BOTH, _call_hook, _unreached

# A host service on the guest's own bridge answers a SYN in milliseconds; an
# address nobody owns costs the ARP timeout (~3 s) or this bound, once (the
# targets are dialled concurrently).
HOST_DIAL_S = 2.0


class LiveConfinement:
    """LIVE-HOST, LIVE-ROUTES, LIVE-CONFINE, PORT-LOOPBACK (live half)."""

    @clause("LIVE-HOST")
    @BOTH
    def test_host_services_unreachable(self, live, host_canary, probe_log):
        """The host's services, dialled over TCP as node (every gateway and
        host address) and, independently, as node and root over IPv6
        neighbours and raw sockets (`_root_and_raw`). The two halves run at
        once: most of each is one dial timeout that nothing answers."""
        live.need_network()
        addrs = host_addresses()
        host_canary.self_test(via=addrs)  # it answers the host on each of them
        net = probes.guest_net(live.bottle, log=probe_log)
        port = host_canary.port
        via = list(dict.fromkeys([*probes.gateways(net), *addrs]))
        targets = [(a, port) for a in via]
        targets += [(probes.GATEWAY_TARGET, port), (probes.PROXY_HOST_TARGET, port)]
        raw = self._root_and_raw(live, host_canary, probe_log)
        before = host_canary.hits
        (*direct, control), runs = probes.concurrently(
            lambda: probes.tcp(live.bottle, [*targets, (probes.PROXY_TARGET, 0)],
                               log=probe_log, name="host", timeout=HOST_DIAL_S),
            raw.send)
        assert control.connected, (
            f"control failed: the guest cannot reach its first hop ({control.target}: "
            f"{control.error}), so the host probe proves nothing")
        assert not _unreached(direct), (
            f"the guest reached a host service listening on 0.0.0.0/:: (port {port}): "
            f"{_unreached(direct)}")
        raw.judge(runs)
        assert host_canary.hits == before, (
            f"the host canary counted {host_canary.hits - before} connection(s) from root "
            f"or node in the guest: {host_canary.peers[before:]}")

    @staticmethod
    def _root_and_raw(live, host_canary, probe_log) -> "_RootAndRaw":
        """Issue 16: the same host service, tried as node AND root, over the
        guest's IPv6 neighbours (link-local, found by neighbour discovery)
        and, where the guest may open AF_PACKET sockets (NET_RAW), with
        hand-framed UDP to every host address (`probes.host_raw`). Every
        datagram carries a fresh marker the canary looks for. Its UDP
        control runs here, before anything is sent."""
        addrs = host_addresses()  # again: other users' bridges come and go on a shared host
        v4 = [a for a in addrs if ":" not in a and not a.startswith("127.")]
        v6 = [a for a in addrs if ":" in a and a != "::1"]
        tested = host_canary.udp_self_test(via=tuple(v4 + v6))
        assert tested, f"control failed: the UDP canary was reached via none of {v4 + v6}"
        return _RootAndRaw(live, host_canary, probe_log, addrs,
                           [a for a in v4 if a in tested], [a for a in v6 if a in tested])

    # -- LIVE-ROUTES --------------------------------------------------------------------
    @clause("LIVE-ROUTES")
    @BOTH
    def test_guest_routes_only_its_own_subnets(self, live, probe_log):
        live.need_network()
        net = probes.guest_net(live.bottle, log=probe_log)  # read, never dialled
        # Control: a route table was read. A guest whose only interface is
        # `lo` has none to show (no network at all), which is the answer.
        assert net.routes or net.loopback_only, (
            f"control failed: the guest shows no route at all, yet has interfaces "
            f"{list(net.interfaces)}")
        out = [str(r) for r in net.routes if r.default or r.gateway]
        assert not out, f"the guest has a way off its own subnets: {out}"
        host = [ipaddress.ip_address(a) for a in host_addresses()]
        shared = [f"{r} holds host address {a}" for r in net.routes for a in host
                  if not a.is_loopback and a.version == r.family
                  and a in ipaddress.ip_network(f"{r.dst}/{r.prefix}", strict=False)]
        assert not shared, f"the host sits on the guest's own subnet: {shared}"

    # -- LIVE-CONFINE -------------------------------------------------------------------
    @clause("LIVE-CONFINE")
    @BOTH
    def test_no_engine_socket_no_host_mounts(self, live, probe_log):
        net = probes.guest_net(live.bottle, log=probe_log)
        declared = tuple(live.bottle.guest_mounts())
        mounts = probes.host_mounts(net.mounts, declared)
        assert not mounts, (
            f"host filesystems mounted into the guest beyond the engine's own files and the "
            f"declared {list(declared)}: {[str(m) for m in mounts]}")
        walk = probes.scan(live.bottle, TOKEN_PREFIX, TOKEN_BODY, log=probe_log,
                           changed_within=1.0)
        assert walk.older + walk.files > 100, (
            f"control failed: the walk saw only {walk.older + walk.files} files")
        engines = [p for p in walk.sockets if probes.ENGINE_SOCKET.search(p)]
        assert not engines, f"container-engine socket(s) in the guest: {engines}"

    # -- PORT-LOOPBACK (live half, host side) --------------------------------------------
    @clause("PORT-LOOPBACK", tier="live")
    @BOTH
    def test_published_ports_bind_loopback(self, live, live_harness):
        listed = _call_hook(live.bottle.resources, "Bottle.resources()")
        containers = [r.name for r in listed if r.kind == "container"]
        if not containers:
            not_supported("Bottle.resources() lists no container whose ports the host could see")
        out = live_harness.engine.run("container", "inspect", *containers, check=False).stdout
        info = json.loads(out or "[]")
        assert len(info) >= 1, f"none of the listed containers exists: {containers}"
        bad = []
        for c in info:
            name = c.get("Name", "").lstrip("/")
            host = c.get("HostConfig") or {}
            if host.get("NetworkMode") == "host":
                bad.append(f"{name}: network mode host (every port it opens is the host's)")
            if host.get("PublishAllPorts"):
                bad.append(f"{name}: publishes every exposed port (-P) on all addresses")
            bindings = dict(host.get("PortBindings") or {})
            for port, binds in ((c.get("NetworkSettings") or {}).get("Ports") or {}).items():
                bindings.setdefault(port, binds)
            for port, binds in bindings.items():
                for b in binds or ():
                    ip = (b or {}).get("HostIp") or "0.0.0.0"
                    if not ipaddress.ip_address(ip).is_loopback:
                        bad.append(f"{name}: {port} published on {ip}:{b.get('HostPort', '')}")
        assert not bad, f"bundle ports reachable beyond host loopback: {bad}"


class _RootAndRaw:
    """LIVE-HOST's root and raw-socket half: `send` probes (as node and as
    root at once), `judge` asserts on what they saw and what the canary got."""

    def __init__(self, live, host_canary, probe_log, addrs, v4, v6):
        self.live, self.canary, self.log = live, host_canary, probe_log
        self.addrs, self.v4, self.v6 = addrs, v4, v6
        self.marker = "bottle-live-raw-" + secrets.token_hex(6)

    def send(self) -> list:
        runs = probes.concurrently(*(
            (lambda u=u: probes.host_raw(self.live.bottle, self.v4, self.v6, self.canary.port,
                                         self.marker, user=u, log=self.log,
                                         timeout=HOST_DIAL_S))
            for u in ("node", "root")))
        # a barrier: the datagrams sent before it (same sockets) are counted
        self.canary.udp_self_test(via=tuple(a for a in ("127.0.0.1", "::1") if a in self.addrs))
        return runs

    def judge(self, runs) -> None:
        node, root = runs
        port = self.canary.port
        assert root.uid == 0, f"control failed: the root probe ran as uid {root.uid}"
        reached = [f"{r.uid and 'node' or 'root'}: {t.target}" for r in runs for t in r.tcp
                   if t.connected]
        assert not reached, (
            f"the guest reached a host service listening on 0.0.0.0/:: (port "
            f"{port}) through a host or neighbour address: {reached} "
            f"(neighbours: {list(root.neighbours or node.neighbours)})")
        raw = [f"{'node' if r.uid else 'root'}: {t}" for r in runs for t in r.raw_tcp]
        assert not raw, (
            f"root in the guest completed a TCP handshake by hand (AF_PACKET: {root.packet}) "
            f"with a host service listening on :: (port {port}): {raw}")
        got = self.canary.udp_carrying(self.marker.encode())
        assert not got, (
            f"the host received {len(got)} UDP datagram(s) framed by root in the guest "
            f"with a raw socket (AF_PACKET: {root.packet}) from {sorted(set(got))[:5]}; "
            f"sent {list(root.udp_sent)[:6]}")
