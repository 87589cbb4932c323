"""The live tier's "internet": echo servers of our own on the bottle's
outbound network (NETWORK RULE: no outside address is ever dialled).

`start_sites` runs the bundle image's ``upstream`` daemon (it echoes the
Authorization, Host and path it received as JSON and logs ``METHOD path``)
in containers attached to `Bottle.outbound_network` under network aliases:

- the *allowed* site answers as `UPSTREAM_HOST` (a route host in routed
  scenarios, allowlisted otherwise) and `PLAIN_HOST` (allowlisted, never
  routed), over HTTP and HTTPS with a certificate from `tls.TestPki`;
- the *denied* site, a second container, answers as `DENIED_HOST`, which no
  scenario allowlists. Its log proves no request ever reached it.

The names use the reserved ``.test`` TLD and resolve only through docker's
embedded DNS on that network.

The allowed site also answers, on that network only, as the agents' real
API hosts (`API_HOSTS`: api.anthropic.com, chatgpt.com, api.openai.com),
standing in for their APIs with a canned answer (LIVE-AGENT): the real CLIs
take their real path (egress, pipelock) and pipelock resolves those names
to our container, never to the internet. `api_aliases_problem` checks that
from docker's own records (the site's aliases on the network), not by
sending anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


from .engine import Engine
from .probes import concurrently
from .resources import Resources
from .tls import TestPki

UPSTREAM_HOST = "upstream.bottle-live.test"
PLAIN_HOST = "plain.bottle-live.test"
DENIED_HOST = "denied.bottle-live.test"
API_HOSTS = ("api.anthropic.com", "chatgpt.com", "api.openai.com")
# Another name of the allowed site, allowlisted but NOT trusted: it resolves to
# the private test network, so the bottle's pipelock must refuse it (LIVE-SSRF).
INTERNAL_HOST = "internal.bottle-live.test"
HOSTS = (UPSTREAM_HOST, PLAIN_HOST, DENIED_HOST, *API_HOSTS, INTERNAL_HOST)
# The names the harness asks the bottle's pipelock to reach although they
# resolve to the private test network (`PIPELOCK_TRUSTED_HOSTS_ENV`). The
# denied site is among them on purpose: exempt from the SSRF guard, it is
# refused by the allowlist alone, so LIVE-PIPELOCK and the fronting clauses
# see the allowlist itself (a pipelock that does not enforce it, e.g. `mode:
# balanced`, would otherwise still pass on the SSRF guard's 403).
TRUSTED_HOSTS = (UPSTREAM_HOST, PLAIN_HOST, DENIED_HOST, *API_HOSTS)
ANSWER_ENV = "UPSTREAM_AGENT_ANSWER"  # the site's canned API answer
PKI_MOUNT = "/etc/upstream"
READY_MARK = "https on"


@dataclass(frozen=True)
class Site:
    """One echo-server container and its addresses on the outbound network."""

    container: str
    aliases: tuple[str, ...]
    ips: tuple[str, ...]


@dataclass(frozen=True)
class Sites:
    network: str
    allowed: Site
    denied: Site

    def all_ips(self) -> tuple[str, ...]:
        return self.allowed.ips + self.denied.ips


def requests_seen(engine: Engine, site: Site, marker: str) -> list[str]:
    """Log lines of ``site`` whose request path contains ``marker``."""
    return requests_in(engine.logs(site.container), marker)


def requests_in(log: str, marker: str) -> list[str]:
    """The request lines of a site's ``log`` (one `Engine.logs` read, for
    several markers) whose path contains ``marker``."""
    return [ln for ln in log.splitlines() if ln.startswith("upstream: ") and marker in ln]


def fingerprint(value: str) -> str:
    """What the site logs for a credential: sha256 prefix, never the value."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def api_credentials_seen(engine: Engine, site: Site, path_suffix: str) -> list[str]:
    """The credential fingerprints of every ``POST ...<path_suffix>`` the
    site answered (``-`` for a request without one)."""
    out = []
    for line in engine.logs(site.container).splitlines():
        parts = line.split()
        if (len(parts) >= 4 and parts[:2] == ["upstream:", "POST"]
                and parts[2].split("?", 1)[0].endswith(path_suffix)
                and parts[-1].startswith("auth=")):
            out.append(parts[-1][len("auth="):])
    return out


@dataclass(frozen=True)
class ApiBody:
    """What the site logged of one API request's body (``upstream-body``
    lines): the ``bottle-mark-<word>`` strings in it and the tool names it
    offered the model; nothing else of the body is ever logged."""

    path: str
    marks: frozenset[str]
    tools: frozenset[str]


def api_bodies_seen(engine: Engine, site: Site, path_suffix: str) -> list[ApiBody]:
    """One `ApiBody` per ``POST ...<path_suffix>`` the site answered."""
    out = []
    for line in engine.logs(site.container).splitlines():
        parts = line.split(" ")
        if len(parts) != 5 or parts[:2] != ["upstream-body:", "POST"]:
            continue
        if not parts[2].split("?", 1)[0].endswith(path_suffix):
            continue
        fields = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
        marks, tools = fields.get("marks", "-"), fields.get("tools", "-")
        out.append(ApiBody(parts[2], frozenset(m for m in marks.split(",") if m != "-"),
                           frozenset(t for t in tools.split(",") if t != "-")))
    return out


def api_aliases_problem(engine: Engine, sites: Sites) -> str | None:
    """Why the agents' API host names might NOT resolve to our site on the
    bottle's outbound network (docker's records: the site container's
    aliases there, and the network being the one the bottle dials from);
    None when every name is ours."""
    out = engine.run("inspect", "--format", "{{json .NetworkSettings.Networks}}",
                     sites.allowed.container).stdout
    nets = json.loads(out or "{}") or {}
    aliases = set((nets.get(sites.network) or {}).get("Aliases") or [])
    missing = [h for h in API_HOSTS if h not in aliases]
    if missing:
        return (f"the test upstream {sites.allowed.container} has no alias {missing} on "
                f"{sites.network} (aliases: {sorted(aliases)})")
    return None


def _start(engine: Engine, res: Resources, network: str, image: str, pki: TestPki,
           role: str, aliases: tuple[str, ...], timeout: float, answer: str = "") -> Site:
    name = res.name(role)
    argv = ["run", "-d", "--name", name, "--label", res.label, "--network", network]
    if answer:
        argv += ["-e", f"{ANSWER_ENV}={answer}"]
    for alias in aliases:
        argv += ["--network-alias", alias]
    argv += ["--mount", f"type=bind,source={pki.dir},target={PKI_MOUNT},readonly",
             "-e", f"UPSTREAM_CERT={PKI_MOUNT}/{pki.server_cert.name}",
             "-e", f"UPSTREAM_KEY={PKI_MOUNT}/{pki.server_key.name}",
             image, "bottle-bundle", "upstream"]
    # Registered first: `docker run -d` creates the container before it can
    # fail to start it, and a failed start must not leak it.
    res.container(name)
    engine.run(*argv)

    engine.wait_for_log(name, READY_MARK, what=f"test upstream {name}", timeout=timeout)
    ips = tuple(ip for net, ip in engine.container_ips(name).items() if net == network)
    return Site(name, aliases, ips)


def start_sites(engine: Engine, res: Resources, network: str, image: str, pki: TestPki,
                *, timeout: float, answer: str = "") -> Sites:
    """Both sites on ``network``; removed by ``res`` (before the bottle's own
    teardown, which needs the network free of our containers). ``answer``:
    the allowed site's canned API answer. The two start (and are waited
    for) at once when the engine's runner allows it."""
    allowed = lambda: _start(engine, res, network, image, pki, "upstream",  # noqa: E731
                             (UPSTREAM_HOST, PLAIN_HOST, *API_HOSTS, INTERNAL_HOST), timeout,
                             answer)
    denied = lambda: _start(engine, res, network, image, pki, "denied",  # noqa: E731
                            (DENIED_HOST,), timeout)
    if not engine.runner.concurrent:
        return Sites(network, allowed(), denied())
    return Sites(network, *concurrently(allowed, denied))  # both waited for, whatever happens
