"""The SSRF-exemption hook (issue 15, second pass): the reference renders
pipelock's ``trusted_domains`` only from `BOTTLE_PIPELOCK_TRUSTED_HOSTS`,
exact names only, and never ``ssrf.ip_allowlist`` or ``internal``."""

from __future__ import annotations

import pytest
import yaml

from bottle_api.conventions import PIPELOCK_TRUSTED_HOSTS_ENV
from bottle_api.host import HostContext
from bottle_api.spec import BottleSpec
from bottle_ref import planning
from bottle_ref.backends.docker import DockerBackend
from conformance.oracles import pipelock as oracle


def _config(env) -> dict:
    from pathlib import Path

    host = HostContext(env=env, home=Path("/nonexistent/home"), cwd=Path("/nonexistent"),
                       state_root=Path("/nonexistent/state"))
    plan = DockerBackend().prepare(BottleSpec(name="b", allow=("plain.example.test",)), host)
    return yaml.safe_load(plan.pipelock.config_yaml)


def test_no_exemption_unless_asked():
    data = _config({})
    assert "trusted_domains" not in data and "ssrf" not in data and "internal" not in data
    assert oracle.ssrf_exemption_problems(data, set()) == []
    # and so the default guard refuses a private address (oracle: pipelock's rules)
    assert oracle.ssrf_refuses(data, "plain.example.test", ["172.18.0.5"])


def test_asked_names_are_rendered_canonical_and_only_they():
    data = _config({PIPELOCK_TRUSTED_HOSTS_ENV: " Plain.Example.TEST. , up.example.test,"})
    assert data["trusted_domains"] == ["plain.example.test", "up.example.test"]
    assert "ssrf" not in data and "internal" not in data
    asked = oracle.asked_trusted_hosts({PIPELOCK_TRUSTED_HOSTS_ENV: "Plain.Example.TEST.,up.example.test"})
    assert oracle.ssrf_exemption_problems(data, asked) == []
    assert oracle.ssrf_exemption_problems(data, {"up.example.test"})  # one more than asked fails
    assert not oracle.ssrf_refuses(data, "plain.example.test", ["172.18.0.5"])
    assert oracle.ssrf_refuses(data, "other.example.test", ["172.18.0.5"])


@pytest.mark.parametrize("value", ["*.example.test", "10.0.0.1", "a b", "host:443", "[::1]"])
def test_bad_trusted_hosts_are_one_clear_line(value):
    with pytest.raises(ValueError) as exc:
        planning.trusted_hosts({PIPELOCK_TRUSTED_HOSTS_ENV: value})
    text = str(exc.value)
    assert text.startswith(PIPELOCK_TRUSTED_HOSTS_ENV) and "\n" not in text
