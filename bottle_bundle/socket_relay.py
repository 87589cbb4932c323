"""A byte relay between Unix sockets and loopback TCP (stdlib only).

``socket_relay.py LISTEN=TARGET [LISTEN=TARGET ...]`` where each side is
``tcp:HOST:PORT`` or ``unix:/absolute/path``. One listener per mapping; each
accepted connection dials TARGET and copies bytes both ways until either
side closes. Nothing is parsed or logged beyond one line per listener.

The smolmachines bottle has no network at all (no ``--net``: smolvm 1.9.3
``src/network/launch.rs`` ``plan_launch_network`` -> ``EffectiveNetworkBackend::None``);
its only way out is one ``--mount-socket HOST_PATH:GUEST_PATH`` per
agent-facing daemon. The same file runs in three places:

- in the bundle (``BOTTLE_SOCKET_RELAYS``, started by the supervisor):
  ``unix:<state-dir socket>=tcp:127.0.0.1:<daemon port>``, so the bundle
  publishes no port;
- in the guest, as root (copied in at provisioning, run by absolute path):
  ``tcp:127.0.0.1:<daemon port>=unix:<mounted socket>``, so HTTPS_PROXY,
  git's insteadOf and the MCP URL stay plain loopback TCP;
- on a host whose engine cannot share Unix sockets through bind mounts
  (Docker Desktop on macOS): ``unix:<state-dir socket>=tcp:127.0.0.1:<published port>``.

A listening Unix socket is made mode 0666 inside its directory, whose own
mode is what guards it (the state dir is the operator's, 0700).
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import threading
from collections.abc import Sequence

PROG = "socket-relay"
ENV = "BOTTLE_SOCKET_RELAYS"  # the bundle's mappings, space-separated
BACKLOG = 64
CHUNK = 65536


class UsageError(ValueError):
    pass


def parse_end(text: str) -> tuple[str, object]:
    """``("tcp", (host, port))`` or ``("unix", "/path")``."""
    kind, sep, rest = text.partition(":")
    if kind == "unix" and sep and rest.startswith("/"):
        return "unix", rest
    if kind == "tcp" and sep:
        host, sep2, port = rest.rpartition(":")
        if sep2 and host and port.isdigit() and 0 < int(port) < 65536:
            return "tcp", (host.strip("[]"), int(port))
    raise UsageError(f"bad relay end {text!r} (expected tcp:HOST:PORT or unix:/PATH)")


def parse_mappings(args: Sequence[str]) -> list[tuple[tuple[str, object], tuple[str, object]]]:
    out = []
    for arg in args:
        listen, sep, target = arg.partition("=")
        if not sep:
            raise UsageError(f"bad mapping {arg!r} (expected LISTEN=TARGET)")
        out.append((parse_end(listen), parse_end(target)))
    if not out:
        raise UsageError(f"usage: {PROG} LISTEN=TARGET [LISTEN=TARGET ...]")
    return out


def listen(end: tuple[str, object]) -> socket.socket:
    kind, addr = end
    if kind == "unix":
        path = str(addr)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)  # a stale socket from an earlier run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, 0o666)
    else:
        host, port = addr  # type: ignore[misc]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def dial(end: tuple[str, object]) -> socket.socket:
    kind, addr = end
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(addr))
        return sock
    return socket.create_connection(addr, timeout=10)  # type: ignore[arg-type]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def _serve_one(conn: socket.socket, target: tuple[str, object]) -> None:
    try:
        upstream = dial(target)
        upstream.settimeout(None)
    except OSError:
        conn.close()  # the target is down: the client sees the connection close
        return
    back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
    back.start()
    _pump(conn, upstream)
    back.join()
    conn.close()
    upstream.close()


def _accept_loop(server: socket.socket, target: tuple[str, object]) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            continue
        threading.Thread(target=_serve_one, args=(conn, target), daemon=True).start()


def describe(end: tuple[str, object]) -> str:
    kind, addr = end
    return f"unix:{addr}" if kind == "unix" else f"tcp:{addr[0]}:{addr[1]}"  # type: ignore[index]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args and os.environ.get(ENV):
        args = os.environ[ENV].split()
    try:
        mappings = parse_mappings(args)
        servers = [(listen(lst), lst, tgt) for lst, tgt in mappings]
    except (UsageError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return 2
    threads = []
    for server, lst, tgt in servers:
        print(f"{PROG}: {describe(lst)} -> {describe(tgt)}", flush=True)
        t = threading.Thread(target=_accept_loop, args=(server, tgt), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
