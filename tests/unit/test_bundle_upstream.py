"""The test upstream echoes what reached it (the live tier's witness)."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl

import pytest

from bundle_harness import LOOPBACK, free_port, make_server_cert, running


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test cert")
def test_echoes_authorization_host_path_over_http_and_https(tmp_path):
    cert, key = make_server_cert(tmp_path / "pki")
    http_port, https_port = free_port(), free_port()
    env = {"UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(http_port),
           "UPSTREAM_HTTPS_PORT": str(https_port), "UPSTREAM_CERT": str(cert),
           "UPSTREAM_KEY": str(key)}
    with running("upstream", env, tmp_path / "log", ports=(http_port, https_port)) as d:
        conn = http.client.HTTPConnection(LOOPBACK, http_port, timeout=5)
        conn.request("GET", "/a?b=c", headers={"Authorization": "Bearer seen-token"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read()) == {"authorization": "Bearer seen-token",
                                           "host": f"{LOOPBACK}:{http_port}", "path": "/a?b=c"}
        conn.close()

        context = ssl.create_default_context(cafile=str(cert))
        tls = http.client.HTTPSConnection("localhost", https_port, context=context, timeout=5)
        tls.request("POST", "/p", body=b"{}")
        resp = tls.getresponse()
        assert json.loads(resp.read()) == {"authorization": None,
                                           "host": f"localhost:{https_port}", "path": "/p"}
        tls.close()
    assert "seen-token" not in d.output()


def _events(body: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_stands_in_for_the_agent_apis(tmp_path):
    """LIVE-AGENT's API stand-ins: the canned answer in the shapes the CLIs
    parse, and a credential fingerprint (never the value) in the log. The
    same shapes completed `claude -p` (2.1.330) and `codex exec` (0.169.0)
    against this server, run offline in a network namespace with no route."""
    from bottle_bundle.upstream import fingerprint

    http_port = free_port()
    env = {"UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(http_port),
           "UPSTREAM_AGENT_ANSWER": "canned-answer-42"}
    with running("upstream", env, tmp_path / "log", ports=(http_port,)) as d:
        def post(path, body, headers):
            conn = http.client.HTTPConnection(LOOPBACK, http_port, timeout=5)
            conn.request("POST", path, body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
            data = resp.status, resp.getheader("Content-Type"), resp.read()
            conn.close()
            return data

        status, ctype, body = post("/v1/messages?beta=true", {"model": "m", "stream": True},
                                   {"x-api-key": "key-for-claude"})
        assert status == 200 and ctype == "text/event-stream"
        events = _events(body)
        assert [e for e, _ in events] == ["message_start", "content_block_start",
                                          "content_block_delta", "content_block_stop",
                                          "message_delta", "message_stop"]
        assert events[2][1]["delta"] == {"type": "text_delta", "text": "canned-answer-42"}
        status, ctype, body = post("/v1/messages", {"model": "m"}, {})
        assert json.loads(body)["content"] == [{"type": "text", "text": "canned-answer-42"}]

        status, ctype, body = post("/backend-api/codex/responses", {"stream": True},
                                   {"Authorization": "Bearer token-for-codex"})
        events = _events(body)
        assert [e for e, _ in events] == ["response.created", "response.output_item.done",
                                          "response.completed"]
        assert events[1][1]["item"]["content"] == [{"type": "output_text", "text": "canned-answer-42"}]

        conn = http.client.HTTPConnection(LOOPBACK, http_port, timeout=5)
        conn.request("GET", "/backend-api/wham/accounts/check",
                     headers={"ChatGPT-Account-Id": "acct-1"})
        check = json.loads(conn.getresponse().read())
        assert check["accounts"][0]["id"] == "acct-1" and check["default_account_id"] == "acct-1"
        conn.request("GET", "/backend-api/codex/models")
        resp = conn.getresponse()
        assert resp.status == 404
        resp.read()
        # The Responses WebSocket upgrade: 426, the one status on which Codex
        # falls back to HTTPS at once (openai/codex codex-rs/core/src/client.rs
        # `stream_responses_websocket`: UPGRADE_REQUIRED => FallbackToHttp);
        # a 404 there cost ~6.5 s of retries per run. Claude Code's settings
        # calls: 404 (an echo there was retried with backoff, ~4.5 s per run).
        for path, want in (("/v1/responses", 426), ("/backend-api/codex/responses", 426),
                           ("/api/claude_code/policy_limits", 404),
                           ("/api/claude_code/settings", 404)):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == want, (path, resp.status)
            resp.read()
        conn.close()
    out = d.output()
    assert f"POST /v1/messages?beta=true auth={fingerprint('key-for-claude')}" in out
    assert f"POST /backend-api/codex/responses auth={fingerprint('token-for-codex')}" in out
    assert "key-for-claude" not in out and "token-for-codex" not in out


def test_reports_marks_and_tool_names_of_api_bodies_only(tmp_path):
    """PROV-CODEX-* live halves: for each API request the stand-in logs the
    `bottle-mark-*` strings in the body and the tool names offered, nothing
    else of the body; `conformance.live.upstream.api_bodies_seen` reads it."""
    from conformance.live.upstream import ApiBody, api_bodies_seen, Site

    http_port = free_port()
    env = {"UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(http_port)}
    body = {"input": [{"role": "user", "content": "x bottle-mark-prompt y bottle-mark-skill "
                       "secret-body-text bottle-mark-prompt"}],
            "tools": [{"type": "function", "name": "mcp__supervise__status"},
                      {"type": "function", "function": {"name": "request approval"}},
                      {"type": "web_search"}]}
    with running("upstream", env, tmp_path / "log", ports=(http_port,)) as d:
        for path, payload in (("/v1/responses", body), ("/v1/other", body),
                              ("/v1/messages", {"messages": []})):
            conn = http.client.HTTPConnection(LOOPBACK, http_port, timeout=5)
            conn.request("POST", path, body=json.dumps(payload))
            conn.getresponse().read()
            conn.close()
    out = d.output()
    assert "secret-body-text" not in out

    class Logs:
        def logs(self, container):
            return out

    site = Site("c", (), ())
    assert api_bodies_seen(Logs(), site, "/responses") == [ApiBody(
        "/v1/responses", frozenset({"bottle-mark-prompt", "bottle-mark-skill"}),
        frozenset({"mcp__supervise__status", "request_approval"}))]
    assert api_bodies_seen(Logs(), site, "/v1/messages") == [
        ApiBody("/v1/messages", frozenset(), frozenset())]
    assert not api_bodies_seen(Logs(), site, "/v1/other")
