"""Canary TCP listeners on the host (LIVE-LOOPBACK, LIVE-HOST).

A canary accepts and counts connections in a daemon thread for a bounded
time (``lifetime``), so a forgotten canary can never outlive the test run.
The harness first proves the canary works by dialling it from the host
(`self_test`), then asserts the guest could not reach it: the guest's
probe must fail AND the canary must have counted no new connection.

`Canary()` listens on host loopback only. `Canary(WILDCARD)` listens on
every host address, IPv4 ``0.0.0.0`` and IPv6 ``::`` (v6-only, same port),
as a careless host service does; `host_addresses` lists the host's own
addresses to dial it through. With ``udp=True`` it also counts UDP
datagrams on the same port number and addresses (`udp_hits`): what a guest
with raw sockets can send one way (LIVE-HOST). Listening is not traffic: only the guest and
the host itself ever dial a canary.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
import time

LOOPBACK = "127.0.0.1"
WILDCARD = ("0.0.0.0", "::")


def host_addresses() -> tuple[str, ...]:
    """Every address of this host's own interfaces, IPv4 and IPv6 (global
    and unique-local; not link-local), loopback included. Read from the
    kernel (/proc/net/fib_trie, /proc/net/if_inet6); elsewhere, what the
    host name resolves to."""
    out: dict[str, None] = {}
    try:
        lines = open("/proc/net/fib_trie").read().splitlines()
        for prev, line in zip(lines, lines[1:]):
            if "/32 host LOCAL" in line and prev.strip().startswith("|--"):
                out[prev.strip()[4:]] = None
    except OSError:
        pass
    try:
        for line in open("/proc/net/if_inet6"):
            f = line.split()
            addr = ipaddress.IPv6Address(bytes.fromhex(f[0]))
            if not addr.is_link_local:
                out[str(addr)] = None
    except OSError:
        pass
    if not out:
        try:
            for info in socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP):
                out[info[4][0]] = None
        except OSError:
            pass
        out.update({LOOPBACK: None, "::1": None})
    return tuple(out)


class Canary:
    def __init__(self, host: str | tuple[str, ...] = LOOPBACK, *, lifetime: float = 600.0,
                 udp: bool = False):
        self.hosts = (host,) if isinstance(host, str) else tuple(host)
        self.udp = udp
        self._udp_socks: list[socket.socket] = []
        self._udp_hits: list[tuple[str, int]] = []
        self._udp_data: list[bytes] = []
        self.host = self.hosts[0]
        self.lifetime = lifetime
        self._socks: list[socket.socket] = []
        self._sock: socket.socket | None = None
        self._port = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._hits: list[tuple[str, int]] = []

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("canary not started")
        return self._port

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self._hits)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "Canary":
        for host in self.hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((host, self._port))
            except OSError:
                sock.close()
                if family == socket.AF_INET6 and self._socks:
                    continue  # no IPv6 on this host: the IPv4 wildcard stays
                raise
            sock.listen(16)
            sock.setblocking(False)
            self._socks.append(sock)
            self._port = self._port or sock.getsockname()[1]
        self._sock = self._socks[0]
        for sock in list(self._socks) if self.udp else ():
            family = sock.family
            u = socket.socket(family, socket.SOCK_DGRAM)
            if family == socket.AF_INET6:
                u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                u.bind((sock.getsockname()[0], self._port))
            except OSError:
                u.close()
                for x in self._socks + self._udp_socks:
                    x.close()
                raise
            u.setblocking(False)
            self._udp_socks.append(u)
        self._thread = threading.Thread(target=self._serve, name=f"canary-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        with selectors.DefaultSelector() as sel:
            for sock in self._socks:
                sel.register(sock, selectors.EVENT_READ)
            for sock in self._udp_socks:
                sel.register(sock, selectors.EVENT_READ, "udp")
            while not self._stop.is_set() and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.2):
                    if key.data == "udp":
                        try:
                            data, peer = key.fileobj.recvfrom(65535)
                        except (BlockingIOError, InterruptedError):
                            continue
                        with self._lock:
                            self._udp_hits.append(peer[:2])
                            self._udp_data.append(data[:256])
                        continue
                    try:
                        conn, peer = key.fileobj.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    with self._lock:
                        self._hits.append(peer[:2])
                    conn.close()
        for sock in self._socks + self._udp_socks:
            sock.close()

    @property
    def udp_hits(self) -> int:
        """UDP datagrams counted (``udp=True`` only)."""
        with self._lock:
            return len(self._udp_hits)

    @property
    def udp_peers(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._udp_hits)

    def udp_carrying(self, marker: bytes) -> list[tuple[str, int]]:
        """Peers of the datagrams counted whose payload holds ``marker``."""
        with self._lock:
            return [p for p, d in zip(self._udp_hits, self._udp_data) if marker in d]

    def udp_self_test(self, via: tuple[str, ...], timeout: float = 5.0) -> list[str]:
        """Send one datagram from the host to the canary on each of ``via``
        and wait until each was counted: proof a guest datagram would be.
        Each is sent FROM the address it is sent to (bound first), so a
        datagram never leaves the host: an address that is no longer the
        host's (another user's bridge, gone meanwhile) fails the bind and is
        skipped. Returns the addresses tested."""
        tested = []
        for target in via:
            before = self.udp_hits
            family = socket.AF_INET6 if ":" in target else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((target, 0))
                except OSError:
                    continue  # not (or no longer) an address of this host
                try:
                    s.sendto(b"self-test", (target, self.port))
                except OSError as exc:
                    raise RuntimeError(f"canary UDP port {self.port} not reachable from the "
                                       f"host via {target}: {exc}") from None
            tested.append(target)
            deadline = time.monotonic() + timeout
            while self.udp_hits <= before:
                if time.monotonic() > deadline or not self.running:
                    raise RuntimeError(f"canary did not count a UDP datagram from the host "
                                       f"via {target}")
                self._stop.wait(0.01)
        return tested

    @property
    def peers(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._hits)

    def self_test(self, timeout: float = 5.0, via: tuple[str, ...] = ()) -> None:
        """Dial the canary from the host (on its own address, or on each
        address of ``via``: the host's own) and wait until it counted each:
        proof that a guest connection would be seen."""
        if not self.running:
            raise RuntimeError(f"canary on {self.host}:{self.port} is not running "
                               "(stopped, or its lifetime ran out)")
        targets = via or ((LOOPBACK if self.host == "0.0.0.0" else self.host),)
        for target in targets:
            before = self.hits
            try:
                with socket.create_connection((target, self.port), timeout=timeout):
                    pass
            except OSError as exc:
                raise RuntimeError(f"canary on port {self.port} not reachable from the host "
                                   f"via {target}: {exc}") from None
            deadline = time.monotonic() + timeout
            while self.hits <= before:
                if time.monotonic() > deadline or not self.running:
                    raise RuntimeError(f"canary on {self.host}:{self.port} did not count a "
                                       f"connection from the host via {target}")
                self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Canary":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
