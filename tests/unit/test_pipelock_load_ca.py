"""The pipelock stand-in's CA check: real pipelock's ``LoadCA``, rule by rule.

Source: luckyPipewrench/pipelock ``internal/certgen/certgen.go``, functions
``LoadCA`` and ``parseECPrivateKeyBlock`` (commit
1243c913def074e7b77219e26bbbe42c5e500c31, as the ``read_file`` tool
reported it); the startup wrapper is ``(*Proxy).LoadCertCache`` in
``internal/proxy/proxy.go`` ("load TLS CA: %w (run 'pipelock tls init' to
generate)"). pipelock's own texts are asserted word for word; the Go x509
errors they wrap are only asserted where the stand-in reproduces them.

The CA the reference makes (`bottle_ref.ca.ca_init_argv`) is the shape
``GenerateCA`` makes there: ECDSA P-256, CA:TRUE with path length 0,
keyCertSign and cRLSign.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from bottle_bundle import pipelock_config as pipelock  # noqa: E402
from bottle_bundle.pipelock_config import CaLoadError, load_ca, load_ca_error  # noqa: E402
from bottle_ref.ca import ca_init_argv  # noqa: E402

PEM = serialization.Encoding.PEM
NOENC = serialization.NoEncryption()
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL  # SEC1 for EC, PKCS1 for RSA


def _ec_key(curve=None):
    return ec.generate_private_key(curve or ec.SECP256R1())


_RSA = None


def _rsa_key():
    global _RSA  # one RSA key for the module: generating one is the slow part
    if _RSA is None:
        _RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _RSA


def _cert(key, *, ca: bool | None = True, usage: str | None = "key_cert_sign",
          signer=None, pathlen: int | None = 0) -> bytes:
    """A self-signed certificate for ``key`` (signed by ``signer`` when
    given), with basicConstraints CA ``ca`` (None: no extension) and a
    keyUsage with ``usage`` (None: no extension)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1)))
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=pathlen if ca else None), critical=True)
    if usage is not None:
        flags = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                     crl_sign=False, encipher_only=False, decipher_only=False)
        flags[usage] = True
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    signer = signer or key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm).public_bytes(PEM)


def _key_pem(key, fmt=PKCS8) -> bytes:
    return key.private_bytes(PEM, fmt, NOENC)


def _refusal(cert: bytes, key: bytes) -> str:
    with pytest.raises(CaLoadError) as info:
        load_ca(cert, key)
    return str(info.value)


# -- what loads ----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [PKCS8, TRADITIONAL], ids=["pkcs8-PRIVATE-KEY", "sec1-EC-PRIVATE-KEY"])
def test_an_ec_ca_loads_with_a_sec1_or_a_pkcs8_key(fmt):
    """parseECPrivateKeyBlock: ``EC PRIVATE KEY`` (SEC1, what pipelock's
    SaveCA writes) and ``PRIVATE KEY`` (PKCS8, openssl's default) both load."""
    key = _ec_key()
    pem = _key_pem(key, fmt)
    assert pem.startswith(b"-----BEGIN " + (b"PRIVATE KEY" if fmt is PKCS8 else b"EC PRIVATE KEY"))
    cert, loaded = load_ca(_cert(key), pem)
    assert loaded.private_numbers() == key.private_numbers()
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_other_go_curves_load_and_a_curve_go_does_not_know_is_refused():
    """Go's crypto/x509 parses ECDSA on P-224/256/384/521 only; LoadCA itself
    does not insist on P-256 (GenerateCA makes P-256)."""
    p384 = _ec_key(ec.SECP384R1())
    load_ca(_cert(p384), _key_pem(p384))
    k1 = _ec_key(ec.SECP256K1())
    assert "unsupported elliptic curve" in _refusal(_cert(k1), _key_pem(k1))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_the_reference_ca_is_generateca_shaped_and_loads(tmp_path):
    """`ca_init_argv` (what launch runs for pipelock's and egress's CA) makes
    what certgen.go GenerateCA makes: P-256, CA:TRUE, MaxPathLen 0,
    keyCertSign|cRLSign; and LoadCA takes it."""
    subprocess.run(ca_init_argv(tmp_path, common_name="t"), check=True, capture_output=True)
    cert_pem, key_pem = (tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca-key.pem").read_bytes()
    cert, key = load_ca(cert_pem, key_pem)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)


# -- what pipelock refuses, rule by rule (LoadCA's order) -----------------------------------

def test_no_pem_block_in_either_file():
    key = _ec_key()
    assert _refusal(b"not a pem", _key_pem(key)) == "no PEM block in CA cert file"
    assert _refusal(_cert(key), b"") == "no PEM block in CA key file"


def test_an_unparsable_certificate():
    junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert _refusal(junk, _key_pem(_ec_key())).startswith("parse CA cert: x509: ")


def test_an_rsa_key_is_refused():
    """parseECPrivateKeyBlock: a PKCS8 block holding RSA: ``CA key must be
    ECDSA, got *rsa.PrivateKey`` (wrapped by LoadCA's "parse CA key: ")."""
    key = _rsa_key()
    assert _refusal(_cert(key), _key_pem(key)) == "parse CA key: CA key must be ECDSA, got *rsa.PrivateKey"


def test_an_ed25519_key_is_refused():
    key = ed25519.Ed25519PrivateKey.generate()
    assert _refusal(_cert(key), _key_pem(key)) == \
        "parse CA key: CA key must be ECDSA, got ed25519.PrivateKey"


@pytest.mark.parametrize("block", ["RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY"])
def test_an_unsupported_pem_block_type_is_refused(block):
    """parseECPrivateKeyBlock default case: only ``EC PRIVATE KEY`` and
    ``PRIVATE KEY`` are read, whatever the block holds."""
    key = _rsa_key()
    if block == "RSA PRIVATE KEY":
        pem = _key_pem(key, TRADITIONAL)
        assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    else:
        pem = _key_pem(key).replace(b"PRIVATE KEY-----", f"{block}-----".encode())
    assert _refusal(_cert(key), pem) == (
        f'parse CA key: unsupported PEM block type "{block}" '
        '(expected "EC PRIVATE KEY" or "PRIVATE KEY")')


def test_a_pkcs8_key_in_an_ec_private_key_block_is_refused():
    """``EC PRIVATE KEY`` is parsed as SEC1 only (x509.ParseECPrivateKey),
    which names the format it found instead."""
    key = _ec_key()
    pem = _key_pem(key).replace(b"PRIVATE KEY-----", b"EC PRIVATE KEY-----")
    assert _refusal(_cert(key), pem) == ("parse CA key: x509: failed to parse private key "
                                         "(use ParsePKCS8PrivateKey instead for this key format)")


@pytest.mark.parametrize("ca", [False, None], ids=["CA-FALSE", "no-basicConstraints"])
def test_a_certificate_that_is_not_a_ca_is_refused(ca):
    key = _ec_key()
    assert _refusal(_cert(key, ca=ca), _key_pem(key)) == "certificate is not a CA"


@pytest.mark.parametrize("usage", ["digital_signature", None], ids=["digitalSignature-only", "no-keyUsage"])
def test_a_ca_without_keycertsign_is_refused(usage):
    key = _ec_key()
    assert _refusal(_cert(key, usage=usage), _key_pem(key)) == "CA certificate missing KeyUsageCertSign"


def test_a_ca_whose_public_key_is_not_ecdsa_is_refused():
    """An RSA CA certificate paired with an EC key: the key parses, the cert
    is a CA with keyCertSign, its key is not ECDSA."""
    assert _refusal(_cert(_rsa_key()), _key_pem(_ec_key())) == "CA certificate public key is not ECDSA"


def test_a_key_that_is_not_the_certificates_is_refused():
    assert _refusal(_cert(_ec_key()), _key_pem(_ec_key())) == "CA key does not match certificate"


def test_the_key_is_judged_before_the_certificate():
    """LoadCA parses the key before it checks IsCA: an RSA pair that is not a
    CA either fails on the key."""
    key = _rsa_key()
    assert _refusal(_cert(key, ca=False), _key_pem(key)).startswith("parse CA key: CA key must be ECDSA")


def test_the_startup_line_is_load_cert_caches():
    err = CaLoadError("CA key does not match certificate")
    assert load_ca_error(err) == ("load TLS CA: CA key does not match certificate "
                                  "(run 'pipelock tls init' to generate)")


def test_the_first_pem_block_is_the_one_read(tmp_path: Path):
    """pem.Decode: the first block, whatever follows it (a chain file's
    first certificate is the CA)."""
    key = _ec_key()
    other = _ec_key()
    assert load_ca(_cert(key) + _cert(other), _key_pem(key) + _key_pem(other))
    assert _refusal(_cert(other) + _cert(key), _key_pem(key)) == "CA key does not match certificate"
    assert pipelock.CA_KEY_BLOCK_SEC1 == "EC PRIVATE KEY" and pipelock.CA_KEY_BLOCK_PKCS8 == "PRIVATE KEY"
