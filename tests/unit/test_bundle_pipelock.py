"""The pipelock-compatible proxy as a real process on loopback.

The "allowed internet" is the bundle's own test upstream on 127.0.0.1;
refused hosts use the reserved ``.invalid`` TLD and are refused before any
lookup, so nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
import yaml

pytest.importorskip("mitmproxy", reason="the bundle's proxies need mitmproxy (bundle requirements.txt)")
if shutil.which("openssl") is None:  # pragma: no cover
    pytest.skip("openssl is needed to make test certificates", allow_module_level=True)

from bottle_bundle.pipelock_proxy import (  # noqa: E402
    REASON_ALLOWLIST,
    REASON_HEADER,
    REASON_HEADER_SECRET,
    REASON_RATE,
)
from bundle_harness import (  # noqa: E402
    BAD_CAS,
    LOOPBACK,
    free_port,
    make_bad_ca,
    make_ca,
    make_server_cert,
    port_open,
    running,
    spawn,
    via_proxy,
)
from bottle_ref.pipelock import render_config  # noqa: E402

SECRET = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl"  # matches the jwt pattern
REFUSED = "blocked.invalid"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d / "pipelock")
    server = make_server_cert(d / "upstream")
    return {"ca": ca, "server": server}


@pytest.fixture(scope="module")
def upstream(pki, tmp_path_factory):
    cert, key = pki["server"]
    http_port, https_port = free_port(), free_port()
    env = {"UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(http_port),
           "UPSTREAM_HTTPS_PORT": str(https_port), "UPSTREAM_CERT": str(cert),
           "UPSTREAM_KEY": str(key)}
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    with running("upstream", env, log, ports=(http_port, https_port)):
        yield {"http": http_port, "https": https_port}


def write_config(tmp_path: Path, pki, *, rate: int = 600, edit=None) -> tuple[Path, int]:
    port = free_port()
    cert, key = pki["ca"]
    text = render_config(allow=[LOOPBACK, "localhost"], passthrough=["localhost"],
                         listen=f"{LOOPBACK}:{port}", ca_cert=str(cert), ca_key=str(key),
                         max_requests_per_minute=rate,
                         # the test upstream is on loopback, which pipelock's SSRF
                         # guard refuses: exempt exactly that address (ssrf.ip_allowlist)
                         ssrf_ip_allowlist=[f"{LOOPBACK}/32"], trusted_domains=["localhost"])
    if edit is not None:
        data = yaml.safe_load(text)
        edit(data)
        text = yaml.safe_dump(data)
    path = tmp_path / "pipelock.yaml"
    path.write_text(text)
    return path, port


def pipelock_env(path: Path, pki) -> dict[str, str]:
    return {"PIPELOCK_CONFIG": str(path), "PIPELOCK_UPSTREAM_CA": str(pki["server"][0])}


@pytest.fixture(scope="module")
def shared_pipelock(pki, tmp_path_factory):
    """``get(key, edit=None) -> (daemon, port, mark)``: one running pipelock
    per config ``key`` for this module, shared by the tests whose config is
    the same and that leave nothing behind in it (a start costs ~1 s of CPU:
    mitmproxy). ``mark`` is the length of its log when the test began: a test
    reads only ``daemon.output()[mark:]``, what it caused."""
    started: dict[str, tuple] = {}
    with contextlib.ExitStack() as stack:
        def get(key: str, edit=None):
            if key not in started:
                d = tmp_path_factory.mktemp(f"pipelock-{key}")
                path, port = write_config(d, pki, edit=edit)
                started[key] = (stack.enter_context(
                    running("pipelock", pipelock_env(path, pki), d / "log", ports=(port,))), port)
            daemon, port = started[key]
            return daemon, port, len(daemon.output())

        yield get


def _start_refused(tmp_path: Path, pki, edit) -> tuple[int | None, str, int]:
    """Start the stand-in on a config ``edit`` spoils; its exit code, its
    output and the port it was told to listen on."""
    path, port = write_config(tmp_path, pki, edit=edit)
    daemon = spawn("pipelock", pipelock_env(path, pki), tmp_path / "log", ports=(port,))
    try:
        code = daemon.wait_exit()
    finally:
        daemon.stop()
    return code, daemon.output(), port


@pytest.mark.parametrize("where", ["top", "nested"])
def test_refuses_to_start_on_unknown_key(tmp_path, pki, where):
    def edit(data):
        if where == "top":
            data["allow_everything"] = True
        else:
            data["fetch_proxy"]["bogus"] = 1

    code, out, port = _start_refused(tmp_path, pki, edit)
    assert code != 0, out
    key = "allow_everything" if where == "top" else "fetch_proxy.bogus"
    assert "refusing to start" in out and f"{key}: unknown key" in out, out
    assert "Traceback" not in out
    assert not port_open(LOOPBACK, port)


def test_allowlist_gates_plain_http_and_connect(shared_pipelock, pki, upstream):
    d, port, mark = shared_pipelock("default")
    proxy = (LOOPBACK, port)
    ok = via_proxy(proxy, LOOPBACK, upstream["http"], "/allowed")
    assert ok.status == 200 and ok.json()["path"] == "/allowed"

    denied = via_proxy(proxy, REFUSED, 80, "/x")
    assert denied.status == 403
    assert REASON_HEADER.lower() not in denied.headers  # pipelock sends no reason header
    assert denied.body.decode().strip() == f"blocked: {REASON_ALLOWLIST}: {REFUSED}"

    denied_tls = via_proxy(proxy, REFUSED, 443, https=True)
    assert denied_tls.status == 403
    assert denied_tls.body.decode().strip() == f"CONNECT blocked: {REASON_ALLOWLIST}: {REFUSED}"

    # "localhost" is allowlisted: its CONNECT is let through (and, being a
    # passthrough domain, the client sees the upstream's own certificate).
    tls = via_proxy(proxy, "localhost", upstream["https"], "/tls", https=True,
                    cafile=pki["server"][0])
    assert tls.status == 200 and tls.json()["path"] == "/tls"
    # (a refusal is logged before its answer is sent: no wait needed)
    assert REFUSED in d.output()[mark:]


def test_header_dlp_blocks_decrypted_and_plain_but_not_passthrough(shared_pipelock, pki, upstream):
    d, port, mark = shared_pipelock("default")
    proxy = (LOOPBACK, port)
    secret = {"Authorization": SECRET}
    plain = via_proxy(proxy, LOOPBACK, upstream["http"], headers=secret)
    assert plain.status == 403
    assert plain.body.decode().strip() == f"blocked: {REASON_HEADER_SECRET}"

    # 127.0.0.1 is decrypted: the client must trust pipelock's CA...
    clean = via_proxy(proxy, LOOPBACK, upstream["https"], "/clean", https=True,
                      cafile=pki["ca"][0], headers={"Authorization": "Bearer placeholder"})
    assert clean.status == 200 and clean.json()["authorization"] == "Bearer placeholder"
    # ...and the inner request's headers are scanned.
    inner = via_proxy(proxy, LOOPBACK, upstream["https"], https=True, cafile=pki["ca"][0],
                      headers=secret)
    assert inner.status == 403
    assert inner.body.decode().strip() == f"blocked: {REASON_HEADER_SECRET}"

    # localhost is passthrough: not decrypted, so not rescanned (seed codex fix).
    through = via_proxy(proxy, "localhost", upstream["https"], "/pt", https=True,
                        cafile=pki["server"][0], headers=secret)
    assert through.status == 200 and through.json()["authorization"] == SECRET
    assert "dlp pattern 'jwt'" in d.output()[mark:]
    assert "eyJ" not in d.output()  # the log names the pattern, never the value (whole log)


def test_rate_limit_per_domain_answers_429(tmp_path, pki, upstream):
    path, port = write_config(tmp_path, pki, rate=3)
    proxy = (LOOPBACK, port)
    with running("pipelock", pipelock_env(path, pki), tmp_path / "log", ports=(port,)):
        statuses = [via_proxy(proxy, LOOPBACK, upstream["http"]).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = via_proxy(proxy, LOOPBACK, upstream["http"])
        assert limited.body.decode().strip() == f"blocked: {REASON_RATE} for {LOOPBACK}"
        # the budget is per domain: another host is still served
        other = via_proxy(proxy, "localhost", upstream["http"])
        assert other.status == 200


def test_refuses_to_start_with_an_unreadable_ca(tmp_path, pki):
    def edit(data):
        data["tls_interception"]["ca_key"] = str(tmp_path / "missing-key.pem")

    code, out, port = _start_refused(tmp_path, pki, edit)
    assert code != 0 and "CA key not found" in out and "missing-key.pem" in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize("kind", sorted(BAD_CAS))
def test_refuses_to_start_with_a_ca_pipelock_cannot_load(tmp_path, pki, kind):
    """Real pipelock loads its CA with certgen.LoadCA
    (luckyPipewrench/pipelock internal/certgen/certgen.go, LoadCA and
    parseECPrivateKeyBlock, commit 1243c913def0) from (*Proxy).LoadCertCache
    (internal/proxy/proxy.go) and does not start when it fails: an ECDSA CA
    only, a CA with keyCertSign, the key matching. The stand-in refuses the
    same pairs with the same text, in one line, before it listens."""
    cert, key = make_bad_ca(tmp_path / "ca", kind)

    def edit(data):
        data["tls_interception"]["ca_cert"] = str(cert)
        data["tls_interception"]["ca_key"] = str(key)

    code, out, port = _start_refused(tmp_path, pki, edit)
    assert code != 0, out
    assert [line for line in out.splitlines() if line.startswith("pipelock:")] == [
        f"pipelock: refusing to start: load TLS CA: {BAD_CAS[kind]} "
        "(run 'pipelock tls init' to generate)"], out
    assert "Traceback" not in out
    assert not port_open(LOOPBACK, port)


# --- issue 15 (second pass): the SSRF guard in the running process ---------------

def test_ssrf_guard_refuses_loopback_without_an_exemption(tmp_path, pki, upstream):
    """pipelock's SSRF guard is on by default (internal/config/normalize.go
    ~222-236; internal/scanner/scanner.go checkSSRF ~895-1025): an allowlisted
    host that resolves to loopback is refused, plain and CONNECT, with
    pipelock's text; the same daemon with exactly that address in
    ``ssrf.ip_allowlist`` reaches it (test_allowlist_gates_plain_http_and_connect)."""
    def edit(data):
        data.pop("ssrf")
        data.pop("trusted_domains")

    path, port = write_config(tmp_path, pki, edit=edit)
    proxy = (LOOPBACK, port)
    with running("pipelock", pipelock_env(path, pki), tmp_path / "log", ports=(port,)):
        plain = via_proxy(proxy, "localhost", upstream["http"], "/x")
        assert plain.status == 403
        assert plain.body.decode().startswith(
            "blocked: SSRF blocked: localhost resolves to internal IP "), plain.body
        ip_literal = via_proxy(proxy, LOOPBACK, upstream["http"], "/x")
        assert ip_literal.status == 403
        assert ip_literal.body.decode().strip() == \
            f"blocked: SSRF blocked: {LOOPBACK} resolves to internal IP {LOOPBACK}"
        tunnel = via_proxy(proxy, "localhost", upstream["https"], "/tls", https=True,
                           cafile=pki["server"][0])
        assert tunnel.status == 403
        assert tunnel.body.decode().startswith("CONNECT blocked: SSRF blocked: localhost "), tunnel.body


# --- issue 15 (second pass): tunnel limits in the running process ------------------

def _tunnel(port: int, target_port: int):
    import socket

    s = socket.create_connection((LOOPBACK, port), timeout=5)
    s.sendall(f"CONNECT localhost:{target_port} HTTP/1.1\r\nHost: localhost:{target_port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def _closed_within(s, bound: float, keepalive=None) -> float | None:
    """Seconds until the proxy closes ``s`` (polled, bounded), sending
    ``keepalive()`` bytes meanwhile; None if still open at ``bound``."""
    import socket
    import time

    t0 = time.monotonic()
    sent = t0 - 1.0
    s.settimeout(0.2)
    while time.monotonic() - t0 < bound:
        # One keepalive per 0.2 s, not per answer: sending again as soon as
        # the upstream answered was a busy loop (~5 s of CPU in 2 s).
        if keepalive is not None and time.monotonic() - sent >= 0.2:
            sent = time.monotonic()
            try:
                s.sendall(keepalive())
            except OSError:
                return time.monotonic() - t0
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
        if data == b"":
            return time.monotonic() - t0
    return None


# (max_tunnel_seconds, idle_timeout_seconds) of the daemon each limit is tried on
TUNNEL_LIMITS = {"idle": (60, 1), "max": (1, 60)}


def _tunnel_limits(limit: str):
    def edit(data):
        max_s, idle_s = TUNNEL_LIMITS[limit]
        data["forward_proxy"].update(max_tunnel_seconds=max_s, idle_timeout_seconds=idle_s)
    return edit


@pytest.mark.parametrize("limit", ["idle", "max"])
def test_tunnel_limits_are_enforced(shared_pipelock, upstream, limit):
    """internal/config/normalize.go (~190-194): forward_proxy.max_tunnel_seconds
    (default 300) and idle_timeout_seconds (default 120); applied by
    internal/proxy/forward.go handleConnect (~392-396: one absolute deadline for
    dial and relay; ~534-535: the idle timeout passed to bidirectionalCopy,
    relay.go copyWithIdleTimeout resets a per-read deadline). Configured at
    their smallest, 1 s (both are whole seconds: internal/config/config.go,
    type ForwardProxy, ``MaxTunnelSeconds int`` / ``IdleTimeoutSeconds int``) and polled
    with a bound: an idle passthrough tunnel is cut after idle_timeout_seconds;
    a busy one (idle limit 60 s) after max_tunnel_seconds. The cut is logged
    before the tunnel is closed."""
    d, port, mark = shared_pipelock(f"tunnel-{limit}", edit=_tunnel_limits(limit))
    s = _tunnel(port, upstream["http"])  # "localhost" is passthrough: never decrypted
    try:
        if limit == "idle":
            took = _closed_within(s, 8.0)
            assert took is not None and 0.8 <= took, (took, d.output())
        else:
            ping = lambda: b"GET /ka HTTP/1.1\r\nHost: localhost\r\n\r\n"  # noqa: E731
            took = _closed_within(s, 8.0, keepalive=ping)
            assert took is not None and 0.8 <= took, (took, d.output())
    finally:
        s.close()
    assert ("idle_timeout_seconds" if limit == "idle" else "max_tunnel_seconds") in d.output()[mark:]


def test_busy_tunnel_outlives_the_idle_timeout(shared_pipelock, upstream):
    """The idle timeout counts silence only (relay.go copyWithIdleTimeout
    re-arms the read deadline after each read): a tunnel with traffic every
    0.2 s outlives idle_timeout_seconds 1 (twice over: an idle one is cut
    within 1.25 s, the reaper ticking every 0.25 s) while max_tunnel_seconds
    is 60 (the daemon test_tunnel_limits_are_enforced[idle] uses)."""
    _, port, _ = shared_pipelock("tunnel-idle", edit=_tunnel_limits("idle"))
    s = _tunnel(port, upstream["http"])
    try:
        ping = lambda: b"GET /ka HTTP/1.1\r\nHost: localhost\r\n\r\n"  # noqa: E731
        assert _closed_within(s, 2.0, keepalive=ping) is None
    finally:
        s.close()
