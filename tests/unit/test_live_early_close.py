"""The live harness closes a bottle once no selected test is left to use it
(`LiveHarness.test_ended`), not all of them at the class's end; a close it
could not finish early is the class cleanup's to do. No engine: the bottles
are fakes and the fixture engine is a recording runner."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from types import SimpleNamespace

import pytest

from bottle_api.runner import RecordingRunner
from bottle_ref.backends.docker import DockerBackend
from conformance.live.harness import SCENARIOS, LiveBottle, LiveHarness


class FakeBottle:
    def __init__(self, fail: bool = False, gate: threading.Event | None = None):
        self.closes = 0
        self.fail = fail
        self.gate = gate

    def close(self) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        self.closes += 1
        if self.fail:
            raise RuntimeError("the engine refused")


def _harness(tmp_path, runner=None) -> LiveHarness:
    return LiveHarness(DockerBackend(), runner or RecordingRunner(), tmp_path, timeout=5)


def _bottle(h: LiveHarness, key: str, name: str, *, network: str | None = None,
            **fake) -> tuple[LiveBottle, FakeBottle]:
    """A launched-looking bottle of scenario ``key``, its close registered
    with the harness's resources the way `LiveHarness.launch` does."""
    bottle = FakeBottle(**fake)
    lb = LiveBottle(h, SCENARIOS[key], SimpleNamespace(bottle=name), bottle, 0.0)
    if network:
        lb.sites = SimpleNamespace(network=network)
    h.res.bottle(f"bottle {name}", bottle.close)
    return lb, bottle


def _shared(h: LiveHarness, key: str, name: str, **kw) -> FakeBottle:
    lb, bottle = _bottle(h, key, name, **kw)
    h._bottles[key] = lb
    return bottle


def _spare(h: LiveHarness, key: str, name: str, **kw) -> FakeBottle:
    lb, bottle = _bottle(h, key, name, **kw)
    done: Future = Future()
    done.set_result(lb)
    h._spares.setdefault(key, []).append(done)
    return bottle


def _settle(h: LiveHarness) -> None:
    for _, _, fut in h._closing:
        fut.exception(timeout=5)


def test_a_shared_bottle_closes_after_its_last_test_and_only_once(tmp_path):
    h = _harness(tmp_path)
    routed = _shared(h, "routed", "b-routed")
    unrouted = _shared(h, "unrouted", "b-unrouted")
    h.expect_uses({"routed": 2, "unrouted": 1})
    h.test_ended({"routed"})
    _settle(h)
    assert routed.closes == 0, "closed while a selected test still uses it"
    h.test_ended({"routed"})
    h.test_ended(())  # a test of no shared bottle
    _settle(h)
    assert routed.closes == 1 and unrouted.closes == 0
    h.cleanup()
    assert routed.closes == 1, "the class cleanup closed it again"
    assert unrouted.closes == 1, "the cleanup must still close what no test released"


def test_a_fresh_bottle_closes_when_its_test_ends(tmp_path):
    h = _harness(tmp_path)
    bottle = _spare(h, "unrouted", "b-fresh")
    assert h.fresh("unrouted").bottle is bottle
    assert bottle.closes == 0
    h.test_ended(())
    _settle(h)
    assert bottle.closes == 1
    h.cleanup()
    assert bottle.closes == 1


def test_the_sites_leave_the_bottles_network_before_it_closes(tmp_path):
    runner = RecordingRunner()
    h = _harness(tmp_path, runner)
    ours = h.res.container(h.res.name("upstream"))
    other = h.res.container(h.res.name("elsewhere"))
    runner.reply("docker", "ps", "-a", "--filter", "network=net-1",
                 stdout=f"{ours}\nsomeone-elses\n")
    bottle = _shared(h, "routed", "b-routed", network="net-1")
    h.expect_uses({"routed": 1})
    h.test_ended({"routed"})
    _settle(h)
    removed = [c.argv for c in runner.calls if c.argv[1:2] == ("rm",)]
    assert removed == [("docker", "rm", "-f", "-v", ours)], removed
    assert bottle.closes == 1
    assert h.res._containers == [other], "the removed site is still listed for cleanup"


def test_a_failed_early_close_is_the_cleanups_to_retry_and_report(tmp_path):
    h = _harness(tmp_path)
    bottle = _shared(h, "routed", "b-routed", fail=True)
    h.expect_uses({"routed": 1})
    h.test_ended({"routed"})
    _settle(h)
    assert bottle.closes == 1
    with pytest.raises(RuntimeError, match="bottle b-routed: the engine refused"):
        h.cleanup()
    assert bottle.closes == 2


def test_an_early_close_still_queued_at_cleanup_is_not_lost(tmp_path):
    """The cleanup cancels queued launches (cancel_futures); a queued close
    must then come back to it, or its bottle would leak."""
    h = _harness(tmp_path)
    gate = threading.Event()
    first = _spare(h, "unrouted", "b-first", gate=gate)
    second = _spare(h, "unrouted", "b-second")
    h._ensure_pool(workers=1)
    h.fresh("unrouted")
    h.test_ended(())  # b-first's close runs, held at its gate
    h.fresh("unrouted")
    h.test_ended(())  # b-second's close queues behind it
    h._pool.shutdown(wait=False, cancel_futures=True)  # what cleanup does first
    gate.set()
    h.cleanup()
    assert (first.closes, second.closes) == (1, 1)
