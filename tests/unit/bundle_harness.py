"""Helpers for testing the bundle daemons as real processes on loopback.

Used by ``tests/unit/test_bundle_*.py`` and usable by the live tier: start a
daemon with ``python -m bottle_bundle <name>`` and a given environment,
wait until its port accepts connections (bounded `bottle_api.runner.poll`,
no fixed sleep), and always stop it, even when an assertion failed. Logs go
to a file so a failing test can show them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bottle_ref.ca import ca_init_argv
from bottle_api.runner import SubprocessRunner, poll

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# How often `Daemon.wait_ready` probes the ports: a connect on loopback is
# cheap, and `poll`'s default back-off (up to 0.5 s) noticed a daemon ready
# after ~0.9 s up to half a second late, on every one of the ~30 starts.
READY_INTERVAL = 0.02
READY_MAX_INTERVAL = 0.05


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Daemon:
    """A started ``bottle-bundle`` process and where its output goes."""

    proc: subprocess.Popen
    log: Path
    names: str = ""
    ports: tuple[int, ...] = field(default=())

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, host: str = LOOPBACK, timeout: float = START_TIMEOUT) -> None:
        """Until every port accepts; fails early (with the log) if the
        process exits instead."""
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"bottle-bundle {self.names} exited {self.proc.returncode} before "
                    f"listening:\n{self.output()}")
            return all(port_open(host, p) for p in self.ports)

        try:
            poll(SubprocessRunner(), ready, timeout=timeout, interval=READY_INTERVAL,
                 max_interval=READY_MAX_INTERVAL, what=f"bottle-bundle {self.names}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.output()}") from None

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        return self.proc.returncode


def spawn(names: str, env: Mapping[str, str], log: Path, *, ports: tuple[int, ...] = ()) -> Daemon:
    """Start ``python -m bottle_bundle NAMES`` with ``env`` over os.environ."""
    child_env = dict(os.environ)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        child_env.pop(key, None)
    child_env.update(env)
    out = open(log, "wb")  # noqa: SIM115 - closed right after the child inherits it
    try:
        proc = subprocess.Popen([sys.executable, "-m", "bottle_bundle", names],
                                env=child_env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()
    return Daemon(proc, log, names, ports)


@contextlib.contextmanager
def running(names: str, env: Mapping[str, str], log: Path, *, ports: tuple[int, ...]) -> Iterator[Daemon]:
    """A ready daemon for the ``with`` body; stopped afterwards, always."""
    daemon = spawn(names, env, log, ports=ports)
    try:
        daemon.wait_ready()
        yield daemon
    finally:
        daemon.stop()


# -- certificates ----------------------------------------------------------------

def make_ca(directory: Path, common_name: str = "bottle-test CA") -> tuple[Path, Path]:
    """``(ca.pem, ca-key.pem)`` made exactly as launch makes bottle CAs."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(ca_init_argv(directory, common_name=common_name), check=True,
                   capture_output=True)
    return directory / "ca.pem", directory / "ca-key.pem"


# CA pairs real pipelock's LoadCA refuses (internal/certgen/certgen.go), each
# with the text it refuses them with (tests/unit/test_pipelock_load_ca.py has
# the rule-by-rule unit tests; these are for the running daemons)
BAD_CAS = {
    "rsa": "parse CA key: CA key must be ECDSA, got *rsa.PrivateKey",
    "not-a-ca": "certificate is not a CA",
    "no-keycertsign": "CA certificate missing KeyUsageCertSign",
    "mismatched-key": "CA key does not match certificate",
    "rsa-pem-block": 'parse CA key: unsupported PEM block type "RSA PRIVATE KEY" '
                     '(expected "EC PRIVATE KEY" or "PRIVATE KEY")',
}


def make_bad_ca(directory: Path, kind: str) -> tuple[Path, Path]:
    """``(ca.pem, ca-key.pem)`` (key 0600) of one of the `BAD_CAS` kinds."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    if kind in ("rsa", "rsa-pem-block"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bad CA ({kind})")])
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict(digital_signature=True, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False,
                 key_cert_sign=kind != "no-keycertsign", crl_sign=False,
                 encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=kind != "not-a-ca", path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(**usage), critical=True)
            .sign(key, hashes.SHA256()))
    if kind == "mismatched-key":
        key = ec.generate_private_key(ec.SECP256R1())
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if kind == "rsa-pem-block"
           else serialization.PrivateFormat.PKCS8)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))
    return cert_path, key_path


def make_server_cert(directory: Path, names: tuple[str, ...] = ("localhost",),
                     ips: tuple[str, ...] = (LOOPBACK,)) -> tuple[Path, Path]:
    """A self-signed server certificate for the test upstream."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "server.pem", directory / "server-key.pem"
    san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


# -- clients that talk to a proxy explicitly (never through env proxies) -------

@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def via_proxy(proxy: tuple[str, int], url_host: str, port: int, path: str = "/", *,
              https: bool = False, headers: Mapping[str, str] | None = None,
              cafile: Path | None = None, timeout: float = 10.0) -> Reply:
    """One GET through an HTTP proxy: absolute-form for http, CONNECT for https.

    A refused CONNECT comes back as a `Reply` with the proxy's status and
    headers (http.client would raise it as an OSError)."""
    headers = dict(headers or {})
    if not https:
        conn = http.client.HTTPConnection(*proxy, timeout=timeout)
        try:
            conn.request("GET", f"http://{url_host}:{port}{path}", headers=headers)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    sock = socket.create_connection(proxy, timeout=timeout)
    try:
        sock.sendall(f"CONNECT {url_host}:{port} HTTP/1.1\r\nHost: {url_host}:{port}\r\n\r\n"
                     .encode())
        tunnel = http.client.HTTPResponse(sock, method="CONNECT")
        tunnel.begin()
        if tunnel.status != 200:
            return Reply(tunnel.status, {k.lower(): v for k, v in tunnel.getheaders()},
                         tunnel.read())
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        tls = context.wrap_socket(sock, server_hostname=url_host)
        conn = http.client.HTTPConnection(url_host, port, timeout=timeout)
        conn.sock = tls
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        sock.close()
