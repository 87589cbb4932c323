"""egress as a real process: the chain agent -> egress -> pipelock -> upstream
on loopback, run by one ``bottle-bundle upstream,pipelock,egress`` (the
smolmachines shape: one supervisor, every daemon).

Route host is ``localhost`` (pipelock passthrough, as the planner makes every
route host); ``127.0.0.1`` is the same upstream reached as a non-route host,
which pipelock decrypts -- so egress must trust pipelock's CA upstream.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

pytest.importorskip("mitmproxy", reason="the bundle's proxies need mitmproxy (bundle requirements.txt)")
if shutil.which("openssl") is None:  # pragma: no cover
    pytest.skip("openssl is needed to make test certificates", allow_module_level=True)

from bottle_bundle.pipelock_proxy import REASON_ALLOWLIST, REASON_HEADER  # noqa: E402
from bundle_harness import (  # noqa: E402
    LOOPBACK,
    free_port,
    make_ca,
    make_server_cert,
    running,
    spawn,
    via_proxy,
)
from bottle_ref.pipelock import render_config  # noqa: E402

TOKEN = "real-oauth-token-do-not-leak-7f3a"
PLACEHOLDER = "Bearer placeholder-token"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain")
    pl_cert, pl_key = make_ca(d / "pipelock-ca", "pipelock test CA")
    eg_cert, _ = make_ca(d / "egress-ca", "egress test CA")
    server_cert, server_key = make_server_cert(d / "upstream")
    ports = {name: free_port() for name in ("http", "https", "pipelock", "egress")}

    pipelock_yaml = d / "pipelock.yaml"
    pipelock_yaml.write_text(render_config(
        allow=[LOOPBACK, "localhost"], passthrough=["localhost"],
        listen=f"{LOOPBACK}:{ports['pipelock']}", ca_cert=str(pl_cert), ca_key=str(pl_key),
        # the test upstream is on loopback: exempt exactly it from pipelock's SSRF guard
        ssrf_ip_allowlist=[f"{LOOPBACK}/32"], trusted_domains=["localhost"]))
    routes = d / "routes.yaml"
    routes.write_text(yaml.safe_dump({
        "routes": [{"host": "localhost", "header": "Authorization", "scheme": "Bearer",
                    "token_env": "BOTTLE_EGRESS_TOKEN_0"}],
        "upstream_proxy": "http://pipelock.invalid:8888",  # overridden by the env, as in the bundle
    }))
    env = {
        "UPSTREAM_HOST": LOOPBACK, "UPSTREAM_HTTP_PORT": str(ports["http"]),
        "UPSTREAM_HTTPS_PORT": str(ports["https"]), "UPSTREAM_CERT": str(server_cert),
        "UPSTREAM_KEY": str(server_key),
        "PIPELOCK_CONFIG": str(pipelock_yaml), "PIPELOCK_UPSTREAM_CA": str(server_cert),
        "EGRESS_ROUTES": str(routes), "EGRESS_CA_DIR": str(d / "egress-ca"),
        "EGRESS_LISTEN": f"{LOOPBACK}:{ports['egress']}",
        "EGRESS_UPSTREAM_PROXY": f"http://{LOOPBACK}:{ports['pipelock']}",
        # the test upstream's cert (passthrough hosts) + pipelock's CA (decrypted hosts)
        "EGRESS_UPSTREAM_CA": f"{server_cert}:{pl_cert}",
        "BOTTLE_EGRESS_TOKEN_0": TOKEN,
    }
    daemon = spawn("upstream,pipelock,egress", env, d / "bundle.log",
                   ports=tuple(ports.values()))
    try:
        daemon.wait_ready()
        yield {"ports": ports, "egress_ca": eg_cert, "proxy": (LOOPBACK, ports["egress"]),
               "daemon": daemon}
    finally:
        daemon.stop()


def test_route_host_gets_the_real_token_upstream(chain):
    reply = via_proxy(chain["proxy"], "localhost", chain["ports"]["https"], "/v1/messages",
                      https=True, cafile=chain["egress_ca"],
                      headers={"Authorization": PLACEHOLDER})
    assert reply.status == 200
    assert reply.json() == {"authorization": f"Bearer {TOKEN}",
                            "host": f"localhost:{chain['ports']['https']}",
                            "path": "/v1/messages"}
    # set even when the agent sent nothing
    bare = via_proxy(chain["proxy"], "localhost", chain["ports"]["https"], https=True,
                     cafile=chain["egress_ca"])
    assert bare.json()["authorization"] == f"Bearer {TOKEN}"


def test_other_hosts_and_cleartext_pass_unchanged(chain):
    ports = chain["ports"]
    other = via_proxy(chain["proxy"], LOOPBACK, ports["https"], "/other", https=True,
                      cafile=chain["egress_ca"], headers={"Authorization": PLACEHOLDER})
    assert other.status == 200 and other.json()["authorization"] == PLACEHOLDER
    plain = via_proxy(chain["proxy"], "localhost", ports["http"], "/plain",
                      headers={"Authorization": PLACEHOLDER})
    assert plain.status == 200 and plain.json()["authorization"] == PLACEHOLDER
    # A Host header naming another host than the CONNECT target is refused
    # outright (issue 15: one host name per connection), nothing injected.
    spoof = via_proxy(chain["proxy"], LOOPBACK, ports["https"], https=True,
                      cafile=chain["egress_ca"],
                      headers={"Host": f"localhost:{ports['https']}", "Authorization": PLACEHOLDER})
    assert spoof.status == 403 and b"one host name per connection" in spoof.body


def test_pipelock_still_gates_behind_egress(chain):
    denied = via_proxy(chain["proxy"], "blocked.invalid", 80)
    assert denied.status == 403
    assert denied.body.decode().strip() == f"blocked: {REASON_ALLOWLIST}: blocked.invalid"
    # Over TLS egress answers for the tunnel itself; pipelock's refusal of
    # egress's CONNECT surfaces as a 502 naming the 403.
    denied_tls = via_proxy(chain["proxy"], "blocked.invalid", 443, https=True,
                           cafile=chain["egress_ca"])
    assert denied_tls.status == 502 and b"403" in denied_tls.body


def test_token_never_logged(chain):
    via_proxy(chain["proxy"], "localhost", chain["ports"]["https"], https=True,
              cafile=chain["egress_ca"])
    log = chain["daemon"].output()
    assert "injected Authorization" in log
    assert TOKEN not in log


def test_refuses_to_start_without_the_token(tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump({
        "routes": [{"host": "api.example.test", "token_env": "BOTTLE_EGRESS_TOKEN_0"}],
        "upstream_proxy": "http://127.0.0.1:1"}))
    port = free_port()
    env = {"EGRESS_ROUTES": str(routes), "EGRESS_LISTEN": f"{LOOPBACK}:{port}",
           "EGRESS_CA_DIR": str(tmp_path / "no-ca"), "BOTTLE_EGRESS_TOKEN_0": ""}
    daemon = spawn("egress", env, tmp_path / "log", ports=(port,))
    try:
        assert daemon.wait_exit() != 0
    finally:
        daemon.stop()
    out = daemon.output()
    assert "BOTTLE_EGRESS_TOKEN_0 is not set" in out and "Traceback" not in out


def test_unrouted_egress_starts_without_a_ca(tmp_path: Path):
    """An unrouted bottle still runs egress (PLAN-DAEMONS) but mounts no
    egress CA: egress must come up rather than take the bundle down."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump({"routes": [], "upstream_proxy": "http://127.0.0.1:1"}))
    port = free_port()
    env = {"EGRESS_ROUTES": str(routes), "EGRESS_LISTEN": f"{LOOPBACK}:{port}",
           "EGRESS_CA_DIR": str(tmp_path / "no-ca")}
    with running("egress", env, tmp_path / "log", ports=(port,)) as daemon:
        assert daemon.proc.poll() is None
    assert "CA ephemeral" in daemon.output()
