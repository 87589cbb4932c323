"""The exposure probes' host-side logic and guest-side helpers (issue 20),
without an engine: key matching, the port sweeper on this host's loopback,
what counts as an undeclared port or a DNS answer, and the loopback-resolver
guard of LIVE-DNS."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conformance.live import exposure
from conformance.live.exposure import DnsResult, Endpoint, Surface, Swept
from conformance.tiers.live import exposure as tier

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


def _ca(tmp: Path, name: str, kind: str) -> tuple[str, bytes]:
    key, cert = tmp / f"{name}-key.pem", tmp / f"{name}.pem"
    new = ["-newkey", "rsa:2048"] if kind == "rsa" else [
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509", *new, "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", f"/CN={name}", "-days", "1"], check=True,
                   capture_output=True)
    return cert.read_text(), key.read_bytes()


def _key_hashes(pem: bytes) -> set[str]:
    out: set[str] = set()
    for _, der in exposure.pem_blocks(pem, rb"PRIVATE KEY"):
        exposure.der_items(der, out)
    return out


@needs_openssl
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_private_key_matches_its_own_ca_certificate_only(tmp_path, kind):
    cert, key = _ca(tmp_path, "mine", kind)
    other, _ = _ca(tmp_path, "other", kind)
    hashes = _key_hashes(key)
    assert hashes & exposure.cert_key_hashes(cert)
    assert not hashes & exposure.cert_key_hashes(other)


@needs_openssl
def test_a_traditional_rsa_key_matches_too(tmp_path):
    cert, _ = _ca(tmp_path, "mine", "rsa")
    trad = subprocess.run(["openssl", "rsa", "-in", str(tmp_path / "mine-key.pem"), "-traditional"],
                          check=True, capture_output=True).stdout
    assert b"BEGIN RSA PRIVATE KEY" in trad
    assert _key_hashes(trad) & exposure.cert_key_hashes(cert)


def test_garbage_pem_yields_nothing():
    junk = b"-----BEGIN PRIVATE KEY-----\nAAAA////\n-----END PRIVATE KEY-----\n"
    assert _key_hashes(junk) == set()
    assert exposure.cert_key_hashes("no certificate here") == frozenset()


def test_the_guest_scripts_compile_and_share_the_walker():
    for script in (exposure._SURFACE_SCRIPT, exposure._SWEEP_SCRIPT, exposure._DNS_SCRIPT,
                   exposure._KEYS_SCRIPT):
        compile(script, "<guest>", "exec")
    assert "def der_items(" in exposure._KEYS_SCRIPT
    assert "__WELL_KNOWN__" not in exposure._SURFACE_SCRIPT


def _sweeper():
    ns: dict = {}
    exec(compile(exposure._COMMON, "<common>", "exec"), ns)
    return ns["sweep"]


def test_the_sweeper_tells_open_from_refused_on_loopback():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: a reset
    try:
        port, shut = listener.getsockname()[1], closed.getsockname()[1]
        opened, refused, other, silent, dark = _sweeper()("127.0.0.1", [port, shut], 64, 2.0)
        assert opened == [port]
        assert refused == 1 and silent == 0 and not dark and not other
    finally:
        listener.close()
        closed.close()


def test_addresses_swept_side_by_side_keep_each_its_own_result():
    """`sweep_all` runs the addresses in threads (SWEEP_PARALLEL): each
    address's open ports and resets stay its own, with a batch small enough
    that several batches and the shared descriptor limit are exercised."""
    ns: dict = {}
    exec(compile(exposure._COMMON, "<common>", "exec"), ns)
    listeners = {}
    for addr in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        s = socket.socket()
        s.bind((addr, 0))
        s.listen(8)
        listeners[addr] = s
    closed = []  # bound, never listening: ports no other process can take meanwhile
    for _ in range(300):
        c = socket.socket()
        c.bind(("127.0.0.1", 0))
        closed.append(c)
    try:
        ports = sorted({s.getsockname()[1] for s in listeners.values()}
                       | {c.getsockname()[1] for c in closed})
        res = ns["sweep_all"](list(listeners), ports, 128, 2.0)
        assert list(res) == list(listeners)
        for addr, s in listeners.items():
            mine = s.getsockname()[1]
            assert res[addr]["open"] == [mine], (addr, res[addr])
            assert res[addr]["refused"] == len(ports) - 1 and res[addr]["silent"] == 0, res[addr]
            assert not res[addr]["other"] and not res[addr]["dark"]
    finally:
        for s in [*listeners.values(), *closed]:
            s.close()


def _surface(open_ports, declared_port=8888):
    ep = Endpoint("pipelock", declared_port, "HTTPS_PROXY", True, "", ("10.0.0.2",))
    return Surface((), (), (ep,), {"10.0.0.2": ("endpoint pipelock",)}, {},
                   {"10.0.0.2": Swept(tuple(open_ports), 65000, {}, 0, 1.0)}, 65535)


def test_only_undeclared_open_ports_count():
    assert _surface([8888]).undeclared_open() == {}
    assert _surface([8888, 9090]).undeclared_open() == {"10.0.0.2": [9090]}
    assert _surface([]).undeclared_open() == {}


def test_reachable_means_a_connection_or_a_reset():
    assert Swept((), 1, {}, 0, 0.1).reachable
    assert Swept((22,), 0, {}, 0, 0.1).reachable
    assert not Swept((), 0, {"ENETUNREACH": 65535}, 0, 0.1).reachable
    assert not Swept((), 0, {}, 65535, 0.1, dark=True).reachable


def test_a_dns_answer_is_noerror_with_records():
    def asked(rcode, answers):
        return {"server": "10.0.0.3", "proto": "udp", "name": "x", "how": "resolv.conf",
                "reply": {"rcode": rcode, "answers": answers}, "error": ""}

    none = DnsResult((asked(3, 0), asked(2, 0), asked(0, 0)), {}, (), {"addrs": [], "name": "g"})
    assert none.answered() == []
    yes = DnsResult((asked(0, 1),), {}, (), {"addrs": ["198.51.100.53"], "name": "g"})
    assert len(yes.answered()) == 2


def test_loopback_host_resolvers_are_found(tmp_path, monkeypatch):
    conf = tmp_path / "resolv.conf"
    monkeypatch.setattr(tier, "HOST_RESOLV_CONF", conf)
    conf.write_text("nameserver 10.255.255.53\nsearch x\n")
    assert tier._host_loopback_resolvers() == []
    conf.write_text("# systemd\nnameserver 127.0.0.53\nnameserver ::1\nnameserver bad\n")
    assert tier._host_loopback_resolvers() == ["127.0.0.53", "::1"]
