"""A test upstream: the "allowed internet" of the live tier (tests only).

Live tests may dial only loopback and the project's own containers, so the
host an allowlist lets through is this server. It echoes what arrived, which
is how a probe proves what the proxies did: the Authorization header it saw
(the real token behind egress; the placeholder elsewhere), the Host, the path.

Stdlib only (http.server + ssl, threaded). Environment:
    UPSTREAM_HOST          bind address (default 0.0.0.0)
    UPSTREAM_HTTP_PORT     plain HTTP port (default 80)
    UPSTREAM_HTTPS_PORT    HTTPS port (default 443), served only when
    UPSTREAM_CERT, UPSTREAM_KEY  name a PEM certificate and key
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "upstream"


class EchoHandler(BaseHTTPRequestHandler):
    """200 + JSON ``{"authorization", "host", "path"}`` for any method."""

    protocol_version = "HTTP/1.1"
    server_version = "bottle-upstream"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({
            "authorization": self.headers.get("Authorization"),
            "host": self.headers.get("Host"),
            "path": self.path,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _echo

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        # Method and path only: a test token must not reach the log either.
        sys.stderr.write(f"{NAME}: {self.command} {self.path}\n")


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    scheme = "http"

    def handle_error(self, request, client_address) -> None:
        print(f"{NAME}: {client_address[0]}: {sys.exc_info()[1]!r}", file=sys.stderr, flush=True)


class TlsEchoServer(EchoServer):
    """TLS handshake in the per-connection thread, so one stalled client
    cannot block accept()."""

    scheme = "https"

    def __init__(self, address, context: ssl.SSLContext):
        super().__init__(address, EchoHandler)
        self.context = context

    def finish_request(self, request, client_address) -> None:
        tls = self.context.wrap_socket(request, server_side=True)
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def make_servers(host: str, http_port: int, https_port: int,
                 cert: str | None, key: str | None) -> list[EchoServer]:
    servers: list[EchoServer] = [EchoServer((host, http_port), EchoHandler)]
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        servers.append(TlsEchoServer((host, https_port), context))
    return servers


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    host = env.get("UPSTREAM_HOST") or "0.0.0.0"
    try:
        http_port = int(env.get("UPSTREAM_HTTP_PORT") or 80)
        https_port = int(env.get("UPSTREAM_HTTPS_PORT") or 443)
        servers = make_servers(host, http_port, https_port,
                               env.get("UPSTREAM_CERT"), env.get("UPSTREAM_KEY"))
    except (ValueError, OSError, ssl.SSLError) as exc:
        print(f"{NAME}: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    # Block the stop signals (the server threads inherit the mask) and wait
    # for one synchronously: an Event set from a signal handler can deadlock
    # if the signal lands while the main thread holds the Event's lock.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"{NAME}: {server.scheme} on {host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    signal.sigwait(stop_signals)
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
