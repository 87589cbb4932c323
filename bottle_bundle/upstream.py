"""A test upstream: the "allowed internet" of the live tier (tests only).

Live tests may dial only loopback and the project's own containers, so the
host an allowlist lets through is this server. It echoes what arrived, which
is how a probe proves what the proxies did: the Authorization header it saw
(the real token behind egress; the placeholder elsewhere), the Host, the path.

It also stands in for the agents' APIs (LIVE-AGENT), answering with a
canned, streamed reply whatever was asked:

- ``POST .../v1/messages``: the Anthropic Messages API (Claude Code), as
  server-sent events when the request asks ``"stream": true`` (message_start,
  content_block_start/delta/stop, message_delta, message_stop), else one JSON
  message;
- ``GET /backend-api/wham/accounts/check``: the one account Codex's
  workspace routing asks for (the ``ChatGPT-Account-Id`` it sent);
- ``POST .../responses``: the OpenAI Responses API (Codex: chatgpt.com's
  ``/backend-api/codex/responses`` and api.openai.com's ``/v1/responses``), as
  server-sent events (response.created, response.output_item.done with one
  assistant message, response.completed), the shapes codex-rs's own test
  support sends (core/tests/common/responses.rs ``ev_*``).

Each request is logged as ``upstream: METHOD path auth=<fingerprint>``: the
first 16 hex digits of the SHA-256 of the credential it carried
(``Authorization`` without its scheme, else ``x-api-key``; ``-`` for none),
so a test can tell the real token from the placeholder without the token
ever reaching the log.

For each API request (``POST .../v1/messages``, ``POST .../responses``) it
also logs ``upstream-body: POST path marks=<m,...> tools=<t,...>``: the
distinct ``bottle-mark-<word>`` strings the request body holds (a test puts
them in a bottle's prompt and skills to see the agent send them) and the
names of the tools the request offers the model (an MCP server's tools show
up there). Never anything else of the body.

Stdlib only (http.server + ssl, threaded). Environment:
    UPSTREAM_AGENT_ANSWER  the canned answer's text (default "bottle-upstream answer")
    UPSTREAM_HOST          bind address (default 0.0.0.0)
    UPSTREAM_HTTP_PORT     plain HTTP port (default 80)
    UPSTREAM_HTTPS_PORT    HTTPS port (default 443), served only when
    UPSTREAM_CERT, UPSTREAM_KEY  name a PEM certificate and key
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "upstream"
BODY_LOG = "upstream-body"
MARK = re.compile(r"bottle-mark-[a-z0-9]+")


DEFAULT_ANSWER = "bottle-upstream answer"


def fingerprint(value: str | None) -> str:
    """First 16 hex digits of sha256(value), ``-`` for no value."""
    if not value:
        return "-"
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def credential(headers) -> str | None:
    """The credential a request carries: Authorization without its scheme,
    else x-api-key."""
    auth = headers.get("Authorization")
    if auth:
        return auth.split(" ", 1)[1] if " " in auth else auth
    return headers.get("x-api-key")


def body_summary(body: bytes) -> tuple[list[str], list[str]]:
    """(marks, tool names) of an API request body, each sorted and distinct."""
    text = body.decode("utf-8", "replace")
    marks = sorted(set(MARK.findall(text)))
    try:
        request = json.loads(text or "{}")
    except ValueError:
        request = {}
    tools = request.get("tools") if isinstance(request, dict) else None
    names: set[str] = set()
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or {}).get("name")
            if isinstance(name, str) and name:
                names.add("_".join(name.split()))
    return marks, sorted(names)


def sse(events: list[tuple[str, dict]]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def anthropic_reply(request: dict, answer: str) -> tuple[str, bytes]:
    """(content type, body) answering a Messages API request."""
    model = request.get("model") or "claude-stand-in"
    usage = {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    message = {"id": "msg_bottle_upstream", "type": "message", "role": "assistant",
               "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": usage}
    if not request.get("stream"):
        done = {**message, "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn"}
        return "application/json", json.dumps(done).encode()
    return "text/event-stream", sse([
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": answer}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ])


def responses_reply(answer: str) -> tuple[str, bytes]:
    """(content type, body) answering a Responses API request."""
    rid = "resp_bottle_upstream"
    usage = {"input_tokens": 1, "input_tokens_details": None, "output_tokens": 1,
             "output_tokens_details": None, "total_tokens": 2}
    return "text/event-stream", sse([
        ("response.created", {"type": "response.created", "response": {"id": rid}}),
        ("response.output_item.done", {"type": "response.output_item.done", "item": {
            "type": "message", "role": "assistant", "id": "msg_bottle_upstream",
            "content": [{"type": "output_text", "text": answer}]}}),
        ("response.completed", {"type": "response.completed",
                                "response": {"id": rid, "usage": usage}}),
    ])


class EchoHandler(BaseHTTPRequestHandler):
    """The agents' API stand-ins (above); 200 + JSON ``{"authorization",
    "host", "path"}`` for anything else, any method."""

    protocol_version = "HTTP/1.1"
    server_version = "bottle-upstream"

    def _api_reply(self, body: bytes) -> tuple[str, bytes] | None:
        path = self.path.split("?", 1)[0]
        if self.command == "GET" and path.endswith("/backend-api/wham/accounts/check"):
            # Codex's workspace routing looks its account up here before any
            # turn (codex backend-client AccountsCheckResponse: accounts,
            # account_ordering, default_account_id; the entry's
            # workspace_backend_origin must be a bare https origin).
            account = self.headers.get("ChatGPT-Account-Id") or "account"
            return "application/json", json.dumps({
                "accounts": [{"id": account, "name": None, "structure": "personal",
                              "workspace_backend_origin": "https://chatgpt.com",
                              "account_routing_override": "us"}],
                "account_ordering": [account], "default_account_id": account}).encode()
        if self.command != "POST":
            return None
        answer = os.environ.get("UPSTREAM_AGENT_ANSWER") or DEFAULT_ANSWER
        if path.endswith(("/v1/messages", "/responses")):
            marks, tools = body_summary(body)
            sys.stderr.write(f"{BODY_LOG}: POST {self.path} marks={','.join(marks) or '-'} "
                             f"tools={','.join(tools) or '-'}\n")
        if path.endswith("/v1/messages"):
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                request = {}
            return anthropic_reply(request if isinstance(request, dict) else {}, answer)
        if path.endswith("/responses"):
            return responses_reply(answer)
        return None

    def _not_here(self) -> bool:
        """Refuse the API calls the stand-ins do not serve, so a CLI goes on
        without them instead of retrying. The Responses WebSocket upgrade
        (a GET of .../responses) gets 426 Upgrade Required: the one status
        on which Codex falls back to HTTPS at once (openai/codex
        codex-rs/core/src/client.rs, `stream_responses_websocket`:
        ``TransportError::Http { status } if status == UPGRADE_REQUIRED =>
        FallbackToHttp``; any other refusal is retried with backoff,
        ~6.5 s per run, before the session pins itself to HTTP). The rest
        of chatgpt.com's /backend-api/ (models, account checks, plugins:
        Codex loops on an echo there) and Claude Code's settings calls
        under /api/claude_code/ (it retried the echo with backoff, ~4.5 s
        per run) get 404."""
        path = self.path.split("?", 1)[0]
        responses = path.endswith("/responses")
        if self.command == "GET" and responses:
            status = 426
        elif ((path.startswith("/backend-api/") and not responses)
              or (self.command == "GET" and path.startswith("/api/claude_code/"))):
            status = 404
        else:
            return False
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._seen = fingerprint(credential(self.headers))
        api = self._api_reply(raw)
        if api is None and self._not_here():
            return
        if api is not None:
            ctype, body = api
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
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
        # Method, path and a credential fingerprint: a test token must not
        # reach the log either.
        seen = getattr(self, "_seen", "-")
        sys.stderr.write(f"{NAME}: {self.command} {self.path} auth={seen}\n")


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
