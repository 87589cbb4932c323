"""A pipelock-compatible forward proxy (mitmproxy addon + runner).

pipelock's own binary is not obtainable here (DESIGN §7), so the bundle runs
this stand-in. It reads the SAME pipelock.yaml the planner renders, validated
by `bottle_bundle.pipelock_config.load_config`: an unknown key (or any other problem
pipelock would refuse) stops it before it listens, as pipelock does. The
image can swap in real pipelock without touching the backends.

Files and environment:
    PIPELOCK_CONFIG        config path (default /etc/pipelock/pipelock.yaml)
    tls_interception.ca_cert / ca_key  the CA pair named in the config
    PIPELOCK_UPSTREAM_CA   extra CA bundle(s) to trust upstream, os.pathsep
                           separated, on top of the system store (tests)

Honoured keys (everything else pipelock accepts is validated, then ignored):
    fetch_proxy.listen                      where to listen (default 127.0.0.1:8888)
    mode, api_allowlist                     as pipelock (internal/scanner/scanner.go):
                                            the allowlist is enforced ONLY in
                                            ``mode: strict`` (New), and an empty list
                                            allows every host (checkAllowlist); in
                                            ``balanced``/``audit`` every host passes.
                                            Enforced, a request's destination host must
                                            match an entry with pipelock's MatchDomain
                                            (``*.x.com`` matches the apex too); else 403
                                            ``X-Pipelock-Reason: host not in api_allowlist``.
                                            CONNECT is gated on its target host.
    fetch_proxy.monitoring.max_requests_per_minute
                                            per destination host, sliding 60 s
                                            window; over it: 429 (0/absent: no limit)
    request_body_scanning.{enabled,action,scan_headers}, dlp.patterns
                                            with all three on/block, a request whose
                                            header value matches a pattern gets 403
                                            ``request header contains secret``;
                                            action ``warn`` only logs (pattern name,
                                            never the value)
    tls_interception.{enabled,ca_cert,ca_key,passthrough_domains}
                                            decrypt CONNECT tunnels with the CA so the
                                            checks above see the inner requests, except
                                            for passthrough hosts (pipelock's isPassthrough,
                                            internal/proxy/intercept.go: ``*.x.com``
                                            matches subdomains only; forwarded encrypted,
                                            still host-gated and rate-limited per
                                            CONNECT); disabled: nothing is decrypted
    forward_proxy.enabled                   must be true (the validator enforces it)
    version                                 validated and logged

Defaults are pipelock's (internal/config/normalize.go): mode balanced;
request_body_scanning.enabled and .scan_headers true when omitted, action
warn. The CA key file is refused at startup when its mode has any of the
bits 0o137 (validate.go validateTLSInterception).

Not implemented: pipelock's fetch endpoint, URL and body DLP, response
scanning, SSRF checks, header_mode ``sensitive`` (every header is scanned). Rate accounting: each plain or decrypted request counts once; a
tunnel that is not decrypted counts once at its CONNECT.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bottle_api import conventions

from . import pipelock_config as pipelock
from . import logs, mitm
from .hosts import allowlist_matches, normalize, parse_listen, passthrough_matches

NAME = "pipelock"
CONFIG_ENV = "PIPELOCK_CONFIG"
UPSTREAM_CA_ENV = conventions.PIPELOCK_UPSTREAM_CA_ENV
REASON_HEADER = "X-Pipelock-Reason"
REASON_ALLOWLIST = "host not in api_allowlist"
REASON_HEADER_SECRET = "request header contains secret"
REASON_RATE = "rate limit exceeded"
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class DlpPattern:
    name: str
    regex: Any = field(repr=False)  # a compiled google-re2 pattern (pipelock's Go RE2)


@dataclass(frozen=True)
class Verdict:
    """Why a request is refused: the status and pipelock's wording."""

    status: int
    reason: str


@dataclass(frozen=True)
class PipelockSettings:
    """The honoured subset of a validated pipelock.yaml."""

    listen: tuple[str, int]
    mode: str
    allowlist: tuple[str, ...]
    max_requests_per_minute: int  # 0: no limit
    dlp: tuple[DlpPattern, ...]
    scan_headers: bool  # request_body_scanning.enabled and .scan_headers
    block: bool  # request_body_scanning.action == "block"
    tls_enabled: bool
    ca_cert: str | None
    ca_key: str | None
    passthrough: tuple[str, ...]

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> PipelockSettings:
        """From a config `bottle_bundle.pipelock_config.load_config` accepted."""

        def get(*keys: str, default: Any = None) -> Any:
            node: Any = data
            for key in keys:
                if not isinstance(node, Mapping) or key not in node:
                    return default
                node = node[key]
            return default if node is None else node

        scanning = get("request_body_scanning", default={})
        tls = get("tls_interception", default={})
        return cls(
            listen=parse_listen(get("fetch_proxy", "listen", default=pipelock.DEFAULT_LISTEN),
                                what="fetch_proxy.listen"),
            mode=get("mode", default=pipelock.DEFAULT_MODE),
            allowlist=tuple(get("api_allowlist", default=[])),
            max_requests_per_minute=get("fetch_proxy", "monitoring", "max_requests_per_minute",
                                        default=0),
            dlp=tuple(DlpPattern(p["name"], _re2_compile(p["regex"]))
                      for p in get("dlp", "patterns", default=[])),
            # omitted booleans default to true (normalize.go applySecurityDefaults)
            scan_headers=(scanning.get("enabled", True) is not False
                          and scanning.get("scan_headers", True) is not False),
            block=scanning.get("action") == "block",
            tls_enabled=bool(tls.get("enabled")),
            ca_cert=tls.get("ca_cert"),
            ca_key=tls.get("ca_key"),
            passthrough=tuple(tls.get("passthrough_domains") or ()),
        )


class RateLimiter:
    """At most ``limit`` admitted events per key in any ``window`` seconds.

    Refused events are not recorded, so a client that backs off recovers
    once its window drains (a retry storm stays refused while it storms).
    """

    def __init__(self, limit: int, *, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self._clock = limit, window, clock
        self._seen: dict[str, collections.deque[float]] = {}

    def admit(self, key: str) -> bool:
        if self.limit <= 0:
            return True
        now = self._clock()
        seen = self._seen.setdefault(key, collections.deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True


class PipelockPolicy:
    """The decisions, free of mitmproxy so they can be tested directly."""

    def __init__(self, settings: PipelockSettings, *,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.limiter = RateLimiter(settings.max_requests_per_minute, clock=clock)

    @property
    def enforced_allowlist(self) -> tuple[str, ...]:
        """The list the scanner checks: api_allowlist in strict mode, else
        none (scanner.go New: "Only enforce the allowlist in strict mode")."""
        return self.settings.allowlist if self.settings.mode == "strict" else ()

    def allowed(self, host: str) -> bool:
        """scanner.go checkAllowlist: an empty (or unenforced) list allows all."""
        allow = self.enforced_allowlist
        return not allow or any(allowlist_matches(host, p) for p in allow)

    def decrypts(self, host: str) -> bool:
        """Whether a CONNECT to ``host`` is intercepted (else passthrough):
        forward.go ``TLSInterception.Enabled && !isPassthrough(...)``."""
        return self.settings.tls_enabled and not any(
            passthrough_matches(host, p) for p in self.settings.passthrough)

    def secret_header(self, headers: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
        """``(header name, pattern name)`` of the first header value that
        matches a DLP pattern, when header scanning is on."""
        if not self.settings.scan_headers:
            return None
        for name, value in headers:
            for pattern in self.settings.dlp:
                if pattern.regex.search(value):
                    return name, pattern.name
        return None

    def check_connect(self, host: str) -> Verdict | None:
        if not self.allowed(host):
            return Verdict(403, REASON_ALLOWLIST)
        if not self.decrypts(host) and not self.limiter.admit(normalize(host)):
            return Verdict(429, REASON_RATE)
        return None

    def check_request(self, host: str, headers: Iterable[tuple[str, str]]) -> tuple[Verdict | None, str | None]:
        """``(verdict, dlp hit description)``; a hit under action ``warn``
        has no verdict but is reported for the log."""
        if not self.allowed(host):
            return Verdict(403, REASON_ALLOWLIST), None
        if not self.limiter.admit(normalize(host)):
            return Verdict(429, REASON_RATE), None
        hit = self.secret_header(headers)
        if hit is None:
            return None, None
        detail = f"header {hit[0]!r} matches dlp pattern {hit[1]!r}"
        return (Verdict(403, REASON_HEADER_SECRET) if self.settings.block else None), detail


class PipelockAddon:
    """mitmproxy hooks applying `PipelockPolicy`. Never logs header values."""

    def __init__(self, policy: PipelockPolicy, logger):
        self.policy, self.log = policy, logger

    def _refuse(self, flow, verdict: Verdict, what: str) -> None:
        from mitmproxy import http

        self.log.info(f"{verdict.status} {what}: {verdict.reason}")
        flow.response = http.Response.make(
            verdict.status, f"{verdict.reason}\n".encode(),
            {"Content-Type": "text/plain; charset=utf-8", REASON_HEADER: verdict.reason},
        )

    def http_connect(self, flow) -> None:
        host, port = flow.request.host, flow.request.port
        verdict = self.policy.check_connect(host)
        if verdict:
            self._refuse(flow, verdict, f"CONNECT {host}:{port}")

    def tls_clienthello(self, data) -> None:
        address = data.context.server.address
        if address is None or not self.policy.decrypts(address[0]):
            data.ignore_connection = True

    def request(self, flow) -> None:
        if flow.response is not None or flow.request.method == "CONNECT":
            return
        host = flow.request.host
        verdict, dlp_hit = self.policy.check_request(host, flow.request.headers.items(multi=True))
        what = f"{flow.request.method} {flow.request.scheme}://{host}:{flow.request.port}"
        if dlp_hit:
            self.log.info(f"dlp {what}: {dlp_hit}")
        if verdict:
            self._refuse(flow, verdict, what)


def _re2_compile(regex: str):
    import re2  # google-re2: the syntax pipelock's Go regexp accepts

    return re2.compile(regex)


def load_settings(path: Path) -> PipelockSettings:
    """Read and validate the config, CA files included; `pipelock.PipelockConfigError`
    or OSError on failure."""
    data = pipelock.load_config(path.read_text())
    problems = pipelock.check_ca_files(data)
    if problems:
        raise pipelock.PipelockConfigError(problems, pipelock._key_of(problems[0]))
    return PipelockSettings.from_config(data)


def main(argv: list[str] | None = None) -> int:
    logger = logs.setup_logging(NAME)
    path = Path(os.environ.get(CONFIG_ENV) or pipelock.CONFIG_PATH)
    try:
        settings = load_settings(path)
    except OSError as exc:
        return logs.fail(NAME, f"cannot read config {path}: {exc.strerror}")
    except pipelock.PipelockConfigError as exc:
        lines = "\n".join(f"  {p}" for p in exc.problems)
        return logs.fail(NAME, f"refusing to start: invalid config {path}:\n{lines}")
    except ValueError as exc:
        return logs.fail(NAME, f"refusing to start: invalid config {path}: {exc}")

    tls = settings.tls_enabled
    try:
        confdir, bundle = mitm.prepare_confdir(
            Path(settings.ca_cert) if tls else None, Path(settings.ca_key) if tls else None,
            mitm.env_paths(os.environ.get(UPSTREAM_CA_ENV)), what=UPSTREAM_CA_ENV)
    except mitm.StartupError as exc:
        return logs.fail(NAME, str(exc))

    logger.info(
        f"config {path}: mode={settings.mode} allowlist={len(settings.allowlist)} hosts "
        f"passthrough={len(settings.passthrough)} tls_interception={settings.tls_enabled} "
        f"header_dlp={'block' if settings.block else 'warn'}"
        f"{'' if settings.scan_headers else ' (off)'} "
        f"rate_limit={settings.max_requests_per_minute or 'none'}/min"
    )
    options = {
        "mode": ["regular"],
        "listen_host": settings.listen[0],
        "listen_port": settings.listen[1],
        "confdir": str(confdir),
        "ssl_verify_upstream_trusted_ca": str(bundle),
        "connection_strategy": "eager",
    }
    addon = PipelockAddon(PipelockPolicy(settings), logger)
    return mitm.run(NAME, options, [addon], logger, settings.listen)


if __name__ == "__main__":
    sys.exit(main())
