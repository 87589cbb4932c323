"""Engine-free tests of the live tier's pieces: the guest scan script (run
here, on the host), the wildcard canary, the mount/route readers, the
teardown oracle and the harness's environment-vs-backend verdicts."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from bottle_api.runner import CommandError, Completed
from conformance.live import probes
from conformance.live.canary import WILDCARD, Canary, host_addresses
from conformance.live.engine import environment_error
from conformance.live.harness import (
    SCENARIOS,
    TOKEN_BODY,
    TOKEN_PREFIX,
    LiveBottle,
    environment_errors,
    new_token,
)
from conformance.outcomes import ERROR_PREFIX
from conformance.recording import Resource
from conformance.teardown import created_names, is_destructive, problems


def _scan(*roots, changed_within=0.0) -> dict:
    out = subprocess.run([sys.executable, "-c", probes._SCAN_SCRIPT, TOKEN_PREFIX, TOKEN_BODY,
                          "[]", str(changed_within), *map(str, roots)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _h(v: str) -> str:
    return hashlib.sha256(v.encode()).hexdigest()


@pytest.mark.parametrize("pad", [0, 1, 2])
@pytest.mark.parametrize("enc", ["raw", "hex", "hexlower", "base64", "base64url", "percent"])
def test_scan_finds_each_encoding_at_each_alignment(tmp_path, enc, pad):
    token = new_token()
    b = b"\x00" * pad + token.encode() + b"tail" * pad
    text = {"raw": token, "hex": token.encode().hex().upper(), "hexlower": token.encode().hex(),
            "base64": base64.b64encode(b).decode(),
            "base64url": base64.urlsafe_b64encode(b).decode().rstrip("="),
            "percent": "".join(f"%{c:02x}" for c in token.encode())}[enc]
    (tmp_path / "f").write_text("x" * pad + " k=" + text + "\n")
    found = _scan(tmp_path)["found"]
    assert _h(token) in found, f"{enc} (pad {pad}) not found"
    assert list(found[_h(token)]) == [enc.removesuffix("lower").removesuffix("url")]


def test_scan_reads_across_chunks_and_lists_sockets(tmp_path):
    token = new_token()
    big = tmp_path / "big.bin"
    with big.open("wb") as f:  # the token straddles the 4 MiB chunk boundary
        f.write(b"\0" * ((4 << 20) - 20) + token.encode() + b"\0" * 100)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "docker.sock"))
    s.close()
    data = _scan(tmp_path)
    assert _h(token) in data["found"]
    assert data["sockets"] == [str(tmp_path / "docker.sock")]
    assert probes.ENGINE_SOCKET.search(data["sockets"][0])


def test_scan_skips_only_files_older_than_the_value(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    t_old, t_new = new_token(), new_token()
    old.write_text(t_old)
    new.write_text(t_new)
    past = time.time() - 3600
    os.utime(old, (past, past))  # mtime only: ctime stays now, so it is still read
    data = _scan(tmp_path, changed_within=60)
    assert {_h(t_old), _h(t_new)} <= set(data["found"]), "ctime is what counts, not mtime"
    assert data["older"] == 0
    data = _scan(tmp_path, changed_within=1e-6)  # everything is "older" than a microsecond
    assert data["files"] == 0 and data["older"] == 2


def test_wildcard_canary_counts_every_host_address():
    addrs = host_addresses()
    assert "127.0.0.1" in addrs
    with Canary(WILDCARD, lifetime=30) as c:
        c.self_test(via=addrs)
        assert c.hits == len(addrs)
        with socket.create_connection(("127.0.0.1", c.port), timeout=5):
            pass
        deadline = time.monotonic() + 5
        while c.hits <= len(addrs) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.hits == len(addrs) + 1


def test_loopback_canary_refuses_other_addresses():
    others = [a for a in host_addresses() if ":" not in a and not a.startswith("127.")]
    if not others:
        pytest.skip("this host has no non-loopback IPv4 address")
    with Canary(lifetime=30) as c:
        with pytest.raises(RuntimeError, match="not reachable"):
            c.self_test(via=(others[0],), timeout=2)


def test_host_mounts():
    m = probes.Mount
    mounts = [m("/", "/", "overlay", "overlay"),
              m("/var/lib/docker/containers/x/hosts", "/etc/hosts", "ext4", "/dev/vda"),
              m("/docker.sock", "/var/run/docker.sock", "tmpfs", "tmpfs"),
              m("/null", "/proc/keys", "tmpfs", "tmpfs"),
              m("/", "/dev/shm", "tmpfs", "shm"),
              m("/", "/scratch", "tmpfs", "tmpfs"),
              m("/home/u/work", "/work", "ext4", "/dev/vda")]
    assert [x.point for x in probes.host_mounts(mounts)] == ["/var/run/docker.sock", "/work"]
    assert [x.point for x in probes.host_mounts(mounts, ["/work"])] == ["/var/run/docker.sock"]


def test_gateways_from_routes():
    r = probes.Route
    net = probes.GuestNet((r(4, "192.168.0.0", 20, "", "eth0"), r(4, "0.0.0.0", 0, "10.0.0.1", "eth1"),
                           r(6, "fd00::", 64, "", "eth0")), ())
    assert probes.gateways(net) == ["192.168.0.1", "10.0.0.1"]


class _LocalBottle:
    """Runs the probe scripts on this host, as if it were the guest."""

    def exec(self, cmd, *, user="node", env=None, timeout=None, check=False):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return Completed(tuple(cmd), p.returncode, p.stdout, p.stderr)


def test_guest_net_reads_this_hosts_tables():
    if not os.path.exists("/proc/net/route"):
        pytest.skip("no /proc/net/route here")
    net = probes.guest_net(_LocalBottle(), log=probes.ProbeLog())
    assert any(m.point == "/" for m in net.mounts)
    assert all(0 <= r.prefix <= (32 if r.family == 4 else 128) for r in net.routes)


def _pool_error() -> CommandError:
    return CommandError(Completed(("docker", "network", "create", "x"), 1, "",
                                  "Error response from daemon: could not find an available, "
                                  "non-overlapping IPv4 address pool among the defaults"))


def test_engine_errors_of_the_environment_are_error_not_failed():
    assert environment_error(str(_pool_error()))
    with pytest.raises(pytest.skip.Exception, match=ERROR_PREFIX):
        with environment_errors("launching"):
            raise _pool_error()
    backend_fault = CommandError(Completed(("docker", "run"), 1, "", "network foo not found"))
    with pytest.raises(CommandError):  # the backend's own failure stays a failure
        with environment_errors("launching"):
            raise backend_fault
    with pytest.raises(pytest.skip.Exception, match=ERROR_PREFIX):  # the harness's own set-up
        with environment_errors("sentinels", setup=True):
            raise backend_fault


def test_dead_first_hop_fails_fast():
    lb = LiveBottle(harness=None, scenario=SCENARIOS["unrouted"], plan=None, bottle=None,
                    launch_seconds=0.0, sites=object(), dead="timed out after 120s")
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="never answered earlier"):
        lb.wait_ready(probes.ProbeLog())
    assert time.monotonic() - t0 < 1


def test_teardown_oracle():
    made = created_names([["docker", "create", "--name", "a", "img"],
                          ["docker", "network", "create", "--internal", "-o", "k=v", "n"],
                          ["smolvm", "machine", "create", "--name", "m", "--", "sleep"]])
    assert made == {Resource("container", "a"), Resource("network", "n"),
                    Resource("machine", "m")}
    ok = [["docker", "rm", "-f", "a"], ["docker", "network", "rm", "n"],
          ["smolvm", "machine", "stop", "--name", "m"], ["docker", "inspect", "a"]]
    assert problems(ok, made) == []
    for bad in (["docker", "rm", "-f", "b"], ["docker", "network", "prune", "-f"],
                ["docker", "system", "prune"], ["docker", "ps", "-aq", "--filter", "label=k"],
                ["sh", "-c", "docker rm -f $(docker ps -aq)"], ["docker", "stop", "other"]):
        assert problems([bad], made), bad
    assert not problems([["docker", "ps", "-aq", "--filter", "label=k=a"]], made)
    assert is_destructive(["docker", "container", "rm", "a"])
    assert not is_destructive(["docker", "inspect", "a"])


# -- issue 16 ----------------------------------------------------------------------------


def test_wildcard_canary_counts_udp_by_marker():
    addrs = tuple(a for a in host_addresses() if a in ("127.0.0.1", "::1")) or ("127.0.0.1",)
    with Canary(WILDCARD, lifetime=30, udp=True) as c:
        c.udp_self_test(via=addrs)
        assert c.udp_hits == len(addrs) and c.hits == 0  # datagrams are not connections
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"xx bottle-live-raw-abc xx", ("127.0.0.1", c.port))
        c.udp_self_test(via=("127.0.0.1",))  # a barrier: the datagram before it is counted
        assert [p[0] for p in c.udp_carrying(b"bottle-live-raw-abc")] == ["127.0.0.1"]
        assert c.udp_carrying(b"bottle-live-raw-other") == []


def test_cap_names_reads_docker_default_and_hardened_masks():
    assert probes.cap_names(0xA80425FB) == frozenset({
        "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"})
    assert probes.cap_names(0b1011) == {"CHOWN", "DAC_OVERRIDE", "FOWNER"}
    assert probes.cap_names(1 << 45) == {"CAP_45"}


def test_privileges_script_reads_this_process(tmp_path):
    """The LIVE-PRIVS script, run here: it reports this process's own uid and
    capability masks, and None for a cgroup limit of "max"."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-I", "-c", probes._PRIVS_SCRIPT],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert data["uid"] == os.getuid() and data["CapBnd"] and data["NoNewPrivs"] in ("0", "1")
    assert probes._limit("max") is None and probes._limit("9223372036854771712") is None
    assert probes._limit("4294967296") == 4 << 30


def test_planted_json_steps_aside_for_the_real_one(tmp_path):
    """The module LIVE-ROOT-EXEC-CLEAN plants marks its import and then
    behaves as the real json (node's own python keeps working)."""
    import subprocess
    import sys
    from pathlib import Path

    marker = f"bottle-live-plant-unit{os.getpid()}"
    (tmp_path / "json.py").write_text(probes._PLANT_BODY % {"marker": marker})
    try:
        r = subprocess.run([sys.executable, "-c", "import json; print(json.dumps({'a': 1}))"],
                           cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == '{"a": 1}', r.stderr
        mark = Path(f"/tmp/{marker}-json-{os.getuid()}")
        assert mark.exists()
        mark.unlink()
        r = subprocess.run([sys.executable, "-I", "-c", "import json"], cwd=tmp_path)
        assert r.returncode == 0 and not mark.exists(), "python3 -I imported from its cwd"
    finally:
        for p in Path("/tmp").glob(f"{marker}-*"):
            p.unlink()
