"""Shared pieces of the live-tier mixins: parametrizations, small helpers,
the fixtures (harness, canaries, probe log) every live test uses."""

from __future__ import annotations

import secrets

import pytest

from bottle_api.runner import SubprocessRunner

from ...live import probes
from ...live.canary import WILDCARD, Canary
from ...live.harness import LiveBottle, LiveHarness
from ...outcomes import not_supported

BOTH = pytest.mark.parametrize("live", ["unrouted", "routed"], indirect=True)
ROUTED = pytest.mark.parametrize("live", ["routed"], indirect=True)
UNROUTED = pytest.mark.parametrize("live", ["unrouted"], indirect=True)
CA_ENV_NAMES = ("CODEX_CA_CERTIFICATE", "NODE_EXTRA_CA_CERTS")


def _marker(what: str) -> str:
    return f"/{what}-{secrets.token_hex(6)}"


def _unreached(results) -> list[str]:
    return [f"{r.target} ({r.seconds}s)" for r in results if r.connected]


def _call_hook(fn, what: str):
    try:
        return fn()
    except NotImplementedError:
        not_supported(f"backend does not implement {what}")



# Tests that take a fresh bottle of the scenario in their "scenario" param.
FRESH_BOTTLE_TESTS = ("test_no_egress_with_pipelock_down",
                      "test_bottles_cannot_reach_each_other")  # issue 20: LIVE-APART


# Tests that judge a traced launch of their own, by their "how" param.
TRACED_TESTS = {"test_teardown_leaves_nothing": {"close": "teardown", "failed-launch": "broken"}}


def _params(item) -> dict:
    return getattr(getattr(item, "callspec", None), "params", {})


def _class_items(request) -> list:
    """The selected items of this class, in run order. Under pytest-xdist a
    worker runs an unknown share of them: none then (nothing is planned)."""
    if hasattr(request.config, "workerinput"):
        return []
    return [i for i in request.session.items if getattr(i, "cls", None) is request.cls]


def _shared_keys(item) -> set[str]:
    """The shared bottles a test may use: its ``live`` param, and a
    ``scenario`` param too (an author's own test asking
    ``live_harness.bottle(scenario)``; for a fresh bottle's test it only
    keeps the shared one a little longer)."""
    params = _params(item)
    return {params.get("live"), params.get("scenario")} - {None}


def _shared_uses(request) -> dict[str, int]:
    """Scenario key -> how many selected tests of this class may use that
    shared bottle (`_shared_keys`), so the last of them closes it. A test
    that asks for a shared bottle by another name after that gets it
    launched again."""
    uses: dict[str, int] = {}
    for item in _class_items(request):
        for key in _shared_keys(item):
            uses[key] = uses.get(key, 0) + 1
    return uses


def _launch_queue(request) -> list[tuple[str, str]]:
    """``(kind, scenario key)`` of every bottle the selected tests of this
    class will ask for, in the order the tests first need them, so the
    harness launches them ahead, concurrently, and the queue's head is
    always the next bottle a test waits for. ``kind``: "shared" (once per
    scenario), "fresh" (one per test that breaks its bottle) or "traced"
    (one per launch a test judges, e.g. LIVE-TEARDOWN). A queue of shared
    bottles first and the rest behind them made the teardown test, early in
    the run, wait for every other launch (37 s of LIVE-TEARDOWN[close]).
    Under pytest-xdist: none (`_class_items`)."""
    queue: list[tuple[str, str]] = []
    shared: set[str] = set()
    for item in _class_items(request):
        params = _params(item)
        name = getattr(item, "originalname", "")
        if "live" in params and params["live"] not in shared:
            shared.add(params["live"])
            queue.append(("shared", params["live"]))
        if name in FRESH_BOTTLE_TESTS and "scenario" in params:
            queue.append(("fresh", params["scenario"]))
        traced = TRACED_TESTS.get(name, {})
        if params.get("how") in traced:
            queue.append(("traced", traced[params["how"]]))
    return queue


class LiveFixtures:
    """Fixtures of the live tier; mixed into `LiveTier`."""

    @pytest.fixture(scope="class")
    @classmethod
    def live_harness(cls, backend, tmp_path_factory, bottle_settings, request):
        """The class's harness; it starts launching every bottle the selected
        tests need (`_launch_queue`), and closes each once the last selected
        test that uses it has ended (`_shared_uses`, `_bottles_done`). The
        first live test's set-up waits for the first launch (two bottles
        launch at once: 10 s on a 2-core host at load 3); the last test's
        teardown closes what is left (the last bottles used, and any close
        that failed earlier)."""
        harness = LiveHarness(backend, SubprocessRunner(), tmp_path_factory.mktemp("live"),
                              timeout=bottle_settings.live_timeout,
                              engine_cli=bottle_settings.fixture_engine)
        harness.check_environment()
        try:
            harness.expect_uses(_shared_uses(request))
            for kind, key in _launch_queue(request):  # first needed, first launched
                if kind == "traced":
                    harness.prelaunch_traced(key, cls._staging(harness))
                else:
                    harness.prelaunch(**{kind: [key]})
            yield harness
        finally:
            harness.cleanup()

    @pytest.fixture(autouse=True)
    def _bottles_done(self, request):
        """After a live test: its fresh bottles, and a shared one no later
        test uses, close in the background (`LiveHarness.test_ended`)."""
        yield
        harness = request.node.funcargs.get("live_harness")
        if isinstance(harness, LiveHarness):
            harness.test_ended(_shared_keys(request.node))

    @pytest.fixture
    def probe_log(self, request):
        log = probes.ProbeLog()
        yield log
        request.node.user_properties.extend(log.properties())

    @pytest.fixture
    def live(self, request, live_harness, probe_log) -> LiveBottle:
        """The shared bottle of the scenario named by indirect parametrization."""
        lb = live_harness.bottle(request.param)
        request.node.user_properties.extend(lb.properties)
        return lb

    @pytest.fixture(scope="class")
    @classmethod
    def canary(cls, bottle_settings):
        with Canary(lifetime=bottle_settings.live_timeout * 10) as c:
            yield c

    @pytest.fixture(scope="class")
    @classmethod
    def host_canary(cls, bottle_settings):
        """A canary on every host address (0.0.0.0 and ::), TCP and UDP, as a
        careless host service listens (LIVE-HOST)."""
        with Canary(WILDCARD, lifetime=bottle_settings.live_timeout * 10, udp=True) as c:
            yield c

