"""Deliberately broken docker backends, one bug each, for the live meta-tests.

Not collected on its own (no ``test_`` prefix): `test_live_meta` runs it in a
nested pytest and checks that the live clause aimed at each bug FAILS.
Each class has its own backend ``name`` so the nested run writes one report
per broken backend.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import yaml

from bottle_ref.backends.docker import DockerBackend, DockerBottle, docker_exec_argv
from conformance.tiers.live import LiveTier


class BypassBackend(DockerBackend):
    """The agent is also wired to the outbound network: a way around the hop."""

    name: ClassVar[str] = "broken-bypass"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        runner.run(["docker", "network", "connect", bottle.outbound_network(), bottle.agent])
        return bottle


class WrongTokenBackend(DockerBackend):
    """egress is handed some other token than the host's."""

    name: ClassVar[str] = "broken-token"

    def launch(self, plan, runner, **kw):
        wrong = {k: "bottle-live-" + "0" * 32 for k in plan.secrets}
        return super().launch(dataclasses.replace(plan, secrets=wrong), runner, **kw)


class NoTrustBackend(DockerBackend):
    """The guest's trust store loses the bottle CA after provisioning."""

    name: ClassVar[str] = "broken-trust"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.exec(["sh", "-c", "rm -f /usr/local/share/ca-certificates/*.crt && "
                     "update-ca-certificates --fresh >/dev/null"], user="root", check=True)
        return bottle


class RootBottle(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        return docker_exec_argv(self.agent, [self.plan.agent, *argv], user="root", tty=tty,
                                interactive=True)


class RootAgentBackend(DockerBackend):
    """The agent runs as root."""

    name: ClassVar[str] = "broken-root"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.__class__ = RootBottle
        return bottle


class LeakyBottle(DockerBottle):
    def close(self):
        self.networks = []  # "forgets" its networks
        super().close()


class LeakyBackend(DockerBackend):
    """Teardown leaves the networks behind."""

    name: ClassVar[str] = "broken-leak"

    def launch(self, plan, runner, **kw):
        bottle = super().launch(plan, runner, **kw)
        bottle.__class__ = LeakyBottle
        return bottle


class BalancedPipelockBackend(DockerBackend):
    """Issue 9: pipelock.yaml renders ``mode: balanced``. The stand-in, like
    real pipelock (internal/scanner/scanner.go New: the allowlist is
    enforced only in strict mode), then lets a non-allowlisted host through,
    so LIVE-PIPELOCK must fail exactly as the bottle would leak."""

    name: ClassVar[str] = "broken-balanced"

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        data = yaml.safe_load(plan.pipelock.config_yaml)
        data["mode"] = "balanced"
        text = yaml.safe_dump(data, sort_keys=False)
        return dataclasses.replace(plan, pipelock=dataclasses.replace(plan.pipelock,
                                                                      config_yaml=text))


def _case(backend_cls):
    class Case(LiveTier):
        @pytest.fixture(scope="class")
        @classmethod
        def backend(cls):
            return backend_cls()

    Case.__name__ = Case.__qualname__ = f"Test{backend_cls.__name__}"
    return Case


TestBypass = _case(BypassBackend)
TestWrongToken = _case(WrongTokenBackend)
TestNoTrust = _case(NoTrustBackend)
TestRootAgent = _case(RootAgentBackend)
TestLeaky = _case(LeakyBackend)
TestBalancedPipelock = _case(BalancedPipelockBackend)
