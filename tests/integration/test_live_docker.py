"""The whole contract against the reference docker backend, live tier included,
plus checks of the docker topology itself (BRIEF "Docker backend topology").

The infra checks reuse the class's shared live bottles (``live_harness``),
so they cost no extra launch.
"""

from __future__ import annotations

import json

import pytest

from bottle_api.conventions import GUEST_CAPS
from bottle_ref.backends.docker import LABEL_KEY, DockerBackend
from conformance.base import BackendConformance
from conformance.live.harness import GIT_UPSTREAM


def _inspect(harness, *names: str) -> list[dict]:
    out = harness.engine.run("inspect", *names).stdout
    return json.loads(out)


def _networks(harness, container: str) -> set[str]:
    return set(harness.engine.container_ips(container))


class TestDockerConformance(BackendConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return DockerBackend()

    # -- infra checks (not clauses: facts of this backend's topology) ----------
    @pytest.mark.parametrize("scenario", ["routed", "unrouted"])
    def test_topology_networks_and_aliases(self, live_harness, scenario):
        lb = live_harness.bottle(scenario)
        ident = lb.bottle.ident
        nets = {role: f"{ident}-{role}" for role in ("agent", "bundle", "out")}
        info = {n["Name"]: n for n in json.loads(
            live_harness.engine.run("network", "inspect", *nets.values()).stdout)}
        assert info[nets["agent"]]["Internal"] and info[nets["bundle"]]["Internal"]
        assert not info[nets["out"]]["Internal"], "only the out network may route out"
        for n in info.values():
            assert n["Labels"].get(LABEL_KEY) == ident, f"{n['Name']} is not labelled {ident}"
        assert _networks(live_harness, f"{ident}-agent") == {nets["agent"]}, (
            "the agent container must sit on the agent network alone")
        pipelock = {nets["bundle"], nets["out"]} | (set() if lb.plan.routed else {nets["agent"]})
        egress = {nets["bundle"]} | ({nets["agent"]} if lb.plan.routed else set())
        assert _networks(live_harness, f"{ident}-pipelock") == pipelock
        assert _networks(live_harness, f"{ident}-egress") == egress
        # the outbound network now also holds the test upstream, and only ours
        assert lb.bottle.outbound_network() == nets["out"]

    @pytest.mark.parametrize("scenario", ["routed"])
    def test_no_port_published_and_every_container_labelled(self, live_harness, scenario):
        lb = live_harness.bottle(scenario)
        names = lb.bottle.containers
        assert set(names) >= {f"{lb.bottle.ident}-{r}" for r in
                              ("pipelock", "egress", "supervise", "agent")}
        for c in _inspect(live_harness, *names):
            assert not c["HostConfig"].get("PortBindings"), f"{c['Name']} publishes ports"
            assert not c["HostConfig"].get("PublishAllPorts"), f"{c['Name']} publishes all ports"
            assert c["Config"]["Labels"].get(LABEL_KEY) == lb.bottle.ident
            if c["Name"].endswith("-routes"):  # the route helper: ran once, succeeded
                assert c["State"]["ExitCode"] == 0 and not c["State"]["Running"], c["State"]
                assert c["HostConfig"]["NetworkMode"] == f"container:{lb.bottle.agent}" or \
                    c["HostConfig"]["NetworkMode"].startswith("container:")
                continue
            assert c["State"]["Running"], f"{c['Name']} is not running"
            if c["Name"].lstrip("/") == lb.bottle.agent:  # issue 16: hardened
                host = c["HostConfig"]
                assert host.get("CapDrop") == ["ALL"], host.get("CapDrop")
                added = sorted(c.removeprefix("CAP_") for c in host.get("CapAdd") or ())
                assert added == sorted(GUEST_CAPS), host.get("CapAdd")
                assert "no-new-privileges" in (host.get("SecurityOpt") or ()), host
                assert host.get("Memory") and host.get("PidsLimit") and host.get("NanoCpus"), host
                continue
            assert not c["HostConfig"].get("CapAdd"), f"{c['Name']} has added capabilities"

    @pytest.mark.parametrize("scenario", ["routed"])
    def test_token_only_in_egress(self, live_harness, scenario):
        """The real token is in egress's environment and nowhere else the
        engine shows (other containers' env, any argv)."""
        lb = live_harness.bottle(scenario)
        token = live_harness.token
        holders = []
        for c in _inspect(live_harness, *lb.bottle.containers):
            blob = json.dumps({"env": c["Config"]["Env"], "cmd": c["Config"]["Cmd"],
                               "args": c["Args"], "entry": c["Config"]["Entrypoint"]})
            if token in blob:
                holders.append(c["Name"].lstrip("/"))
        assert holders == [f"{lb.bottle.ident}-egress"], f"token found in: {holders}"

    @pytest.mark.parametrize("scenario", ["routed", "unrouted"])
    def test_internal_endpoints_name_the_other_daemon(self, live_harness, scenario):
        lb = live_harness.bottle(scenario)
        internal = lb.bottle.internal_endpoints()
        daemon = "pipelock" if lb.plan.routed else "egress"
        assert list(internal) == [daemon]
        ips = set(live_harness.engine.container_ips(f"{lb.bottle.ident}-{daemon}").values())
        port = 8888 if daemon == "pipelock" else 9099
        assert set(internal[daemon]) == {f"{ip}:{port}" for ip in ips}

    @pytest.mark.parametrize("scenario", ["routed"])
    def test_git_gate_serves_the_declared_upstream(self, live_harness, scenario):
        """The guest's ~/.gitconfig sends the upstream URL to git-gate, which
        serves a bare repo for it: clone, commit, push, and the push landed."""
        lb = live_harness.bottle(scenario)
        url = GIT_UPSTREAM.url
        script = (
            "set -e; cd /tmp; rm -rf gate-probe; "
            f"git clone -q {url} gate-probe 2>&1; cd gate-probe; "
            "git commit -q --allow-empty -m live-probe; "
            "git push -q origin HEAD:refs/heads/live-probe 2>&1; "
            f"git ls-remote {url} refs/heads/live-probe")
        r = lb.bottle.exec(["sh", "-c", script], timeout=60)
        assert r.ok and "refs/heads/live-probe" in r.stdout, (
            f"git through git-gate failed (exit {r.returncode}): "
            f"{(r.stdout + r.stderr).strip()[-600:]}")
        gitcfg = lb.bottle.exec(["git", "config", "--global", "--get-regexp", "insteadof"])
        assert f"git://git-gate:9418/{GIT_UPSTREAM.name}.git" in gitcfg.stdout
