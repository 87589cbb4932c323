"""A canary TCP listener on host loopback (LIVE-LOOPBACK).

It accepts and counts connections in a daemon thread for a bounded time
(``lifetime``), so a forgotten canary can never outlive the test run. The
harness first proves the canary works by dialling it from the host
(`self_test`), then asserts the guest could not reach it: the guest's
probe must fail AND the canary must have counted no new connection.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time

LOOPBACK = "127.0.0.1"


class Canary:
    def __init__(self, host: str = LOOPBACK, *, lifetime: float = 600.0):
        self.host = host
        self.lifetime = lifetime
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
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(16)
        sock.setblocking(False)
        self._sock = sock
        self._port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"canary-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        assert self._sock is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._sock, selectors.EVENT_READ)
            while not self._stop.is_set() and time.monotonic() < deadline:
                for _ in sel.select(timeout=0.2):
                    try:
                        conn, peer = self._sock.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    with self._lock:
                        self._hits.append(peer[:2])
                    conn.close()
        self._sock.close()

    def self_test(self, timeout: float = 5.0) -> None:
        """Dial the canary from the host and wait until it counted us: proof
        that a guest connection would be seen."""
        if not self.running:
            raise RuntimeError(f"canary on {self.host}:{self.port} is not running "
                               "(stopped, or its lifetime ran out)")
        before = self.hits
        with socket.create_connection((self.host, self.port), timeout=timeout):
            pass
        deadline = time.monotonic() + timeout
        while self.hits <= before:
            if time.monotonic() > deadline or not self.running:
                raise RuntimeError(f"canary on {self.host}:{self.port} did not count a "
                                   "connection from the host")
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Canary":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
