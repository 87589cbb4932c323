"""Running a mitmproxy-based daemon: CA confdir, upstream trust, logging, signals.

Both proxies (pipelock-compatible and egress) are mitmproxy ``DumpMaster``s
with one addon. What they share lives here:

- mitmproxy reads its CA from ``<confdir>/mitmproxy-ca.pem`` (key + cert
  concatenated) and writes helper files next to it, so the mounted read-only
  CA pair is copied into a private temp confdir (0700, key file 0600);
  without a CA pair mitmproxy makes an ephemeral one there (never in $HOME).
- mitmproxy verifies upstream TLS against certifi unless given a bundle, and
  a given bundle *replaces* certifi. "System store plus extras" is therefore
  one concatenated file: the OS store (certifi as a fallback) + extra CAs.
- No flow dumper and no termlog: headers (tokens!) are never printed. Log
  lines are ``<daemon>: message``; mitmproxy's own chatter only at WARNING.
- SIGTERM/SIGINT shut the master down cleanly (exit 0); a startup error
  (port in use, bad option) exits non-zero with mitmproxy's message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .logs import fail

CA_BUNDLE_NAME = "upstream-trust.pem"
SYSTEM_CA_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian/Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora/RHEL
    "/etc/ssl/cert.pem",  # Alpine, macOS
)


# Options both daemons set. mitmproxy's onboarding app answers ``mitm.it``
# (its CA download page) itself, before any addon's allowlist check: a host
# outside every allowlist must not answer (issue 15, LIVE-ALLOWLIST-ONLY).
HARDENED_OPTIONS: Mapping[str, Any] = {"onboarding": False}


class StartupError(RuntimeError):
    """A daemon cannot start; the message is for the user (no traceback)."""


def check_ca_pair(cert: Path, key: Path) -> None:
    """Refuse a CA pair mitmproxy would choke on later, with a clear reason."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert_obj = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read CA certificate {cert}: {exc}") from None
    try:
        key_obj = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise StartupError(f"cannot read CA key {key}: {exc}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (cert_obj.public_key().public_bytes(serialization.Encoding.PEM, spki)
            != key_obj.public_key().public_bytes(serialization.Encoding.PEM, spki)):
        raise StartupError(f"CA key {key} does not belong to certificate {cert}")


def make_confdir(ca_cert: Path | None, ca_key: Path | None) -> Path:
    """A private mitmproxy confdir holding the given CA (or nothing: then
    mitmproxy generates an ephemeral CA in it)."""
    if ca_cert is not None and ca_key is not None:
        check_ca_pair(ca_cert, ca_key)
    confdir = Path(tempfile.mkdtemp(prefix="bottle-mitm-"))
    os.chmod(confdir, 0o700)
    if ca_cert is not None and ca_key is not None:
        target = confdir / "mitmproxy-ca.pem"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(ca_key.read_bytes().rstrip(b"\n") + b"\n")
            out.write(ca_cert.read_bytes().rstrip(b"\n") + b"\n")
        (confdir / "mitmproxy-ca-cert.pem").write_bytes(ca_cert.read_bytes())
    return confdir


def system_ca_file() -> str | None:
    """The OS trust store as one PEM file; certifi when the OS has none."""
    default = ssl.get_default_verify_paths().cafile
    for candidate in (*SYSTEM_CA_CANDIDATES, default):
        if candidate and os.path.isfile(candidate):
            return candidate
    try:
        import certifi

        return certifi.where()
    except ImportError:  # pragma: no cover - certifi ships with mitmproxy
        return None


def env_paths(value: str | None) -> list[Path]:
    """An ``os.pathsep``-separated list of files from an env var."""
    return [Path(p) for p in (value or "").split(os.pathsep) if p.strip()]


def trust_bundle(confdir: Path, extras: Sequence[Path], *, what: str) -> Path:
    """System store + ``extras`` concatenated into ``confdir``; a missing
    extra file is a startup error (a typo must not silently weaken trust...
    or silently break every request)."""
    parts: list[bytes] = []
    system = system_ca_file()
    if system:
        parts.append(Path(system).read_bytes())
    for extra in extras:
        try:
            parts.append(extra.read_bytes())
        except OSError as exc:
            raise StartupError(f"{what}: cannot read CA bundle {extra}: {exc.strerror}") from None
    bundle = confdir / CA_BUNDLE_NAME
    bundle.write_bytes(b"\n".join(p.rstrip(b"\n") for p in parts) + b"\n")
    return bundle


def prepare_confdir(ca_cert: Path | None, ca_key: Path | None, extras: Sequence[Path], *,
                    what: str) -> tuple[Path, Path]:
    """``(confdir, trust bundle)``; nothing is left behind on failure."""
    confdir = make_confdir(ca_cert, ca_key)
    try:
        return confdir, trust_bundle(confdir, extras, what=what)
    except BaseException:
        shutil.rmtree(confdir, ignore_errors=True)
        raise


class _Announce:
    """Logs one line once the listener is up (the ``running`` hook fires
    after mitmproxy has bound its servers)."""

    def __init__(self, logger: logging.Logger, message: str):
        self._logger, self._message = logger, message

    def running(self) -> None:
        self._logger.info(self._message)


async def _serve(options: Mapping[str, Any], addons: Sequence[Any], announce: _Announce) -> int:
    from mitmproxy import options as mitm_options
    from mitmproxy.tools.dump import DumpMaster

    opts = mitm_options.Options()
    master = DumpMaster(opts, with_termlog=False, with_dumper=False)
    try:
        opts.update(**options)
    except Exception as exc:  # mitmproxy.exceptions.OptionsError and friends
        raise StartupError(f"bad proxy option: {exc}") from None
    master.addons.add(*addons, announce)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()
    return 0


def run(name: str, options: Mapping[str, Any], addons: Sequence[Any],
        logger: logging.Logger, listen: tuple[str, int]) -> int:
    """Run mitmproxy until SIGTERM; non-zero on a startup failure. The
    private confdir (it holds a copy of the CA key) is removed on exit."""
    announce = _Announce(logger, f"listening on {listen[0]}:{listen[1]}")
    try:
        return asyncio.run(_serve(options, addons, announce))
    except StartupError as exc:
        return fail(name, str(exc))
    except SystemExit as exc:  # mitmproxy's errorcheck exits on startup errors
        code = exc.code if isinstance(exc.code, int) else 1
        return code or 1
    finally:
        if options.get("confdir"):
            shutil.rmtree(options["confdir"], ignore_errors=True)
