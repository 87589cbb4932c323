"""A throwaway CA and a server certificate for the test upstream.

The bottle's proxies are told to trust this CA for upstream TLS through
`bottle_api.backend.UPSTREAM_CA_ENV`; the guest is never told about
it. So a TLS request from the guest that succeeds proves the guest validated
the *first hop's* certificate with the trust the backend provisioned
(LIVE-CA-TRUST), and the certificate the guest sees must not be this CA's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bottle_api.runner import Runner

CA_COMMON_NAME = "bottle-conformance test upstream CA"
OPENSSL_TIMEOUT = 60.0


@dataclass(frozen=True)
class TestPki:
    """Host paths of the CA certificate and the server's certificate + key."""

    __test__ = False  # not a pytest test class

    dir: Path
    hosts: tuple[str, ...]

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server-key.pem"


def make_pki(runner: Runner, dir: Path, hosts: Sequence[str]) -> TestPki:
    """CA + a server certificate valid for ``hosts`` (SAN), EC P-256, 2 days."""
    dir.mkdir(parents=True, exist_ok=True)
    os.chmod(dir, 0o755)  # the upstream container reads the bind-mounted files
    pki = TestPki(dir, tuple(hosts))
    ca_key = dir / "ca-key.pem"
    csr = dir / "server.csr"
    ext = dir / "server.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n"
                   "basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["openssl", "req", "-x509", *ec, "-sha256", "-days", "2",
         "-subj", f"/CN={CA_COMMON_NAME}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(ca_key), "-out", str(pki.ca_cert)],
        ["openssl", "req", "-new", *ec, "-subj", f"/CN={hosts[0]}",
         "-keyout", str(pki.server_key), "-out", str(csr)],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert),
         "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2", "-sha256",
         "-extfile", str(ext), "-out", str(pki.server_cert)],
    ):
        runner.run(argv, timeout=OPENSSL_TIMEOUT)
    # Readable by the upstream container whatever uid it runs as; these are
    # throwaway test keys for names that exist only on the bottle's network.
    os.chmod(pki.server_key, 0o644)
    return pki
