"""`build_plan`: every backend-neutral decision `prepare` makes, in one place.

Both reference backends call this and add only their own fields (via
``plan_cls`` and ``**extra``) and addresses (``pipelock_url`` as egress sees
pipelock, ``pipelock_listen`` as pipelock binds). Keeping the rules here is
what makes hop order, daemons, pipelock lists and placeholders identical
across backends.

Pure (seed "launch-boundary fix"): only the arguments are read. No
filesystem, no process env, no clock, no network; equal inputs give an
equal plan. Images are references; building them is `launch`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import credentials, egress, pipelock
from .credentials import CredentialError
from bottle_api import conventions
from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH, HostContext
from bottle_api.plan import (
    EGRESS,
    GIT_GATE,
    PIPELOCK,
    SUPERVISE,
    EgressPlan,
    GitGatePlan,
    GuestFile,
    PipelockPlan,
    Plan,
    SupervisePlan,
)
from .provision import CA_BUNDLE
from bottle_api.spec import DEFAULT_IMAGE, IMAGE_ENV, BottleSpec, Route

BUNDLE_IMAGE_ENV = "BOTTLE_BUNDLE_IMAGE"
DEFAULT_BUNDLE_IMAGE = "bottle-bundle:latest"
FORWARD_KEY = "forward_host_credentials"

# Codex is rustls: it ignores the system store and NODE_EXTRA_CA_CERTS and
# reads CODEX_CA_CERTIFICATE (seed "codex fix"); Node reads NODE_EXTRA_CA_CERTS.
CA_ENV: Mapping[str, str] = {"codex": "CODEX_CA_CERTIFICATE", "claude": "NODE_EXTRA_CA_CERTS"}


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def agent_image_ref(spec: BottleSpec, env: Mapping[str, str]) -> str:
    return spec.image or env.get(IMAGE_ENV) or DEFAULT_IMAGE


def bundle_image_ref(env: Mapping[str, str]) -> str:
    return env.get(BUNDLE_IMAGE_ENV) or DEFAULT_BUNDLE_IMAGE


def daemons_for(spec: BottleSpec) -> tuple[str, ...]:
    """egress and pipelock always; git-gate iff upstreams; supervise iff enabled."""
    out = (EGRESS, PIPELOCK)
    if spec.upstreams:
        out += (GIT_GATE,)
    if spec.supervise:
        out += (SUPERVISE,)
    return out


def auto_routes(spec: BottleSpec) -> tuple[Route, ...]:
    """Routes ``forward_host_credentials`` adds after the declared ones: one
    per agent API host not already declared (a declared route wins).

    They depend on the spec alone, so hop order and daemons never depend on
    whether the host file exists; a missing file only leaves their slots
    empty (and reported in ``missing_tokens``)."""
    if not spec.forward_host_credentials:
        return ()
    declared = {r.host for r in spec.routes}
    start = len(spec.routes)
    hosts = [h for h in credentials.api_hosts(spec.agent) if h not in declared]
    return tuple(
        Route(host=h, token_env=egress.token_slot(start + k)) for k, h in enumerate(hosts)
    )


def first_hop_for(routes: tuple[Route, ...]) -> str:
    """egress iff any route (declared or auto) exists, else pipelock."""
    return EGRESS if routes else PIPELOCK


def _forwarded(spec: BottleSpec, host: HostContext) -> tuple[GuestFile | None, str | None]:
    """(placeholder guest file, real access token), or (None, None) when the
    host file is missing. A present but unusable file is a `SpecError`."""
    if spec.agent == "codex":
        rel, guest_path, make = CODEX_AUTH, credentials.CODEX_AUTH_GUEST, credentials.codex_placeholder
    else:
        rel, guest_path, make = (CLAUDE_CREDENTIALS, credentials.CLAUDE_CREDENTIALS_GUEST,
                                 credentials.claude_placeholder)
    text = host.home_files.get(rel)
    if text is None:
        return None, None
    try:
        placeholder, token = make(text)
    except CredentialError as exc:
        raise spec.error(FORWARD_KEY, str(exc)) from None
    return GuestFile(path=guest_path, content=placeholder, mode=0o600, owner="node"), token


def pipelock_hosts(spec: BottleSpec, routes: tuple[Route, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(api_allowlist, passthrough_domains)``.

    Passthrough holds every host egress injects a token for, apex listed
    explicitly (a wildcard does not match the apex), so pipelock's header
    DLP never decrypts egress-owned auth; plus the agent's wildcard hosts
    under ``forward_host_credentials`` and the user's ``tls_passthrough``;
    nothing else. The agent's API hosts are listed whenever forwarding is on,
    so the rule holds even for a plan whose host file is missing.

    The allowlist always holds the agent's own API hosts: pipelock runs in
    ``strict`` mode (the only mode that enforces the list) and refuses strict
    with an empty list, and the agent must reach its API. A spec host that
    is too broad a wildcard (``*.com``) is a `SpecError` naming its key."""
    for key, hosts in (("egress.allow", spec.allow), ("egress.tls_passthrough", spec.tls_passthrough)):
        for h in hosts:
            if (why := pipelock.wildcard_breadth_error(h)) is not None:
                raise spec.error(key, f"{why}; name a domain (*.example.com) or a host")
    extra: tuple[str, ...] = ()
    forwarded: tuple[str, ...] = ()
    if spec.forward_host_credentials:
        forwarded = credentials.api_hosts(spec.agent)
        extra = credentials.pipelock_extra_hosts(spec.agent)
    route_hosts = tuple(r.host for r in routes) + forwarded
    allow = _dedupe(route_hosts + tuple(spec.allow) + extra + credentials.api_hosts(spec.agent))
    passthrough = _dedupe(route_hosts + extra + tuple(spec.tls_passthrough))
    return allow, passthrough


def trusted_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """The host names `conventions.PIPELOCK_TRUSTED_HOSTS_ENV` exempts from
    pipelock's SSRF guard (rendered as ``trusted_domains``), canonical; empty
    when it is unset. Exact names only: a wildcard, an IP or a non-name is
    a `ValueError` naming the variable (one line)."""
    from bottle_api import hostnames

    text = env.get(conventions.PIPELOCK_TRUSTED_HOSTS_ENV, "")
    out = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        try:
            name = hostnames.canonical(raw)
        except hostnames.HostError as exc:
            raise ValueError(f"{conventions.PIPELOCK_TRUSTED_HOSTS_ENV}: {raw!r}: {exc}") from None
        if "*" in name or ":" in name or name.replace(".", "").isdigit():
            raise ValueError(f"{conventions.PIPELOCK_TRUSTED_HOSTS_ENV}: {raw!r}: name one host "
                             "exactly (no wildcard, no IP address)")
        out.append(name)
    return tuple(dict.fromkeys(out))


def build_plan(
    spec: BottleSpec,
    host: HostContext,
    *,
    backend: str,
    plan_cls: type[Plan] = Plan,
    pipelock_url: str,
    pipelock_listen: str,
    **extra: Any,
) -> Plan:
    """Resolve ``spec`` + ``host`` into a ``plan_cls`` (``**extra`` are the
    backend's own fields). Raises `SpecError` for an unusable forwarded
    credential file; a *missing* token is not an error here (launch raises
    it, naming ``missing_tokens``), so prepare can still show the plan."""
    declared = tuple(spec.routes)
    secrets, missing = egress.resolve_tokens(declared, host.env)
    autos = auto_routes(spec)
    guest_files: tuple[GuestFile, ...] = ()
    if spec.forward_host_credentials:
        guest_file, token = _forwarded(spec, host)
        if guest_file is None:
            missing.append(FORWARD_KEY)
        else:
            guest_files = (guest_file,)
            for route in autos:
                secrets[route.token_env] = token
    routes = declared + autos

    allow, passthrough = pipelock_hosts(spec, routes)
    config_yaml = pipelock.render_config(allow=allow, passthrough=passthrough, listen=pipelock_listen,
                                         trusted_domains=trusted_hosts(host.env))

    return plan_cls(
        backend=backend,
        bottle=spec.name,
        agent=spec.agent,
        agent_image_ref=agent_image_ref(spec, host.env),
        bundle_image_ref=bundle_image_ref(host.env),
        state_dir=str(host.state_root / spec.name),
        daemons=daemons_for(spec),
        first_hop=first_hop_for(routes),
        pipelock=PipelockPlan(config_yaml=config_yaml),
        egress=EgressPlan(
            routes=routes,
            routes_yaml=egress.render_routes(routes, pipelock_url),
            token_slots=tuple(egress.token_slot(i) for i in range(len(routes))),
            upstream_proxy=pipelock_url,
        ),
        git_gate=GitGatePlan(upstreams=tuple(spec.upstreams)) if spec.upstreams else None,
        supervise=SupervisePlan() if spec.supervise else None,
        guest_env={CA_ENV[spec.agent]: CA_BUNDLE},
        guest_files=guest_files,
        prompt=spec.prompt,
        prompt_path=conventions.prompt_path_for(spec.agent),
        skills=tuple((str(p), p.name) for p in spec.skills),
        cwd=str(spec.cwd) if spec.cwd is not None else None,
        git_user=spec.git_user,
        limits=spec.limits,
        secrets=secrets,
        missing_tokens=tuple(missing),
        spec_source=spec.source,
        spec_lines=dict(spec.lines),
        **extra,
    )
