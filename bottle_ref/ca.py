"""Bottle CAs, made like ``pipelock tls init --out DIR``: ``ca.pem`` and
``ca-key.pem`` (0600) in DIR.

pipelock's own binary is not available everywhere, so the reference makes
the CA with ``openssl`` -- through the runner, like every external command,
so a recorded launch shows it. The CA is the one pipelock's ``GenerateCA``
makes (luckyPipewrench/pipelock ``internal/certgen/certgen.go``, commit
1243c913): an ECDSA P-256 key, CA:TRUE with path length 0, keyCertSign and
cRLSign. It must be ECDSA: real pipelock's ``LoadCA`` refuses any other key
("CA key must be ECDSA, got %T", "CA certificate public key is not ECDSA"),
so an RSA CA would stop pipelock at start. P-256 is also quicker to make
than RSA-2048 (7 ms against 160 ms, median), and ``ensure_ca`` is on
``up``'s path. The key file is created 0600 *before* openssl writes it
(openssl truncates, keeping the mode), so the key is never readable by
others, not even for an instant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bottle_api.runner import Runner

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CA_DAYS = 3650


@dataclass(frozen=True)
class CaFiles:
    """Where a CA lives on the host."""

    dir: Path

    @property
    def cert(self) -> Path:
        return self.dir / CA_CERT

    @property
    def key(self) -> Path:
        return self.dir / CA_KEY

    def exists(self) -> bool:
        return self.cert.is_file() and self.key.is_file()


def ca_init_argv(dir: str | Path, *, common_name: str = "bottle-ref CA") -> list[str]:
    """One openssl call: a self-signed ECDSA P-256 CA cert (CA:TRUE,
    pathlen:0, keyCertSign, cRLSign; signed ecdsa-with-SHA256) and an
    unencrypted PKCS8 key (``PRIVATE KEY``), the pair a MITM proxy signs leaf
    certs with. As pipelock's ``GenerateCA`` (internal/certgen/certgen.go:
    ``elliptic.P256()``, ``IsCA``, ``MaxPathLen: 0`` with ``MaxPathLenZero``,
    ``KeyUsageCertSign | KeyUsageCRLSign``); its ``LoadCA`` takes PKCS8 as
    well as SEC1 (``parseECPrivateKeyBlock``)."""
    d = Path(dir)
    return [
        "openssl", "req", "-x509",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-sha256", "-nodes",
        "-days", str(CA_DAYS),
        "-subj", f"/CN={common_name}",
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(d / CA_KEY),
        "-out", str(d / CA_CERT),
    ]


def ensure_ca(runner: Runner, dir: str | Path, *, common_name: str = "bottle-ref CA") -> CaFiles:
    """Make the CA in ``dir`` unless both files are already there.

    ``dir`` is created 0700 and the key pre-created 0600. Under a recording
    runner nothing is generated; the returned paths are still the ones a
    real run would mount.
    """
    ca = CaFiles(Path(dir))
    if ca.exists():
        return ca
    ca.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ca.dir, 0o700)
    fd = os.open(ca.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(ca.key, 0o600)
    runner.run(ca_init_argv(ca.dir, common_name=common_name))
    if ca.key.exists():
        os.chmod(ca.key, 0o600)
    return ca


def bottle_ca_certificates(plan) -> list[str]:
    """The PEM certificate of each CA a launched bottle made (pipelock's,
    and egress's when routed), read from its state dir: what
    `Bottle.ca_certificates` reports (LIVE-CA-KEY). Certificates only."""
    from .state import state_files

    files = state_files(plan)
    return [CaFiles(d).cert.read_text() for d in (files.pipelock_ca_dir, files.egress_ca_dir)
            if CaFiles(d).cert.is_file()]
