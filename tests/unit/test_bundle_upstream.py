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
