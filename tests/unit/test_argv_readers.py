"""The argv readers podlike (a podman-style backend) needed: podman's
``--network NET:alias=X``, ``--user node:GROUP``, last ``-u`` wins, and
which guest an exec or copy addresses (LAUNCH-READY's same-guest check)."""

from __future__ import annotations

import pytest

from conformance.argv import framing_problem
from conformance.argv.docker import parse_network
from conformance.argv.framing import walk
from conformance.recording import guest_target


@pytest.mark.parametrize("value,tool,name,aliases", [
    ("net1", "docker", "net1", set()),
    ("net1:alias=pipelock", "podman", "net1", {"pipelock"}),
    ("net1:alias=a,alias=b,ip=10.0.0.2", "podman", "net1", {"a", "b"}),
    ("name=net2,alias=egress", "docker", "net2", {"egress"}),
])
def test_network_values(value, tool, name, aliases):
    ref = parse_network(value, tool)
    assert ref.name == name and {v for k, v in ref.options if k == "alias"} == aliases


@pytest.mark.parametrize("argv,user", [
    (["docker", "exec", "-u", "node", "c", "git"], "node"),
    (["podman", "exec", "--user", "node:node", "c", "git"], "node"),
    (["docker", "exec", "--user=node:staff", "c", "git"], "node"),
    (["docker", "exec", "-u", "node", "-u", "root", "c", "git"], "root"),
    (["smolvm", "machine", "exec", "--", "runuser", "-u", "node", "--", "git"], "node"),
    (["docker", "exec", "c", "git"], None),
])
def test_last_user_switch_wins(argv, user):
    assert walk(argv, argv.index("git")).user == user


def test_node_framing_takes_the_last_switch():
    framed = ["docker", "exec", "-u", "node", "-e", "HOME=/home/node", "-u", "root", "c", "git"]
    assert "runs as root" in framing_problem(framed, 9)
    podman = ["podman", "exec", "--user", "node:node", "-e", "HOME=/home/node", "c", "git"]
    assert framing_problem(podman, 7) is None


@pytest.mark.parametrize("argv,target", [
    (["docker", "exec", "-u", "root", "-e", "HOME=/root", "b-agent", "sh", "-c", "x"], "b-agent"),
    (["podman", "exec", "--user", "node:node", "p-agent", "true"], "p-agent"),
    (["docker", "cp", "/tmp/ca.pem", "b-agent:/usr/local/share/ca.crt"], "b-agent"),
    (["smolvm", "machine", "exec", "--name", "m1", "--", "true"], "m1"),
    (["smolvm", "machine", "cp", "/tmp/x", "m1:/home/node/x"], "m1"),
    (["firecracker-ctl", "exec", "vm1", "true"], None),
    (["docker", "run", "img"], None),
])
def test_guest_target(argv, target):
    assert guest_target(argv) == target
