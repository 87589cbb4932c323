"""The live tier's resolver canary (LIVE-DNS): a name server of our own.

A stdlib DNS responder in a harness container on the bottle's outbound
network, under the network alias `CANARY_HOST`. It answers every A query
under `ZONE` with `CANARY_ANSWER` (a TEST-NET-2 address nobody dials) and
logs each name it is asked, so a lookup that leaves the guest by any path
that ends here is seen by name. It never forwards anything anywhere.

NETWORK RULE: nothing here dials out; the canary only answers. A backend
whose resolver forwards the guest's lookups somewhere ends at this canary
only if it forwards to it (the live meta-tests' broken backend does); the
guest-side probe (`exposure.dns`) also asks every resolver the guest can
reach directly and fails any answer for the zone.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass


from .engine import Engine
from .resources import Resources

CANARY_HOST = "resolver.bottle-live.test"
ZONE = "dns-canary.bottle-live.test"
CANARY_ANSWER = "198.51.100.53"  # RFC 5737 TEST-NET-2: never dialled
READY_MARK = "dns-canary: ready"
LOG_MARK = "dns-canary: q "

# UDP and TCP on port 53; A records for ZONE, NXDOMAIN for anything else.
CANARY_SCRIPT = r"""
import socket, struct, sys, threading
zone, answer = sys.argv[1].lower().encode(), socket.inet_aton(sys.argv[2])
def name_of(q):
    labels, i = [], 12
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]]); i += 1 + q[i]
    return b".".join(labels).lower(), i + 5
def reply(q, proto):
    if len(q) < 17:
        return None
    name, end = name_of(q)
    qtype = struct.unpack(">H", q[end - 4:end - 2])[0] if end <= len(q) else 0
    print("dns-canary: q %s %s %d" % (proto, name.decode("ascii", "replace"), qtype), flush=True)
    mine = name == zone or name.endswith(b"." + zone)
    flags = 0x8400 | (0 if mine else 3)
    an = 1 if mine and qtype == 1 else 0
    out = q[:2] + struct.pack(">HHHHH", flags, 1, an, 0, 0) + q[12:end]
    if an:
        out += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + answer
    return out
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53))
    while True:
        q, peer = s.recvfrom(4096)
        r = reply(q, "udp")
        if r:
            s.sendto(r, peer)
def tcp_one(c):
    try:
        c.settimeout(5)
        n = struct.unpack(">H", c.recv(2))[0]
        q = b""
        while len(q) < n:
            chunk = c.recv(n - len(q))
            if not chunk:
                return
            q += chunk
        r = reply(q, "tcp")
        if r:
            c.sendall(struct.pack(">H", len(r)) + r)
    except (OSError, struct.error):
        pass
    finally:
        c.close()
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 53)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_one, args=(c,), daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
print("dns-canary: ready", flush=True)
threading.Event().wait()
"""

# Run inside the canary's own container: one UDP query to itself (127.0.0.1).
SELF_TEST = r"""
import json, socket, struct, sys
name = sys.argv[1]
q = struct.pack(">HHHHHH", 4242, 0x0100, 1, 0, 0, 0)
for label in name.split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(q, ("127.0.0.1", 53))
r = s.recv(4096)
print(json.dumps({"id": struct.unpack(">H", r[:2])[0], "rcode": r[3] & 15,
                  "answers": struct.unpack(">H", r[6:8])[0], "addr": socket.inet_ntoa(r[-4:])}))
"""


@dataclass
class DnsCanary:
    """A running canary: its container, and what it was asked."""

    engine: Engine
    container: str
    network: str

    def names(self) -> list[str]:
        """Every name the canary was asked, oldest first."""
        out = []
        for line in self.engine.logs(self.container).splitlines():
            if line.startswith(LOG_MARK):
                parts = line[len(LOG_MARK):].split()
                if len(parts) >= 2:
                    out.append(parts[1])
        return out

    def seen(self, label: str) -> list[str]:
        """Names asked that carry ``label`` (one probe's unique label)."""
        return [n for n in self.names() if label in n]

    def self_test(self) -> None:
        """The canary answers a query for its zone (asked from inside its
        own container) and logs it: else a silent canary proves nothing."""
        name = f"self-{secrets.token_hex(4)}.{ZONE}"
        out = self.engine.run("exec", self.container, "python3", "-c", SELF_TEST, name,
                              check=False)
        try:
            got = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise AssertionError(f"control failed: the DNS canary did not answer itself: "
                                 f"{(out.stderr or out.stdout).strip()[-300:]}") from None
        assert got == {"id": 4242, "rcode": 0, "answers": 1, "addr": CANARY_ANSWER}, (
            f"control failed: the DNS canary answered itself {got}")
        assert name in self.names(), "control failed: the DNS canary did not log its own query"


def start_canary(engine: Engine, res: Resources, network: str, image: str, *,
                 timeout: float) -> DnsCanary:
    """The canary on ``network`` under `CANARY_HOST`; removed by ``res``
    (with the harness's other containers, before the bottle's teardown)."""
    name = res.name("dns-canary")
    res.container(name)  # registered first: a failed start must not leak it
    engine.run("run", "-d", "--name", name, "--label", res.label, "--network", network,
               "--network-alias", CANARY_HOST, "--entrypoint", "python3", image,
               "-u", "-c", CANARY_SCRIPT, ZONE, CANARY_ANSWER)
    engine.wait_for_log(name, READY_MARK, what=f"DNS canary {name}", timeout=timeout)
    return DnsCanary(engine, name, network)
