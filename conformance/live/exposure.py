"""Guest-side probes of what the guest is exposed to (issue 20): every
address it can name, every port open there, every resolver it can ask, and
every PEM private key in its filesystem.

Like `probes`, each runs INSIDE the guest through `Bottle.exec`, bounded by
its own in-guest timeouts and by the exec's. NETWORK RULE: addresses are
never guessed or range-scanned. The surface probe dials only addresses the
guest itself names (its routes' gateways, its ARP neighbours, its
resolv.conf and hosts entries, the hosts of its declared endpoints) and
only when they sit on a subnet the guest reaches on-link, or are the
declared endpoints' own loopback addresses; an address reachable only
through a gateway is reported, never dialled. The DNS probe asks only
such addresses, and asks nothing at all while the guest has a route off
its own subnets (read from its route table, never tried). Other guests'
own addresses (`sweep`) are the project's own containers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bottle_api.backend import Bottle

from .probes import ProbeLog, _exec, _json_out

# The whole TCP port space of each address, swept with non-blocking
# connects in batches (each batch bounded by BATCH_S): a closed port on a
# bridge answers RST at once, an address with no route fails at once.
SWEEP_BATCH = 2048
SWEEP_BATCH_S = 1.5
SWEEP_PARALLEL = 2  # addresses swept at once (capped by the guest's CPUs)
SURFACE_BOUND_S = 300.0  # the whole surface probe, in the guest

# Ports still tried on a dark address (one whose first batch drew no answer
# at all): the bundle's own and the usual service and admin ports.
WELL_KNOWN_PORTS = (22, 53, 80, 443, 2375, 2376, 3000, 5000, 6443, 8000, 8080, 8443, 8888,
                    9090, 9091, 9099, 9100, 9418, 10250)

# Shared by the scripts below: the guest's routes, own addresses,
# neighbours, resolvers and declared endpoints, read from files (never
# from a tool the image may lack), and a port sweeper.
_COMMON = r"""
import errno, ipaddress, json, os, re, resource, select, socket, sys, time
from urllib.parse import urlsplit
WELL_KNOWN = set(__WELL_KNOWN__)
def v4(h):
    return socket.inet_ntoa(bytes.fromhex(h)[::-1])
def routes():
    out = []
    try:
        for line in open("/proc/net/route").read().splitlines()[1:]:
            f = line.split()
            if len(f) >= 8 and not int(f[3], 16) & 0x200:
                gw = v4(f[2]) if int(f[3], 16) & 2 else ""
                out.append({"net": str(ipaddress.IPv4Network(v4(f[1]) + "/" + v4(f[7]), strict=False)),
                            "gateway": gw, "iface": f[0]})
    except OSError:
        pass
    try:
        for line in open("/proc/net/ipv6_route").read().splitlines():
            f = line.split()
            if len(f) < 10 or int(f[8], 16) & 0x200 or f[9] == "lo":
                continue
            dst = ipaddress.IPv6Address(bytes.fromhex(f[0]))
            plen = int(f[1], 16)
            if dst.is_multicast or plen == 128 or (dst.is_link_local and plen >= 64):
                continue
            gw = str(ipaddress.IPv6Address(bytes.fromhex(f[4]))) if int(f[8], 16) & 2 else ""
            out.append({"net": "%s/%d" % (dst, plen), "gateway": gw, "iface": f[9]})
    except OSError:
        pass
    return out
def own():
    mine, last = set(), None
    try:
        for line in open("/proc/net/fib_trie").read().splitlines():
            m = re.search(r"\|-- ([0-9.]+)$", line)
            if m:
                last = m.group(1)
            elif "/32 host LOCAL" in line and last:
                mine.add(last)
    except OSError:
        pass
    try:
        for line in open("/proc/net/if_inet6").read().splitlines():
            mine.add(str(ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))))
    except OSError:
        pass
    return mine
def neighbours():
    out = set()
    try:
        for line in open("/proc/net/arp").read().splitlines()[1:]:
            f = line.split()
            if len(f) >= 4 and int(f[2], 16) & 2:
                out.add(f[0])
    except OSError:
        pass
    return out
def nameservers():
    out = []
    try:
        for line in open("/etc/resolv.conf"):
            f = line.split()
            if len(f) >= 2 and f[0] == "nameserver":
                out.append(f[1].split("%")[0])
    except OSError:
        pass
    return out
def hosts_entries():
    out = set()
    try:
        for line in open("/etc/hosts"):
            f = line.split("#")[0].split()
            if f:
                out.add(f[0].split("%")[0])
    except OSError:
        pass
    return out
def declared():
    # (host, port, where) of every endpoint the guest is told to use
    out = []
    def url(u, where, default=None):
        try:
            s = urlsplit(u)
            port = s.port or default or {"http": 80, "https": 443, "git": 9418}.get(s.scheme)
        except ValueError:
            return
        if s.hostname and port:
            out.append((s.hostname, int(port), where))
    for k in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        if os.environ.get(k):
            url(os.environ[k], k, 80)
    home = os.environ.get("HOME", "/home/node")
    try:
        for m in re.finditer(r'\[url\s+"([^"]+)"\]', open(os.path.join(home, ".gitconfig")).read()):
            url(m.group(1), "git insteadOf")
    except OSError:
        pass
    try:
        data = json.load(open(os.path.join(home, ".claude.json")))
        for name, srv in (data.get("mcpServers") or {}).items():
            if isinstance(srv, dict) and srv.get("url"):
                url(srv["url"], "claude mcp " + name)
    except (OSError, ValueError):
        pass
    try:
        for m in re.finditer(r'url\s*=\s*"([^"]+)"', open(os.path.join(home, ".codex/config.toml")).read()):
            url(m.group(1), "codex mcp")
    except OSError:
        pass
    return out
def resolve(host):
    try:
        return sorted({ai[4][0].split("%")[0] for ai in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})
    except OSError:
        return []
def onlink(addr, rs):
    a = ipaddress.ip_address(addr)
    for r in rs:
        n = ipaddress.ip_network(r["net"])
        if not r["gateway"] and n.prefixlen > 0 and a.version == n.version and a in n:
            return True
    return False
def sweep(addr, ports, batch, batch_s, retry=True):
    # -> (open ports, refused count, other errors {errno name: count},
    #     silent count, dark). epoll tells the outcome by its flags: OUT
    # alone is a connection, ERR/HUP a refusal or an error (SO_ERROR then).
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < batch + 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, batch + 64), hard))
            batch = min(batch, min(hard, batch + 64) - 64)
    except (ValueError, OSError):
        batch = 256
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    opened, refused, silent, other = [], 0, [], {}
    def done(s, p, e):
        nonlocal refused
        if e == 0:
            try:
                if s.getsockname() == s.getpeername():
                    e = errno.ECONNREFUSED  # loopback self-connect: nothing listens
            except OSError:
                pass
        if e == 0:
            opened.append(p)
        elif e == errno.ECONNREFUSED:
            refused += 1
        else:
            n = errno.errorcode.get(e, str(e)); other[n] = other.get(n, 0) + 1
        s.close()
    todo, dark, first = list(ports), False, True
    while todo:
        chunk, todo = todo[:batch], todo[batch:]
        pending, ep = {}, select.epoll()
        for p in chunk:
            s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            e = s.connect_ex((addr, p))
            if e in (errno.EINPROGRESS, errno.EAGAIN):
                pending[s.fileno()] = (s, p); ep.register(s.fileno(), select.EPOLLOUT)
            else:
                done(s, p, e)
        deadline = time.monotonic() + batch_s
        while pending and time.monotonic() < deadline:
            for fd, ev in ep.poll(max(0.001, deadline - time.monotonic())):
                s, p = pending.pop(fd)
                if ev & (select.EPOLLERR | select.EPOLLHUP):
                    e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.ECONNREFUSED
                else:
                    e = 0
                done(s, p, e)
        for s, p in pending.values():
            silent.append(p)
            s.close()
        ep.close()
        if first and todo and len(chunk) == batch and not opened and not refused:
            # A whole first batch with neither a connection nor a reset
            # (dropped, or unreachable): the address is dark. Only the well-known ports left are tried; the rest
            # count as silent.
            dark = True
            silent += [p for p in todo if p not in WELL_KNOWN]
            todo = [p for p in todo if p in WELL_KNOWN]
        first = False
    if silent and retry and not dark and len(silent) <= 256:  # SYNs lost on a busy host
        o, r, oth, silent, _ = sweep(addr, silent, batch, 2 * batch_s, retry=False)
        opened += o
        refused += r
        for k, v in oth.items():
            other[k] = other.get(k, 0) + v
        return sorted(opened), refused, other, silent, dark
    return sorted(opened), refused, other, len(silent), dark
def sweep_all(addrs, ports, batch, batch_s):
    # Addresses swept side by side, one thread each, as many at once as the
    # guest has CPUs (at most SWEEP_PARALLEL): the work is the kernel's
    # (connect, RST; the threads' Python is ~1/10 of it), so on an idle
    # 2-core host two sweeps take little more than one. Each thread gets its
    # share of the descriptor limit, so a batch never meets EMFILE.
    from concurrent.futures import ThreadPoolExecutor
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    workers = max(1, min(len(addrs), cpus, __PARALLEL__))
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = workers * (batch + 64)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
            soft = min(hard, want)
        batch = max(64, min(batch, soft // workers - 64))
    except (ValueError, OSError):
        batch = 256
    def one(a):
        t = time.monotonic()
        o, refused, other, silent, dark = sweep(a, ports, batch, batch_s)
        return {"open": o, "refused": refused, "other": other, "silent": silent,
                "dark": dark, "seconds": round(time.monotonic() - t, 3)}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(addrs, pool.map(one, addrs)))
"""

_COMMON = (_COMMON.replace("__WELL_KNOWN__", repr(WELL_KNOWN_PORTS))
           .replace("__PARALLEL__", str(SWEEP_PARALLEL)))

_SURFACE_SCRIPT = _COMMON + r"""
args = json.loads(sys.argv[1])
t0 = time.monotonic()
rs = routes()
mine = own()
decl = declared()
# Dial each declared endpoint once (a positive control, and it puts the
# endpoint in the neighbour table).
control = []
for host, port, where in decl:
    t = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=args["timeout"]).close()
        ok, err = True, ""
    except OSError as e:
        ok, err = False, type(e).__name__ + ": " + str(e)
    control.append({"host": host, "port": port, "where": where, "ok": ok, "error": err,
                    "addrs": resolve(host), "seconds": round(time.monotonic() - t, 3)})
found = {}  # addr -> how the guest names it
def note(a, how):
    try:
        a = str(ipaddress.ip_address(a))
    except ValueError:
        return
    found.setdefault(a, [])
    if how not in found[a]:
        found[a].append(how)
for c in control:
    for a in c["addrs"]:
        note(a, "endpoint " + c["host"])
for r in rs:
    if r["gateway"]:
        note(r["gateway"], "gateway")
for a in neighbours():
    note(a, "neighbour")
for a in nameservers():
    note(a, "resolv.conf")
for a in hosts_entries():
    note(a, "/etc/hosts")
for a in args.get("extra", []):
    note(a, "named by the harness")
declared_loopback = {a for c in control for a in c["addrs"] if ipaddress.ip_address(a).is_loopback}
targets, skipped = [], {}
for a in sorted(found):
    ip = ipaddress.ip_address(a)
    if a in mine and a not in declared_loopback:
        skipped[a] = "the guest's own address"
    elif ip.is_loopback and a not in declared_loopback:
        skipped[a] = "guest loopback, no endpoint declared there"
    elif ip.is_unspecified or ip.is_multicast:
        skipped[a] = "not an address of a peer"
    elif a in declared_loopback or onlink(a, rs):
        targets.append(a)
    else:
        skipped[a] = "not on a subnet the guest reaches on-link (never dialled)"
ports = list(range(1, 65536)) if args["all_ports"] else args["ports"]
swept = sweep_all(targets, ports, args["batch"], args["batch_s"])
print(json.dumps({"routes": rs, "own": sorted(mine), "control": control, "found": found,
                  "skipped": skipped, "swept": swept, "ports": len(ports),
                  "seconds": round(time.monotonic() - t0, 3)}))
"""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    where: str  # which setting of the guest declares it
    ok: bool  # the guest connected to it
    error: str
    addrs: tuple[str, ...]


@dataclass(frozen=True)
class Swept:
    open: tuple[int, ...]
    refused: int  # ports that answered RST: the address is reachable
    other: Mapping[str, int]  # errno name -> count (ENETUNREACH, EHOSTUNREACH, ...)
    silent: int  # no answer within the batch bound
    seconds: float
    dark: bool = False  # the first batch drew no answer: only well-known ports tried after

    @property
    def reachable(self) -> bool:
        return bool(self.open) or self.refused > 0


@dataclass(frozen=True)
class Surface:
    """What one guest names, and what answered where it was swept."""

    routes: tuple[Mapping[str, str], ...]
    own: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    found: Mapping[str, tuple[str, ...]]  # address -> how the guest names it
    skipped: Mapping[str, str]  # address -> why it was not dialled
    swept: Mapping[str, Swept]
    ports: int
    seconds: float = 0.0

    def declared_ports(self) -> dict[str, set[int]]:
        """address -> the ports declared endpoints use there."""
        out: dict[str, set[int]] = {}
        for e in self.endpoints:
            for a in e.addrs:
                out.setdefault(a, set()).add(e.port)
        return out

    def undeclared_open(self) -> dict[str, list[int]]:
        """address -> open ports no declared endpoint uses there."""
        decl = self.declared_ports()
        out = {}
        for a, s in self.swept.items():
            extra = [p for p in s.open if p not in decl.get(a, set())]
            if extra:
                out[a] = extra
        return out


def _surface(data: dict) -> Surface:
    return Surface(
        tuple(data["routes"]), tuple(data["own"]),
        tuple(Endpoint(c["host"], c["port"], c["where"], c["ok"], c["error"], tuple(c["addrs"]))
              for c in data["control"]),
        {a: tuple(h) for a, h in data["found"].items()}, dict(data["skipped"]),
        {a: Swept(tuple(s["open"]), s["refused"], dict(s["other"]), s["silent"], s["seconds"],
               s.get("dark", False))
         for a, s in data["swept"].items()},
        data["ports"], data.get("seconds", 0.0))


def surface(bottle: Bottle, *, log: ProbeLog, all_ports: bool = True,
            ports: Sequence[int] = (), extra: Sequence[str] = (), user: str = "node",
            timeout: float = 3.0, name: str = "surface") -> Surface:
    """One exec: the guest's declared endpoints (dialled once each), every
    address it names, and a sweep of every TCP port (or ``ports``) on each
    of those it may dial (see the module doc). ``extra``: addresses the
    harness adds (another guest's own addresses)."""
    args = {"timeout": timeout, "all_ports": all_ports, "ports": list(ports),
            "batch": SWEEP_BATCH, "batch_s": SWEEP_BATCH_S, "extra": list(extra)}
    # Unknown until the guest has named its addresses: each reachable one
    # costs 5-20 s on a loaded 2-core host, a dark one a few seconds.
    bound = SURFACE_BOUND_S
    result = _exec(bottle, ["python3", "-c", _SURFACE_SCRIPT, json.dumps(args)], log=log,
                   name=name, timeout=bound, user=user)
    s = _surface(_json_out(result, "surface"))
    for a, sw in s.swept.items():
        log.add(f"{name} sweep {a}", sw.seconds,
                f"open {list(sw.open)}, {sw.refused} refused, {sw.silent} silent"
                f"{' (dark)' if sw.dark else ''}, {dict(sw.other)}")
    for a, why in s.skipped.items():
        log.add(f"{name} skip {a}", 0.0, why)
    return s


# -- another guest's addresses, swept from this one -----------------------------------

_SWEEP_SCRIPT = _COMMON + r"""
args = json.loads(sys.argv[1])
out = sweep_all(args["addrs"], list(range(1, 65536)), args["batch"], args["batch_s"])
if args["control"]:  # the sweeper must see resets somewhere: 1024 ports of its own
    out.update(sweep_all([args["control"]], list(range(1, 1025)), args["batch"], args["batch_s"]))
print(json.dumps(out))
"""


def sweep(bottle: Bottle, addrs: Sequence[str], *, log: ProbeLog, control: str = "",
          name: str = "sweep") -> dict[str, Swept]:
    """Every TCP port of each of ``addrs`` (the project's own guests'
    addresses, named by the harness), from inside ``bottle``; ``control``
    (an address of the guest's own) on ports 1-1024, to show the sweeper
    sees resets."""
    args = {"addrs": list(addrs), "batch": SWEEP_BATCH, "batch_s": SWEEP_BATCH_S,
            "control": control}
    bound = len(addrs) * 33 * SWEEP_BATCH_S + 30.0
    result = _exec(bottle, ["python3", "-c", _SWEEP_SCRIPT, json.dumps(args)], log=log,
                   name=name, timeout=bound)
    data = _json_out(result, "sweep")
    out = {a: Swept(tuple(s["open"]), s["refused"], dict(s["other"]), s["silent"], s["seconds"],
               s.get("dark", False))
           for a, s in data.items()}
    for a, sw in out.items():
        log.add(f"{name} {a}", sw.seconds,
                f"open {list(sw.open)}, {sw.refused} refused, {sw.silent} silent"
                f"{' (dark)' if sw.dark else ''}, {dict(sw.other)}")
    return out


# -- the guest's own addresses --------------------------------------------------------


def own_addresses(bottle: Bottle, *, log: ProbeLog) -> list[str]:
    """The guest's own non-loopback addresses (read from /proc, never dialled)."""
    code = _COMMON + "\nimport ipaddress\nprint(json.dumps(sorted(a for a in own() " \
                     "if not ipaddress.ip_address(a).is_loopback " \
                     "and not ipaddress.ip_address(a).is_link_local)))"
    result = _exec(bottle, ["python3", "-c", code], log=log, name="own-addresses", timeout=10)
    return list(_json_out(result, "own addresses"))


# -- DNS ---------------------------------------------------------------------------------

_DNS_SCRIPT = _COMMON + r"""
import random, struct, threading
# glibc's own retries would only make a silent resolver cost more: one try,
# one second, for each server it asks (it still asks every one).
os.environ["RES_OPTIONS"] = "timeout:1 attempts:1"
args = json.loads(sys.argv[1])
zone, timeout = args["zone"], args["timeout"]
rs = routes()
out = {"asked": [], "answers": [], "not_asked": {}, "routes_out": [], "getaddrinfo": None}
out["routes_out"] = ["%s via %s" % (r["net"], r["gateway"] or "-") for r in rs
                     if r["gateway"] or ipaddress.ip_network(r["net"]).prefixlen == 0]
def query(name):
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return qid, q + b"\0" + struct.pack(">HH", 1, 1)
def parse(qid, data):
    if len(data) < 12:
        return None
    rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid or not flags & 0x8000:
        return None
    return {"rcode": flags & 0xF, "answers": an}
def ask(addr, proto, name):
    qid, q = query(name)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    t = time.monotonic()
    res = {"server": addr, "proto": proto, "name": name, "reply": None, "error": ""}
    try:
        if proto == "udp":
            s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(timeout)
            s.sendto(q, (addr, 53))
            while True:
                data, _ = s.recvfrom(4096)
                r = parse(qid, data)
                if r is not None:
                    res["reply"] = r; break
        else:
            s = socket.create_connection((addr, 53), timeout=timeout)
            s.sendall(struct.pack(">H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            res["reply"] = parse(qid, buf[2:])
        s.close()
    except OSError as e:
        res["error"] = type(e).__name__ + ": " + str(e)
    res["seconds"] = round(time.monotonic() - t, 3)
    return res
if not out["routes_out"]:
    servers = {}
    for a in nameservers():
        servers.setdefault(a, "resolv.conf")
    for r in rs:
        if r["gateway"]:
            servers.setdefault(r["gateway"], "gateway")
    for a in neighbours():
        servers.setdefault(a, "neighbour")
    for host, port, where in declared():
        for a in resolve(host):
            servers.setdefault(a, "endpoint " + host)
    jobs = []
    for a, how in servers.items():
        ip = ipaddress.ip_address(a)
        if ip.is_loopback and not args["ask_loopback"]:
            out["not_asked"][a] = how + ": loopback resolver not asked (see the harness)"
            continue
        if not (ip.is_loopback or (ip.is_private and onlink(a, rs))):
            out["not_asked"][a] = how + ": not on the guest's own subnets (never dialled)"
            continue
        for proto in ("udp", "tcp"):
            jobs.append((a, proto, "p%d-%s.%s" % (len(jobs) + 1, args["label"], zone), how))
    def one(job):
        r = ask(*job[:3])
        r["how"] = job[3]
        out["asked"].append(r)
    def gai():
        name = "gai-%s.%s" % (args["label"], zone)
        t = time.monotonic()
        try:
            got = sorted({ai[4][0] for ai in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)})
            err = ""
        except OSError as e:
            got, err = [], type(e).__name__ + ": " + str(e)
        out["getaddrinfo"] = {"name": name, "addrs": got, "error": err,
                              "seconds": round(time.monotonic() - t, 3)}
    threads = [threading.Thread(target=one, args=(j,)) for j in jobs]
    threads.append(threading.Thread(target=gai))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
print(json.dumps(out))
"""


@dataclass(frozen=True)
class DnsResult:
    asked: tuple[Mapping, ...]  # {server, proto, name, reply: {rcode, answers}|None, error, how}
    not_asked: Mapping[str, str]
    routes_out: tuple[str, ...]
    getaddrinfo: Mapping | None
    names: tuple[str, ...] = field(default=())

    def answered(self) -> list[str]:
        """Paths on which a resolver gave an answer (NOERROR with records)."""
        out = [f"{a['proto']} {a['server']}:53 ({a['how']}) answered {a['name']}"
               for a in self.asked if a["reply"] and a["reply"]["rcode"] == 0
               and a["reply"]["answers"] > 0]
        g = self.getaddrinfo or {}
        if g.get("addrs"):
            out.append(f"getaddrinfo({g['name']}) -> {g['addrs']}")
        return out


def dns(bottle: Bottle, zone: str, label: str, *, log: ProbeLog, ask_loopback: bool,
        timeout: float = 2.0) -> DnsResult:
    """Look up unique names under ``zone`` (the harness's canary zone)
    through every resolver path of the guest (see `_DNS_SCRIPT`)."""
    args = {"zone": zone, "label": label, "timeout": timeout, "ask_loopback": ask_loopback}
    result = _exec(bottle, ["python3", "-c", _DNS_SCRIPT, json.dumps(args)], log=log,
                   name="dns", timeout=40 * timeout)
    data = _json_out(result, "dns")
    out = DnsResult(tuple(data["asked"]), dict(data["not_asked"]), tuple(data["routes_out"]),
                    data["getaddrinfo"],
                    tuple(a["name"] for a in data["asked"])
                    + ((data["getaddrinfo"]["name"],) if data["getaddrinfo"] else ()))
    for a in out.asked:
        log.add(f"dns {a['proto']} {a['server']} ({a['how']})", a.get("seconds", 0.0),
                json.dumps(a["reply"]) if a["reply"] else (a["error"] or "no reply"))
    if out.getaddrinfo:
        g = out.getaddrinfo
        log.add("dns getaddrinfo", g["seconds"], str(g["addrs"] or g["error"]))
    for a, why in out.not_asked.items():
        log.add(f"dns not asked {a}", 0.0, why)
    return out


# -- PEM private keys in the guest ---------------------------------------------------------

# Every regular file (but `prune`, at most MAX_KEY_FILE bytes, changed
# within the window) holding a PEM private key block: for each block, the
# sha256 of each large INTEGER and BIT STRING in its DER (an RSA modulus,
# an EC public point), which a CA certificate's public key also holds.
# Only hashes leave the guest.
MAX_KEY_FILE = 1 << 20

def der_items(b: bytes, out: set, depth: int = 0) -> None:
    """Add to ``out`` the sha256 of each large INTEGER (64+ bytes, leading
    zeros dropped: an RSA modulus) and each BIT STRING of 33+ bytes (its
    unused-bits byte dropped: an EC point, an RSA public key) in DER ``b``,
    descending into constructed values, BIT STRINGs and OCTET STRINGs.
    Stdlib only: the same source runs in the guest (`_KEYS_SCRIPT`)."""
    import hashlib

    i = 0
    while i + 2 <= len(b) and depth < 12:
        tag, n = b[i], b[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or k > 4 or i + k > len(b):
                return
            n = int.from_bytes(b[i:i + k], "big")
            i += k
        v = b[i:i + n]
        i += n
        if len(v) < n:
            return
        if tag in (0x30, 0x31) or tag & 0xE0 == 0xA0:
            der_items(v, out, depth + 1)
        elif tag == 0x02 and len(v.lstrip(b"\0")) >= 64:
            out.add(hashlib.sha256(v.lstrip(b"\0")).hexdigest())
        elif tag == 0x03 and len(v) >= 33:
            out.add(hashlib.sha256(v[1:]).hexdigest())
            der_items(v[1:], out, depth + 1)
        elif tag == 0x04:
            der_items(v, out, depth + 1)


def pem_blocks(text: bytes, kind: bytes) -> list[tuple[str, bytes]]:
    """``(label, DER)`` of each PEM block in ``text`` whose label ends in ``kind``."""
    import base64
    import re

    out = []
    for m in re.finditer(rb"-----BEGIN ([A-Z0-9 ]*" + kind + rb")-----(.*?)-----END \1-----",
                         text, re.S):
        try:
            out.append((m.group(1).decode(),
                        base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", m.group(2)))))
        except ValueError:
            pass
    return out


def _source(*fns) -> str:
    import inspect

    return "\n".join(inspect.getsource(f) for f in fns)


_KEYS_SCRIPT = r"""
import json, os, re, stat, sys, time
""" + _source(der_items, pem_blocks) + r"""
prune, cutoff_s, maxsize = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
cutoff = time.time() - cutoff_s if cutoff_s > 0 else 0.0
keys, files, older, big = [], 0, 0, 0
for d, dirs, names in os.walk("/"):
    if any(d == p or d.startswith(p + "/") for p in prune):
        dirs[:] = []
        continue
    for n in names:
        p = os.path.join(d, n)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if max(st.st_ctime, st.st_mtime) < cutoff:
            older += 1
            continue
        if st.st_size > maxsize:
            big += 1
            continue
        files += 1
        try:
            data = open(p, "rb").read()
        except OSError:
            continue
        if b"PRIVATE KEY-----" not in data:
            continue
        for kind, der in pem_blocks(data, rb"PRIVATE KEY"):
            h = set()
            der_items(der, h)
            keys.append({"path": p, "kind": kind, "hashes": sorted(h)})
print(json.dumps({"keys": keys, "files": files, "older": older, "big": big}))
"""


@dataclass(frozen=True)
class GuestKey:
    path: str
    kind: str  # "RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", ...
    hashes: frozenset[str]


@dataclass(frozen=True)
class KeyWalk:
    keys: tuple[GuestKey, ...]
    files: int  # files read
    older: int  # unchanged within the window: stat-ed only
    big: int  # over MAX_KEY_FILE: skipped

    def matching(self, cert_hashes: frozenset[str]) -> list[GuestKey]:
        return [k for k in self.keys if k.hashes & cert_hashes]


def private_keys(bottle: Bottle, *, log: ProbeLog, changed_within: float,
                 prune: Sequence[str] = ("/proc", "/sys", "/dev"),
                 timeout: float = 60.0) -> KeyWalk:
    """As root: every PEM private key in the guest's files (see `_KEYS_SCRIPT`)."""
    result = _exec(bottle, ["python3", "-c", _KEYS_SCRIPT, json.dumps(list(prune)),
                            f"{changed_within:.3f}", str(MAX_KEY_FILE)],
                   log=log, name="private-keys", timeout=timeout, user="root")
    data = _json_out(result, "private keys")
    walk = KeyWalk(tuple(GuestKey(k["path"], k["kind"], frozenset(k["hashes"]))
                         for k in data["keys"]), data["files"], data["older"], data["big"])
    log.add("private-keys result", 0.0, f"{walk.files} files read, {walk.older} older, "
            f"{walk.big} over {MAX_KEY_FILE} bytes, {len(walk.keys)} PEM private keys")
    return walk


def cert_key_hashes(pem: str | bytes) -> frozenset[str]:
    """The same hashes for each certificate in ``pem`` (host side): its
    public key's modulus or point, which the matching private key holds."""
    data = pem.encode() if isinstance(pem, str) else pem
    out: set[str] = set()
    for _, der in pem_blocks(data, rb"CERTIFICATE"):
        der_items(der, out)
    return frozenset(out)
