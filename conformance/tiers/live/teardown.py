"""LIVE-TEARDOWN: judged from what close() ran (the harness traces the
runner it hands the backend) and from what remains of the bottle's OWN
resources (`Bottle.resources`, and every object named after the bottle),
never by diffing the whole engine, so two suites, or a user's other
containers, on one engine never fail each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from bottle_api.backend import Resource

from ...live.engine import environment_error
from ...live.harness import LiveHarness, environment_errors
from ...markers import clause
from ...teardown import created_names, problems
from .support import _call_hook

ENGINE_KINDS = ("container", "network", "volume")
PATH_KINDS = ("directory", "file")


class LiveTeardown:
    """LIVE-TEARDOWN."""

    @staticmethod
    def _sentinels(harness: LiveHarness, bottle_name: str, image: str) -> list[str]:
        """A container and a network that look like the bottle's own (same
        name prefix and label key) but were made by us: teardown must spare them."""
        eng, res = harness.engine, harness.res
        ident = f"bottle-{bottle_name}-sentinel"
        with environment_errors("creating the teardown sentinels", setup=True):
            net = res.network(f"{ident}-agent")
            eng.run("network", "create", "--internal", "--label", res.label,
                    "--label", f"bottle-ref.bottle={ident}", net)
            ctr = f"{ident}-agent"
            res.container(ctr)  # registered before create, so a failed create cannot leak it
            eng.run("create", "--name", ctr, "--label", res.label, "--label",
                    f"bottle-ref.bottle={ident}", "--network", net, "--entrypoint", "true", image)
            return [o.id for o in eng.snapshot().objects if o.name in (net, ctr)]

    @staticmethod
    def _exists(harness: LiveHarness, r: Resource) -> bool | None:
        """Whether ``r`` is still there; None when the harness cannot tell."""
        if r.kind in ENGINE_KINDS:
            return harness.engine.exists(r.kind, r.name)
        if r.kind in PATH_KINDS:
            return Path(r.name).exists()
        return None

    @staticmethod
    def _staging(harness: LiveHarness):
        """Before the launch (so a failed launch's own cleanup meets them too)."""
        return lambda plan: LiveTeardown._sentinels(harness, plan.bottle,
                                                    harness.upstream_image(plan))

    @clause("LIVE-TEARDOWN")
    @pytest.mark.parametrize("how", ["close", "failed-launch"])
    def test_teardown_leaves_nothing(self, how, live_harness, probe_log, request):
        harness, eng = live_harness, live_harness.engine
        key = "teardown" if how == "close" else "broken"
        run = harness.traced(key, self._staging(harness))  # launched ahead when selected
        plan, recorder, sentinel_ids = run.plan, run.recorder, run.staged
        assert len(sentinel_ids) == 2, "could not create the sentinel container and network"
        listed: list[Resource] = []
        if how == "close":
            if run.error is not None:
                with environment_errors("launching the teardown bottle"):
                    raise run.error
            bottle = run.bottle
            listed = list(_call_hook(bottle.resources, "Bottle.resources()"))
            assert listed, "Bottle.resources() lists nothing for a running bottle"
            absent = [str(r) for r in listed if self._exists(harness, r) is False]
            assert not absent, f"Bottle.resources() lists what does not exist: {absent}"
            assert Path(plan.state_dir).is_dir(), f"state dir {plan.state_dir} absent while running"
            launch_argvs = list(recorder.argvs)
            bottle.close()
            close_argvs = recorder.argvs[len(launch_argvs):]
            request.node.user_properties.append(("live_close_commands", str(len(close_argvs))))
            bad = problems(close_argvs, created_names(launch_argvs)
                           | {r for r in listed if r.kind in ENGINE_KINDS})
            assert not bad, "close() reaches beyond what its launch created: " + "; ".join(
                map(str, bad))
        else:
            assert run.error is not None, "the launch with a broken agent image succeeded"
            with environment_errors("launching the broken bottle"):
                if environment_error(str(run.error)):
                    raise run.error
            request.node.user_properties.append(("live_failed_launch", str(run.error)[:300]))
            made = [a for a in recorder.argvs if any(plan.bottle in x for x in a)
                    and {"create", "run", "start"} & set(a)]
            assert made, (f"the launch failed before creating anything, so this proves "
                          f"nothing about cleanup after a failure midway: {run.error}")
            listed = [Resource(r.kind, r.name) for r in created_names(recorder.argvs)]
        left = [str(r) for r in listed if self._exists(harness, r)]
        unknown = sorted({r.kind for r in listed if self._exists(harness, r) is None})
        if unknown:
            request.node.user_properties.append(("live_teardown_unchecked", ", ".join(unknown)))
        # Objects named after this bottle (unique per run): a leak not listed.
        names = {r.name for r in listed}
        left += [str(o) for o in eng.snapshot().mentioning(plan.bottle)
                 if o.id not in sentinel_ids and o.name not in names]
        assert not left, f"left behind after {how}: {left}"
        assert not Path(plan.state_dir).exists(), f"state dir {plan.state_dir} left behind"
        gone = eng.snapshot().missing(sentinel_ids)
        assert not gone, f"teardown removed resources it did not create (sentinels {gone})"
