"""The live harness: scenarios, launching bottles, staging their upstream.

One `LiveHarness` per test class (per xdist worker) launches each scenario
at most once and keeps it for every test that asks (`bottle`), so the live
run pays one launch per scenario; tests that break a bottle on purpose
(LIVE-FAILCLOSED) or judge its teardown get their own (`launch`). Every
bottle's ``close`` and every container of ours is registered in
`Resources` the moment it exists, and the class finalizer runs them all;
a bottle no selected test is left to use closes earlier, in the
background (`test_ended`), and a close that fails there is the
finalizer's to retry.

Hosts, tokens and names are made up per run: the real token is
``bottle-live-<32 hex>`` (so a guest scan can look for the shape and report
only hashes), the host env the plan is prepared from holds only PATH, the
engine address, image refs, the token and the upstream CA path; nothing is
read from the real host's credentials.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bottle_api.backend import PIPELOCK_TRUSTED_HOSTS_ENV, UPSTREAM_CA_ENV, Backend, Bottle
from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH, HostContext
from bottle_api.plan import Plan
from bottle_api.runner import CommandError, Completed, DelegatingRunner, Runner, poll
from bottle_api.spec import BottleSpec, GitUser, Route, Upstream

from ..outcomes import ERROR_PREFIX, environment_broken, not_supported
from .. import background, watchdog
from ..results import PROP_STANDINS
from . import probes, upstream
from .engine import Engine, FixtureEngineError, environment_error, fixture_engine_cli
from .resources import PREFIX, Resources, run_tag
from .tls import TestPki, make_pki

# Host variables a live launch may need (engine address, image refs,
# backend knobs); never credentials.
PASS_ENV = ("PATH", "DOCKER_HOST", "DOCKER_CONFIG", "CONTAINER_HOST", "CLAUDE_BOTTLE_IMAGE",
            "BOTTLE_BUNDLE_IMAGE", "BOTTLE_SMOL_SOCKET_ROUTE", "BOTTLE_SMOL_CPUS",
            "BOTTLE_SMOL_MEM_MIB", "BOTTLE_SMOL_CACHE")
TOKEN_ENV = "BOTTLE_LIVE_TOKEN"
PRELAUNCH_WORKERS = 2  # bottles launched at once in the background
# The image the test upstream runs (`bottle-bundle upstream`); default: the
# plan's bundle image, which for the reference backends has that daemon.
UPSTREAM_IMAGE_ENV = "BOTTLE_LIVE_UPSTREAM_IMAGE"
TOKEN_PREFIX = "bottle-live-"
TOKEN_BODY = "[0-9a-f]{32}"  # a regex: the guest scan is told the shape, never a value
TOKEN_PATTERN = TOKEN_PREFIX + TOKEN_BODY
PLACEHOLDER = "bottle-live-placeholder"  # what the guest sends; not the token shape
SKILL_NAME = "live-skill"
# Marks the API stand-in reports when a request body holds them
# (`upstream.api_bodies_seen`): in a bottle's prompt and its skill's
# description, they show what the agent itself sends (PROV-CODEX-*).
PROMPT_MARK = "bottle-mark-prompt"
SKILL_MARK = "bottle-mark-skill"
GIT_USER = GitUser(name="Live Probe", email="live-probe@bottle-live.test")
# A git upstream as a config string only: the guest's insteadOf must send it
# to git-gate; were it dialled as written, pipelock would refuse the host.
GIT_UPSTREAM = Upstream(name="live-repo", url="https://git.bottle-live.test/live/repo.git")


# Clauses whose live tests need the harness's own fixture engine (a
# docker-compatible CLI, `--bottle-fixture-engine`), and what for. Every
# other live clause runs with no engine at all, whatever the guest is.
FIXTURE_ENGINE_CLAUSES: dict[str, str] = {
    "LIVE-BYPASS": "test upstream containers on the bottle's outbound network",
    "LIVE-PIPELOCK": "allowed and denied test upstream containers",
    "LIVE-AGENT": "the test upstream standing in for the agents' APIs under their real names",
    "PROV-CODEX-PROMPT": "the API stand-in reporting what codex sends (live half)",
    "PROV-CODEX-SKILLS": "the API stand-in reporting what codex sends (live half)",
    "PROV-CODEX-MCP": "the test upstream the first hop must answer before supervise is "
                      "dialled from the guest (live half)",
    "LIVE-INTERACTIVE": "the test upstream answering claude's start-up calls to its API",
    "LIVE-AUTH": "the test upstream that logs the Authorization it receives",
    "LIVE-CA-TRUST": "the TLS test upstream",
    "LIVE-FAILCLOSED": "the test upstream (reachable before pipelock stops)",
    "LAUNCH-PROXY-ENV": "the test upstream the first hop must reach (live half)",
    "LIVE-TEARDOWN": "sentinel containers and networks, and a view of what remains",
    "PORT-LOOPBACK": "an inspect of the bottle's containers' published ports (live half)",
    # issue 15: the sites' logs say whether an attack's request arrived
    "LIVE-EGRESS-ONE-NAME": "the route-host and denied test upstreams, whose logs it reads",
    "LIVE-NO-FRONTING": "the allowed and denied test upstreams, whose logs it reads",
    "LIVE-HOST-CANON": "the route-host test upstream, whose log it reads",
    "LIVE-ALLOWLIST-ONLY": "the denied test upstream (and names no site answers)",
    "LIVE-SSRF": "the allowed test upstream under an allowlisted, untrusted name, whose log "
                 "it reads",


    "LIVE-DNS": "the resolver canary beside the test upstream",
}


ENV_MARK = "\0env:"
# What a test-only stand-in of a real tool (tests/standins/smolvm) says when
# it is asked for something it does not model (smolvm networking): a launch
# that fails with it is NOT_SUPPORTED there, not FAILED, and never PASSED.
STANDIN_NOT_MODELLED = "not modelled by the stand-in"


@contextmanager
def environment_errors(what: str, *, setup: bool = False) -> Iterator[None]:
    """Turn an engine failure that is the environment's (`environment_error`:
    address pools exhausted, daemon gone, disk full) into ERROR. With
    ``setup`` (the harness's OWN set-up: test upstream, sentinels, PKI) any
    failed command is the environment's: the backend took no part in it."""
    try:
        yield
    except (CommandError, OSError, TimeoutError, RuntimeError) as exc:
        line = environment_error(str(exc))
        if line or (setup and isinstance(exc, (CommandError, OSError))):
            environment_broken(f"{what}: {line or exc}")
        raise


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_hex(16)


def _b64url_json(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def codex_access_token(token: str) -> str:
    """A ChatGPT-shaped access token (an unsigned 3-part JWT, exp in 30 days)
    that carries ``token`` in its signature segment, so the real token's
    shape is still found by a guest scan."""
    exp = int(time.time()) + 30 * 86400
    claims = {"exp": exp, "https://api.openai.com/auth": {"chatgpt_account_id": LIVE_ACCOUNT,
                                                          "chatgpt_plan_type": "pro"}}
    return ".".join([_b64url_json({"alg": "RS256", "typ": "JWT"}), _b64url_json(claims), token])


LIVE_ACCOUNT = "bottle-live-account"


def host_credentials(agent: str, token: str) -> tuple[str, str]:
    """``(home-relative path, text)`` of a made-up host sign-in whose access
    token is (or carries) ``token``: what forward_host_credentials reads."""
    if agent == "codex":
        access = codex_access_token(token)
        exp = int(time.time()) + 30 * 86400
        id_token = ".".join([_b64url_json({"alg": "RS256", "typ": "JWT"}), _b64url_json({
            "exp": exp, "email": "live-probe@bottle-live.test",
            "https://api.openai.com/auth": {"chatgpt_account_id": LIVE_ACCOUNT,
                                            "chatgpt_plan_type": "pro"}}), "sig"])
        return CODEX_AUTH, json.dumps({
            "OPENAI_API_KEY": None,
            "tokens": {"id_token": id_token, "access_token": access,
                       "refresh_token": TOKEN_PREFIX + "refresh", "account_id": LIVE_ACCOUNT},
            "last_refresh": "2026-01-01T00:00:00Z"})
    return CLAUDE_CREDENTIALS, json.dumps({"claudeAiOauth": {
        "accessToken": token, "refreshToken": TOKEN_PREFIX + "refresh",
        "expiresAt": (int(time.time()) + 30 * 86400) * 1000,
        "scopes": ["user:inference", "user:profile"], "subscriptionType": "max"}})


def _result(future: Future, what: str) -> Any:
    """``future.result()``, bounded by the watchdog's deadline for this test:
    a background launch that never finishes is ERROR naming ``what``, not a
    hung run (its backend calls are bounded in their thread too)."""
    seconds = watchdog.CLOCK.timeout
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        raise watchdog.timeout_error(what, seconds or 0.0,
                                     "still running in a worker thread; abandoned") from None


class TracingRunner(DelegatingRunner):
    """Runs through ``inner`` and keeps every argv (to see how far a failed
    launch got)."""

    def __init__(self, inner: Runner):
        super().__init__(inner)
        self.argvs: list[tuple[str, ...]] = []

    @property
    def concurrent(self) -> bool:  # list.append is atomic: the trace is a set of calls
        return self.inner.concurrent

    def run(self, argv, **kw) -> Completed:
        self.argvs.append(tuple(str(a) for a in argv))
        return self.inner.run(argv, **kw)


@dataclass(frozen=True)
class Scenario:
    """A bottle shape the live tier launches."""

    key: str
    routed: bool
    prompt: str = ""
    skills: bool = False
    supervise: bool = False
    git_user: bool = False
    upstreams: bool = False
    broken_image: bool = False  # agent image without user node: provisioning fails
    # LIVE-AGENT: which agent runs, and how its API is reached
    agent: str = "claude"
    api_route: bool = False  # a declared route for the agent's API host (guest: API key placeholder)
    forward: bool = False  # forward_host_credentials (guest: sign-in placeholder)


SCENARIOS = {
    # Routed: egress first, the upstream is a route host (LIVE-AUTH), plus
    # everything provisioning can do.
    "routed": Scenario("routed", routed=True, prompt="You are a live conformance probe.\n",
                       skills=True, supervise=True, git_user=True, upstreams=True),
    # Unrouted: pipelock first; nothing extra provisioned, empty prompt.
    "unrouted": Scenario("unrouted", routed=False),
    "teardown": Scenario("teardown", routed=False),
    "broken": Scenario("broken", routed=False, broken_image=True),
    # LIVE-AGENT: the real CLIs against the API stand-in, both ways a bottle
    # reaches an agent API (a declared route; the host's sign-in forwarded).
    "agent-claude-routed": Scenario("agent-claude-routed", routed=True, api_route=True),
    "agent-claude-forward": Scenario("agent-claude-forward", routed=True, forward=True),
    "agent-codex-routed": Scenario("agent-codex-routed", routed=True, agent="codex",
                                   api_route=True),
    "agent-codex-forward": Scenario("agent-codex-forward", routed=True, agent="codex",
                                    forward=True),
    # PROV-CODEX-*: a codex bottle with a prompt, a skill and supervise, whose
    # CLI is then run against the API stand-in (a declared route).
    "codex-provisioned": Scenario("codex-provisioned", routed=True, agent="codex",
                                  api_route=True, skills=True, supervise=True,
                                  prompt=f"You are a live conformance probe ({PROMPT_MARK}).\n"),
}

# The API host each agent's routed scenario declares, with the header the
# CLI sends its API key in (Claude Code: x-api-key; Codex: Authorization).
API_ROUTES = {
    "claude": Route(host="api.anthropic.com", token_env=TOKEN_ENV, header="x-api-key", scheme=""),
    "codex": Route(host="api.openai.com", token_env=TOKEN_ENV),
}
# What the guest's CLI is given as its API key in a routed scenario.
API_KEY_ENV = {"claude": "ANTHROPIC_API_KEY", "codex": "CODEX_API_KEY"}


@dataclass
class LiveBottle:
    """A launched bottle, its plan, and the sites staged for it."""

    harness: "LiveHarness"
    scenario: Scenario
    plan: Plan
    bottle: Bottle
    launch_seconds: float
    sites: upstream.Sites | None = None
    sites_missing: str = ""  # NOT_SUPPORTED: no Bottle.outbound_network()
    sites_broken: str = ""  # ERROR: the fixture engine does not answer
    ready: bool = False
    dead: str = ""  # why the first hop never answered (then every test fails fast)
    properties: list[tuple[str, str]] = field(default_factory=list)

    def need_network(self) -> None:
        """NOT_SUPPORTED when the guests' network cannot be probed here
        (`Backend.live_network_unsupported`), for probes that need no site."""
        self.harness.need_network()

    def need_sites(self) -> upstream.Sites:
        """The staged upstream, or NOT_SUPPORTED when the backend has no
        `Bottle.outbound_network` to stage it on, ERROR when the fixture
        engine does not answer."""
        if self.sites is None:
            if self.sites_broken:
                environment_broken(self.sites_broken)
            not_supported(self.sites_missing)
        return self.sites

    def wait_ready(self, log: probes.ProbeLog) -> upstream.Sites:
        """Poll (bounded) until a request through the first hop reaches the
        allowed site: the proxies listen and resolve our aliases."""
        sites = self.need_sites()
        if self.ready:
            return sites
        if self.dead:  # known dead: do not wait the whole live timeout again
            raise AssertionError(f"the first hop never answered earlier: {self.dead}")
        t0 = time.monotonic()
        attempts = []

        def through() -> bool:
            r = probes.http(self.bottle, f"http://{upstream.UPSTREAM_HOST}/ready",
                            log=log, name="ready", timeout=3)
            attempts.append(r.describe())
            return r.echo is not None

        try:
            poll(self.harness.runner, through, timeout=self.harness.timeout,
                 what="first hop to the test upstream")
        except TimeoutError as exc:
            self.dead = f"{exc}; last attempt: {attempts[-1] if attempts else '-'}"
            raise AssertionError(self.dead) from None
        self.properties.append(("live_first_hop_ready",
                                f"{self.scenario.key}: {time.monotonic() - t0:.3f}s "
                                f"after launch returned ({len(attempts)} attempts)"))
        self.ready = True
        return sites


@dataclass
class TracedLaunch:
    """A launch through a runner of its own, and what came of it."""

    recorder: TracingRunner
    plan: Plan | None = None
    staged: Any = None
    bottle: Bottle | None = None
    error: Exception | None = None
    future: Future | None = None


class LiveHarness:
    """Per-class live state: engine, resources, test PKI, launched bottles."""

    def __init__(self, backend: Backend, runner: Runner, tmp: Path, *, timeout: float,
                 engine_cli: str | None = None):
        """``engine_cli``: the fixture engine setting (``--bottle-fixture-engine``);
        None reads ``BOTTLE_FIXTURE_ENGINE``, else ``docker``."""
        self.backend = backend
        self.runner = runner
        self.tmp = tmp
        self.timeout = timeout
        try:
            cli = fixture_engine_cli(engine_cli)
        except FixtureEngineError as exc:
            environment_broken(str(exc))
        self.engine = Engine(runner, cli)
        self.tag = run_tag()
        self.res = Resources(self.engine, self.tag)
        self.token = new_token()
        self.token_born = time.monotonic()
        self.answer = "bottle-live-answer-" + secrets.token_hex(6)  # the API stand-in's reply
        self._credentials: dict[str, tuple[str, str]] = {}
        self._pki: TestPki | None = None
        self._bottles: dict[str, LiveBottle] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        # Made once, on first use, by whichever thread asks first (a traced
        # prelaunch's thread and the main thread may ask at once).
        self._made_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._first_done: threading.Event | None = None  # the first queued launch ended
        self._gate = threading.Condition()  # background launches vs `exclusive`
        self._launching = 0  # background launches running
        self._exclusive = 0  # tests holding `exclusive`
        self._pending: dict[str, Future] = {}  # shared bottles launching in the background
        self._spares: dict[str, list[Future]] = {}  # fresh bottles for `fresh`
        self._traced: dict[str, list[TracedLaunch]] = {}  # for `traced`
        # Early closes (`test_ended`): tests still to use each shared bottle,
        # fresh bottles handed to the running test, closes under way.
        self._uses: dict[str, int] = {}
        self._handed: list[LiveBottle] = []
        self._closing: list[tuple[str, Callable[[], None], Future]] = []
        self._n = 0
        self._engine_problem: str | None = None  # None: not asked yet
        self.standins: dict[str, str] = {}
        self.network_unsupported: str | None = None
        background.register(self.exclusive)  # a static check may need the process alone

    # -- environment -----------------------------------------------------------
    def check_environment(self) -> None:
        """NOT_SUPPORTED / ERROR before anything is created. The fixture
        engine is not asked here: only `FIXTURE_ENGINE_CLAUSES` need it
        (`need_engine`), the other live clauses run without one."""
        unsupported = self.backend.live_unsupported(self.runner)
        if unsupported:
            not_supported(unsupported)
        broken = self.backend.live_unavailable(self.runner)
        if broken:
            environment_broken(broken)
        self.standins = dict(self.backend.standins(self.runner))
        self.network_unsupported = self.backend.live_network_unsupported(self.runner)

    def engine_problem(self) -> str:
        """Why the fixture engine cannot be used ("" when it answers); asked once."""
        if self._engine_problem is None:
            problem = self.engine.answers()
            self._engine_problem = "" if problem is None else (
                f"the live harness stages its own fixtures (test upstream, sentinels) on a "
                f"docker-compatible engine: {problem}; pick one with --bottle-fixture-engine "
                "or DOCKER_HOST")
        return self._engine_problem

    def need_engine(self) -> Engine:
        """The fixture engine, or ERROR (the environment, not the backend)."""
        problem = self.engine_problem()
        if problem:
            environment_broken(problem)
        return self.engine

    @property
    def pki(self) -> TestPki:
        """Made once per harness. Under a lock: two threads making it at
        once write the same files, and the upstream's key then need not
        match its certificate (CI: KEY_VALUES_MISMATCH)."""
        with self._made_lock:
            if self._pki is None:
                with environment_errors("making the test PKI", setup=True):
                    self._pki = make_pki(self.runner, self.tmp / "pki", upstream.HOSTS)
            return self._pki

    def host(self, scenario: Scenario | None = None, **extra_env: str) -> HostContext:
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        env[TOKEN_ENV] = self.token
        env[UPSTREAM_CA_ENV] = str(self.pki.ca_cert)
        # The test upstream lives on a private docker network, which pipelock's
        # SSRF guard refuses; exempt exactly its names (never the denied site's,
        # never a range), as an operator would for an internal service.
        env[PIPELOCK_TRUSTED_HOSTS_ENV] = ",".join(upstream.TRUSTED_HOSTS)
        env.update(extra_env)
        home_files = {}
        if scenario is not None and scenario.forward:
            home_files = dict([self.host_credentials(scenario.agent)])
        return HostContext(env=env, home=self.tmp / "home", cwd=self.tmp,
                           state_root=self.tmp / "state", home_files=home_files)

    def host_credentials(self, agent: str) -> tuple[str, str]:
        """The made-up host sign-in for ``agent`` (one per harness)."""
        with self._made_lock:
            if agent not in self._credentials:
                self._credentials[agent] = host_credentials(agent, self.token)
            return self._credentials[agent]

    def real_api_token(self, scenario: Scenario) -> str:
        """The credential the API must see for ``scenario``: the route's
        token, or the access token of the host sign-in forwarded."""
        if scenario.forward and scenario.agent == "codex":
            return json.loads(self.host_credentials("codex")[1])["tokens"]["access_token"]
        return self.token

    def bottle_name(self, key: str) -> str:
        with self._lock:
            self._n += 1
            return f"{PREFIX}{self.tag}-{self._n}{key[:1]}"

    # -- launching ahead -------------------------------------------------------
    def prelaunch(self, shared: Sequence[str] = (), fresh: Sequence[str] = (),
                  workers: int = PRELAUNCH_WORKERS) -> None:
        """Start launching, in the background, the shared bottles and the
        fresh ones the selected tests will ask for, so launches overlap one
        another and the probes of bottles already up. Non-blocking; a launch
        that fails is reported by the test that asks for that bottle."""
        if not shared and not fresh:
            return
        _ = self.pki  # made once, before any thread needs it
        self._ensure_pool(workers)
        for key in dict.fromkeys(shared):
            if key not in self._bottles and key not in self._pending:
                self._pending[key] = self._submit(self.launch, key)
        for key in fresh:
            self._spares.setdefault(key, []).append(self._submit(self.launch, key))

    def _ensure_pool(self, workers: int = PRELAUNCH_WORKERS) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="bottle-prelaunch")

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue a launch. The first runs alone: every other waits until it
        is done (an event, bounded by the live timeout), so the bottle the
        first test waits for gets the machine to itself (on 2 cores two
        launches side by side took 10 s each, one alone 5-6 s) and the
        next launches still run ahead of the tests that need them. None
        starts while a test holds `exclusive`."""
        assert self._pool is not None
        first = self._first_done is None
        if first:
            self._first_done = threading.Event()
        done = self._first_done

        def job() -> Any:
            if not first:
                done.wait(self.timeout)
            with self._gate:  # not while a test holds `exclusive` (bounded)
                self._gate.wait_for(lambda: not self._exclusive, self.timeout)
                self._launching += 1
            try:
                return fn(*args)
            finally:
                with self._gate:
                    self._launching -= 1
                    self._gate.notify_all()
                if first:
                    done.set()

        return self._pool.submit(job)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """For a probe whose timing the engine's other work distorts (the
        whole-port-space sweep of LIVE-ENDPOINTS: 3-4 s per address alone,
        20-32 s beside background launches): background launches finish
        first (bounded by the live timeout) and none starts until the block
        ends. What the probe proves is unchanged; only the schedule is."""
        with self._gate:
            self._exclusive += 1
            self._gate.wait_for(lambda: self._launching == 0, self.timeout)
        try:
            yield
        finally:
            with self._gate:
                self._exclusive -= 1
                self._gate.notify_all()

    def prelaunch_traced(self, key: str, staging: Callable[[Plan], Any]) -> None:
        """Start, in the background: prepare scenario ``key``, call
        ``staging(plan)`` (e.g. sentinels that must exist before the launch),
        then launch through a `TracingRunner` of its own. `traced` hands the
        result to the test that judges it (LIVE-TEARDOWN)."""
        self._ensure_pool()
        run = TracedLaunch(TracingRunner(self.runner))

        def go() -> None:
            run.plan = self.prepare(SCENARIOS[key])
            run.staged = staging(run.plan)
            try:
                run.bottle = self.backend.launch(run.plan, run.recorder)
            except Exception as exc:
                run.error = exc
                return
            self.res.bottle(f"bottle {run.plan.bottle}", run.bottle.close)

        run.future = self._submit(go)
        self._traced.setdefault(key, []).append(run)

    def traced(self, key: str, staging: Callable[[Plan], Any]) -> "TracedLaunch":
        """The launch `prelaunch_traced` started for ``key`` (waited for), or
        one done now. Set-up errors (ERROR) propagate; a failed launch is in
        ``error``."""
        runs = self._traced.get(key)
        if not runs:
            self.prelaunch_traced(key, staging)
            runs = self._traced[key]
        run = runs.pop(0)
        _result(run.future, f"the traced launch of {key!r}")
        return run

    def fresh(self, key: str) -> LiveBottle:
        """A bottle of its own for a test that breaks it: one launched ahead
        (`prelaunch`) if there is one, else launched now. It closes when the
        test ends (`test_ended`)."""
        spares = self._spares.get(key)
        lb = (_result(spares.pop(0), f"launching a fresh {key!r} bottle") if spares
              else self.launch(key))
        self._handed.append(lb)
        return lb

    # -- closing early -----------------------------------------------------------
    def expect_uses(self, uses: dict[str, int]) -> None:
        """How many of the selected tests will use each shared bottle: the
        last of them to end closes it (`test_ended`). Without this (e.g.
        under pytest-xdist, where a worker runs an unknown share) bottles
        close at `cleanup`."""
        self._uses = dict(uses)

    def test_ended(self, shared: Iterable[str] = ()) -> None:
        """A test ended: close, in the background, the fresh bottles it was
        handed and each shared bottle of ``shared`` no selected test is left
        to use. Closing early frees the engine's and the host's memory
        and overlaps the closes with the tests still running, instead of
        ten of them at the class's end (~8 s on 2 cores). A close that
        fails or has not run by `cleanup` is left to `cleanup`."""
        done, self._handed = self._handed, []
        for key in shared:
            if key not in self._uses:
                continue
            self._uses[key] -= 1
            if self._uses[key] <= 0:
                del self._uses[key]
                lb = self._bottles.pop(key, None)
                if lb is not None:
                    done.append(lb)
        for lb in done:
            self._close_early(lb)

    def _close_early(self, lb: LiveBottle) -> None:
        what = f"bottle {lb.plan.bottle}"
        close = self.res.take_bottle(what)
        if close is None:
            return
        self._ensure_pool()
        network = lb.sites.network if lb.sites is not None else None

        def job() -> None:
            if network:
                self.res.remove_containers_on(network)  # the sites: the close needs the net
            close()

        self._closing.append((what, close, self._submit(job)))

    def skill_dir(self) -> Path:
        d = self.tmp / "skills" / SKILL_NAME
        if not d.is_dir():
            (d / "scripts").mkdir(parents=True)
            (d / "SKILL.md").write_text(  # front matter: both agents' loaders want it
                f"---\nname: {SKILL_NAME}\ndescription: A skill the live tier checks "
                f"({SKILL_MARK}).\n---\n# {SKILL_NAME}\nA skill the live tier checks.\n")
            (d / "scripts" / "probe.sh").write_text("#!/bin/sh\necho live-skill\n")
        return d

    def spec(self, scenario: Scenario, name: str) -> BottleSpec:
        kw: dict[str, Any] = {}
        if scenario.api_route or scenario.forward:
            # the API is the route (declared or auto); the test sites are
            # allowlisted so the first-hop readiness poll works
            if scenario.api_route:
                kw["routes"] = (API_ROUTES[scenario.agent],)
            kw["forward_host_credentials"] = scenario.forward
            kw["allow"] = (upstream.UPSTREAM_HOST, upstream.PLAIN_HOST, upstream.INTERNAL_HOST)
        elif scenario.routed:
            kw["routes"] = (Route(host=upstream.UPSTREAM_HOST, token_env=TOKEN_ENV),)
            kw["allow"] = (upstream.PLAIN_HOST, upstream.INTERNAL_HOST)
        else:
            kw["allow"] = (upstream.UPSTREAM_HOST, upstream.PLAIN_HOST, upstream.INTERNAL_HOST)
        if scenario.skills:
            kw["skills"] = (self.skill_dir(),)
        if scenario.git_user:
            kw["git_user"] = GIT_USER
        if scenario.upstreams:
            kw["upstreams"] = (GIT_UPSTREAM,)
        return BottleSpec(name=name, agent=scenario.agent, prompt=scenario.prompt,
                          supervise=scenario.supervise, **kw)

    def prepare(self, scenario: Scenario) -> Plan:
        name = self.bottle_name(scenario.key)
        extra = {}
        if scenario.broken_image:
            probe = self.backend.prepare(self.spec(scenario, name), self.host())
            extra["CLAUDE_BOTTLE_IMAGE"] = probe.bundle_image_ref  # has no user node
        plan = self.backend.prepare(self.spec(scenario, name), self.host(scenario, **extra))
        if self.engine_problem():
            return plan  # nothing to check the images against; the backend will say
        for role, ref in (("agent", plan.agent_image_ref), ("bundle", plan.bundle_image_ref)):
            if not self.engine.image_exists(ref):
                environment_broken(f"{role} image {ref!r} is not in the fixture engine "
                                   f"(`{self.engine.label}`); build it first (the reference "
                                   "backends: `python -m bottle_ref.images all --print-env`, "
                                   "then export what it prints)")
        return plan

    def need_network(self) -> None:
        """NOT_SUPPORTED before launching anything when the guests' network
        cannot be probed here (`Backend.live_network_unsupported`)."""
        if self.network_unsupported:
            not_supported(self.network_unsupported)

    # -- bottles ---------------------------------------------------------------
    def bottle(self, key: str) -> LiveBottle:
        """The shared bottle of scenario ``key`` (launched on first use). A
        launch that failed is not retried: later tests fail fast with its error."""
        if key in self._failed:
            why = self._failed[key]
            if why.startswith(ENV_MARK):
                environment_broken(why.removeprefix(ENV_MARK))
            raise AssertionError(f"launching the {key!r} bottle failed earlier: {why}")
        if key not in self._bottles:
            try:
                pending = self._pending.pop(key, None)
                self._bottles[key] = (_result(pending, f"launching the {key!r} bottle")
                                      if pending else self.launch(key))
            except pytest.skip.Exception as exc:  # ERROR / NOT_SUPPORTED: keep the verdict
                self._failed[key] = ENV_MARK + str(exc.msg).removeprefix(ERROR_PREFIX).strip()
                raise
            except Exception as exc:
                self._failed[key] = f"{type(exc).__name__}: {exc}"
                raise
        return self._bottles[key]

    def launch(self, key: str) -> LiveBottle:
        """A fresh bottle of scenario ``key``, closed by the class finalizer
        (or earlier: by the test, or by `test_ended`)."""
        scenario = SCENARIOS[key]
        plan = self.prepare(scenario)
        t0 = time.monotonic()
        with environment_errors(f"launching the {key!r} bottle"):
            try:
                bottle = self.backend.launch(plan, self.runner)
            except Exception as exc:
                if self.standins and STANDIN_NOT_MODELLED in str(exc):
                    line = next((ln for ln in str(exc).splitlines()
                                 if STANDIN_NOT_MODELLED in ln), str(exc))
                    not_supported(f"the backend asks a stand-in for what it does not model, "
                                  f"so this host cannot run its guest: {line.strip()}")
                raise
        seconds = time.monotonic() - t0
        self.res.bottle(f"bottle {plan.bottle}", bottle.close)
        live = LiveBottle(self, scenario, plan, bottle, seconds)
        live.properties.append(("live_launch", f"{key}: {seconds:.3f}s"))
        if self.standins:
            live.properties.append((PROP_STANDINS, json.dumps(self.standins, sort_keys=True)))
        # Our containers, but on the backend's network: only the engine's
        # own failures are ERROR (a network that does not exist is the backend's).
        with environment_errors("staging the test upstream"):
            self._stage_sites(live)
        return live

    def _stage_sites(self, live: LiveBottle) -> None:
        if self.network_unsupported:
            live.sites_missing = self.network_unsupported
            return
        try:
            network = live.bottle.outbound_network()
        except NotImplementedError:
            live.sites_missing = (f"backend {self.backend.name} has no Bottle.outbound_network(): "
                                  "the live tier cannot stage its test upstream")
            return
        if self.engine_problem():
            live.sites_broken = self.engine_problem()
            return
        t0 = time.monotonic()
        live.sites = upstream.start_sites(self.engine, self.res, network,
                                          self.upstream_image(live.plan), self.pki,
                                          timeout=self.timeout, answer=self.answer)
        live.properties.append(("live_sites", f"{time.monotonic() - t0:.3f}s"))

    def token_age(self, slack: float = 120.0) -> float:
        """Seconds since the real token existed, plus ``slack``: a guest file
        older than this cannot hold it (`probes.scan` ``changed_within``)."""
        return time.monotonic() - self.token_born + slack

    def upstream_image(self, plan: Plan) -> str:
        return os.environ.get(UPSTREAM_IMAGE_ENV) or plan.bundle_image_ref

    def cleanup(self) -> None:
        if self._pool is not None:  # launches still running register their close first
            self._pool.shutdown(wait=True, cancel_futures=True)
        for what, close, fut in self._closing:  # an early close not done: cleanup's turn
            if fut.cancelled() or fut.exception() is not None:
                self.res.bottle(what, close)
        self._closing.clear()
        self._bottles.clear()
        self.res.cleanup()
