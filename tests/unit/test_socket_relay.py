"""bottle_bundle/socket_relay.py: the stdlib relay between loopback TCP and
Unix sockets that carries a smolmachines guest's traffic (issue 14)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import bottle_bundle.socket_relay as relay

SCRIPT = Path(relay.__file__)


def _echo_server(sock: socket.socket) -> threading.Thread:
    def serve():
        conn, _ = sock.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(b"echo:" + data)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


@pytest.fixture
def short_tmp():
    """A short folder (sun_path is 108 bytes; pytest's tmp_path may be longer)."""
    import tempfile
    import shutil
    d = Path(tempfile.mkdtemp(prefix="rly", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _start(*mappings: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *mappings], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    for _ in mappings:  # one line per listener, printed once every one is bound
        assert proc.stdout.readline().startswith(b"socket-relay: ")
    return proc


def test_tcp_to_unix_and_unix_to_tcp_carry_bytes_both_ways(short_tmp):
    # the guest's direction: loopback TCP -> a (mounted) Unix socket
    upstream = socket.socket(socket.AF_UNIX)
    upstream.bind(str(short_tmp / "d.sock"))
    upstream.listen(1)
    _echo_server(upstream)
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    # the bundle's direction: a Unix socket -> loopback TCP (here: the relay above)
    proc = _start(f"tcp:127.0.0.1:{port}=unix:{short_tmp / 'd.sock'}",
                  f"unix:{short_tmp / 'front.sock'}=tcp:127.0.0.1:{port}")
    try:
        assert (short_tmp / "front.sock").stat().st_mode & 0o777 == 0o666
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(short_tmp / "front.sock"))
        client.sendall(b"hello")
        client.shutdown(socket.SHUT_WR)
        got = b""
        while data := client.recv(4096):
            got += data
        assert got == b"echo:hello"
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        upstream.close()


def test_a_dead_target_closes_the_client_and_the_relay_lives_on(short_tmp):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    proc = _start(f"tcp:127.0.0.1:{port}=unix:{short_tmp / 'nobody.sock'}")
    try:
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", port), 5)
            assert c.recv(10) == b""  # closed: fail closed, no bytes
            c.close()
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("args", [[], ["tcp:127.0.0.1:80"], ["udp:x:1=unix:/a"],
                                  ["unix:rel.sock=tcp:127.0.0.1:1"], ["tcp:h:99999=unix:/a"]])
def test_bad_mappings_are_one_line(args):
    r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                       timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_relay_imports_only_the_standard_library():
    """It is copied into the guest and run there by absolute path."""
    import ast

    roots = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots
