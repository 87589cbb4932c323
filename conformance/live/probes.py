"""Probes run INSIDE the guest, through `Bottle.exec`, as the agent's user.

Every probe is bounded twice: by its own timeout inside the guest (socket
timeout, ``curl --max-time``) and by the exec's timeout on the host. Each
records its duration and outcome in a `ProbeLog`, which the live tier puts
in the test's ``user_properties`` (so they reach JUnit and the report).

Probes dial only loopback, addresses of the bottle, and the harness's own
containers: never a name the engine's DNS would have to forward.

Nothing here prints or returns a real token: the upstream echoes it back,
so HTTP bodies are kept in `HttpResult.body` and compared, never shown.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from bottle_api.backend import Bottle
from bottle_api.runner import Completed, Runner

T = TypeVar("T")
EXEC_SLACK = 15.0  # host-side exec timeout beyond the in-guest one
CURL_MARK = "@@bottle-probe@@"
# TCP targets resolved inside the guest: the host:port of $HTTPS_PROXY (a
# positive control), that host on another port, and the guest's default
# gateway (skipped if none).
PROXY_TARGET = "@first-hop"
PROXY_HOST_TARGET = "@first-hop-host"
GATEWAY_TARGET = "@gateway"

# -- probe log -------------------------------------------------------------------


@dataclass
class ProbeLog:
    """Named probe timings for one test (reported as user_properties)."""

    entries: list[tuple[str, float, str]] = field(default_factory=list)

    def add(self, name: str, seconds: float, outcome: str) -> None:
        self.entries.append((name, round(seconds, 3), outcome))

    def properties(self) -> list[tuple[str, str]]:
        return [("live_probe", f"{n}: {s:.3f}s {o}") for n, s, o in self.entries]


def _exec(bottle: Bottle, cmd: Sequence[str], *, log: ProbeLog, name: str, timeout: float,
          user: str = "node", env: Mapping[str, str] | None = None) -> Completed:
    t0 = time.monotonic()
    result = bottle.exec(list(cmd), user=user, env=dict(env or {}),
                         timeout=timeout + EXEC_SLACK, check=False)
    log.add(name, time.monotonic() - t0, f"exit {result.returncode}")
    return result


class ProbeError(RuntimeError):
    """The probe's tool is missing from the guest (python3, curl: exit 127).
    The guest image is the environment, so the live tier reports ERROR."""


def _json_out(result: Completed, what: str):
    """The probe script's JSON line. A missing interpreter is the image's
    fault (`ProbeError`); any other garbage is the bottle's (AssertionError)."""
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        detail = (result.stderr or result.stdout).strip()[-500:]
        if result.returncode == 127:
            raise ProbeError(f"{what} probe cannot run in the guest (exit 127): {detail}") from None
        raise AssertionError(f"{what} probe produced no result (exit {result.returncode}): "
                             f"{detail}") from None


# -- TCP -------------------------------------------------------------------------

_TCP_SCRIPT = r"""
import json, os, socket, sys, threading, time
from urllib.parse import urlsplit
def gateway():
    try:
        for line in open("/proc/net/route").read().splitlines()[1:]:
            f = line.split()
            if f[1] == "00000000" and int(f[3], 16) & 2:
                return socket.inet_ntoa(bytes.fromhex(f[2])[::-1])
    except (OSError, IndexError, ValueError):
        pass
    return ""
def one(host, port, timeout):
    if host in ("@first-hop", "@first-hop-host"):
        hop = urlsplit(os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or "")
        host, port = hop.hostname or "", (hop.port or 0) if host == "@first-hop" else port
    elif host == "@gateway":
        host = gateway()
        if not host:
            return {"target": "@gateway:%s" % port, "connected": False,
                    "error": "no default route", "seconds": 0.0}
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, int(port)), timeout=timeout)
        s.close()
        ok, err = True, ""
    except OSError as e:
        ok, err = False, type(e).__name__ + ": " + str(e)
    return {"target": "%s:%s" % (host, port), "connected": ok, "error": err,
            "seconds": round(time.monotonic() - t0, 3)}
specs = json.loads(sys.argv[1])
out = [None] * len(specs)
def run(i):
    out[i] = one(*specs[i])
threads = [threading.Thread(target=run, args=(i,)) for i in range(len(specs))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out))
"""


@dataclass(frozen=True)
class TcpResult:
    target: str
    connected: bool
    error: str
    seconds: float


def tcp(bottle: Bottle, targets: Sequence[tuple[str, int]], *, log: ProbeLog,
        timeout: float = 3.0, name: str = "tcp") -> list[TcpResult]:
    """One exec: concurrent TCP connects to each ``(host, port)``, the proxy
    variables irrelevant (raw sockets ignore them). Host `PROXY_TARGET`
    means the guest's own first hop (a positive control), `PROXY_HOST_TARGET`
    the first hop's host on the given port, `GATEWAY_TARGET` its default
    gateway."""
    spec = json.dumps([[h, int(p), timeout] for h, p in targets])
    result = _exec(bottle, ["python3", "-I", "-c", _TCP_SCRIPT, spec], log=log, name=name,
                   timeout=timeout)
    rows = _json_out(result, "tcp")
    out = [TcpResult(r["target"], r["connected"], r["error"], r["seconds"]) for r in rows]
    for r in out:
        log.add(f"{name} {r.target}", r.seconds, "connected" if r.connected else r.error)
    return out


# -- HTTP(S) with curl ---------------------------------------------------------------


@dataclass(frozen=True)
class HttpResult:
    """What curl saw. ``body`` may hold an echoed token: compare, never print."""

    exit_code: int
    status: int  # final response status (0: none)
    connect_status: int  # the proxy's answer to CONNECT (0: none)
    error: str = field(default="")
    body: str = field(default="", repr=False)
    seconds: float = 0.0  # curl's own time_total

    @property
    def echo(self) -> dict | None:
        """The test upstream's JSON echo, if that is what answered."""
        if self.status != 200:
            return None
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) and "authorization" in data else None

    def describe(self) -> str:
        return (f"curl exit {self.exit_code}, CONNECT {self.connect_status or '-'}, "
                f"status {self.status or '-'}{', ' + self.error if self.error else ''}")


def http(bottle: Bottle, url: str, *, log: ProbeLog, name: str = "http",
         headers: Mapping[str, str] | None = None, proxy: str | None = None,
         no_proxy: bool = False, cacert: str | None = None,
         timeout: float = 10.0) -> HttpResult:
    """``curl`` in the guest with the agent's proxy environment (or
    ``proxy``, or none with ``no_proxy``); TLS verified (never ``-k``)."""
    cmd = ["curl", "-sS", "--max-time", f"{timeout:g}", "-o", "-",
           "-w", f"\n{CURL_MARK}%{{json}}"]
    if no_proxy:
        cmd += ["--noproxy", "*"]
    if proxy:
        cmd += ["--proxy", proxy]
    if cacert:
        cmd += ["--cacert", cacert]
    for key, value in (headers or {}).items():
        cmd += ["-H", f"{key}: {value}"]
    result = _exec(bottle, [*cmd, url], log=log, name=name, timeout=timeout)
    if result.returncode == 127:
        raise ProbeError(f"curl not runnable in the guest: {result.stderr.strip()[-300:]}")
    body, sep, meta = result.stdout.rpartition(CURL_MARK)
    info = {}
    if sep:
        try:
            info = json.loads(meta)
        except ValueError:
            info = {}
    out = HttpResult(result.returncode, int(info.get("http_code") or 0),
                     int(info.get("http_connect") or 0),
                     (info.get("errormsg") or result.stderr.strip())[-300:],
                     body.removesuffix("\n"), float(info.get("time_total") or 0.0))
    log.add(f"{name} result", 0.0, out.describe())
    return out


# -- TLS with Python's ssl (independent of curl) ------------------------------------------

_TLS_SCRIPT = r"""
import http.client, json, os, ssl, sys
from urllib.parse import urlsplit
host, path, trust, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
hop = urlsplit(os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or "")
if trust == "system":
    ctx = ssl.create_default_context()
elif trust == "none":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
else:
    ctx = ssl.create_default_context(cafile=os.environ.get(trust) or trust)
out = {"ok": False, "status": 0, "issuer": "", "error": "", "proxy": hop.netloc}
try:
    conn = http.client.HTTPSConnection(hop.hostname, hop.port, timeout=timeout, context=ctx)
    conn.set_tunnel(host, 443)
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    cert = conn.sock.getpeercert()
    out["issuer"] = dict(x[0] for x in cert.get("issuer", ())).get("commonName", "")
    out["status"], out["ok"] = resp.status, True
except (OSError, ssl.SSLError, http.client.HTTPException) as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


@dataclass(frozen=True)
class TlsResult:
    ok: bool
    status: int
    issuer: str
    error: str
    proxy: str


def tls(bottle: Bottle, host: str, path: str, *, trust: str, log: ProbeLog,
        timeout: float = 10.0, name: str = "tls") -> TlsResult:
    """HTTPS GET via the guest's ``$HTTPS_PROXY`` (CONNECT), verifying the
    certificate with ``trust``: ``system`` (the guest's default store),
    ``none`` (no CA at all: a negative control), or an env var name / path
    of a CA file (e.g. ``NODE_EXTRA_CA_CERTS``)."""
    result = _exec(bottle, ["python3", "-I", "-c", _TLS_SCRIPT, host, path, trust, f"{timeout:g}"],
                   log=log, name=f"{name} ({trust})", timeout=timeout)
    data = _json_out(result, "tls")
    out = TlsResult(data["ok"], data["status"], data["issuer"], data["error"], data["proxy"])
    log.add(f"{name} ({trust}) result", 0.0,
            f"status {out.status}, issuer {out.issuer!r}" if out.ok else out.error[:200])
    return out


# -- secret scan -------------------------------------------------------------------------

# The whole guest filesystem but the kernel's views (`SCAN_PRUNE`), plus
# every process's environ and cmdline, searched for token-shaped values
# raw and in their common encodings. Only sha256 of the DECODED token
# comes back, labelled with the encoding, so nothing secret crosses the
# exec boundary either way: the guest is told the token's shape (a prefix
# and a hex body), never a value. Encodings of the fixed prefix are found
# by literal search (`bytes.find`, fast over the whole image), then the
# window around each hit is decoded and matched against the raw shape:
#   raw            bottle-live-<hex>       (url-encoding leaves it unchanged)
#   hex            lower or upper case
#   base64         standard or url-safe alphabet, any of the 3 alignments
#   percent        every byte %XX-encoded
SCAN_PRUNE = ("/proc", "/sys", "/dev")

_SCAN_SCRIPT = r"""
import base64, binascii, hashlib, json, os, re, stat, sys
import time
prefix, body, prune = sys.argv[1].encode(), sys.argv[2].encode(), json.loads(sys.argv[3])
cutoff = time.time() - float(sys.argv[4]) if float(sys.argv[4]) > 0 else 0.0
roots = sys.argv[5:]
raw = re.compile(re.escape(prefix) + body)
need = []  # (literal, encoding, decode(window, hit offset) -> bytes)
need.append((prefix, "raw", lambda w, i: w[i:]))
for case in (str.lower, str.upper):
    lit = case(binascii.hexlify(prefix).decode()).encode()
    def unhex(w, i):
        m = re.match(rb"[0-9a-fA-F]+", w[i:])
        h = m.group() if m else b""
        return binascii.unhexlify(h[: len(h) // 2 * 2])
    need.append((lit, "hex", unhex))
pct = "".join("%%%02X" % b for b in prefix)
for lit in (pct.encode(), pct.lower().encode()):
    need.append((lit, "percent", lambda w, i: bytes(
        int(x, 16) for x in re.findall(rb"%([0-9a-fA-F]{2})", re.match(rb"(?:%[0-9a-fA-F]{2})+", w[i:]).group()))))
B64 = re.compile(rb"[A-Za-z0-9+/_-]+")
for k in range(3):
    skip = (3 - k) % 3          # prefix bytes before the first whole group
    core = prefix[skip:]
    core = core[: len(core) // 3 * 3]
    for alpha in (base64.b64encode, base64.urlsafe_b64encode):
        lit = alpha(core)
        def unb64(w, i, skip=skip):
            m = B64.match(w[i:])
            t = m.group().replace(b"-", b"+").replace(b"_", b"/") if m else b""
            t = t[: len(t) - (len(t) % 4 == 1)]  # unpadded tail: pad, never cut
            t += b"=" * (-len(t) % 4)
            try:
                return prefix[:skip] + base64.b64decode(t)
            except (binascii.Error, ValueError):
                return b""
        need.append((lit, "base64", unb64))
found, sockets = {}, []
def scan(data, where):
    for lit, enc, dec in need:
        i = data.find(lit)
        while i >= 0:
            for m in raw.finditer(dec(data[i:i + 512], 0)[:256]):
                key = hashlib.sha256(m.group()).hexdigest()
                found.setdefault(key, {}).setdefault(enc, set()).add(where)
                break
            i = data.find(lit, i + 1)
CHUNK, OVER = 4 << 20, 1024
def scan_file(path):
    try:
        with open(path, "rb") as f:
            tail = b""
            while True:
                block = f.read(CHUNK)
                if not block:
                    return
                scan(tail + block, path)
                tail = block[-OVER:]
    except OSError:
        pass
files = older = 0
for root in roots:
    for d, dirs, names in os.walk(root):
        if any(d == p or d.startswith(p + "/") for p in prune):
            dirs[:] = []
            continue
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISSOCK(st.st_mode):
                sockets.append(p)
            elif stat.S_ISREG(st.st_mode):
                if max(st.st_ctime, st.st_mtime) < cutoff:
                    older += 1  # unchanged since before the value existed
                    continue
                files += 1
                scan_file(p)
me = str(os.getpid())
procs = unreadable = 0
for pid in os.listdir("/proc"):
    if pid.isdigit() and pid != me:
        procs += 1
        if not os.access("/proc/%s/environ" % pid, os.R_OK):
            unreadable += 1
        for part in ("environ", "cmdline"):
            scan_file("/proc/%s/%s" % (pid, part))
print(json.dumps({"files": files, "older": older, "procs": procs, "unreadable": unreadable,
                  "sockets": sorted(sockets)[:200],
                  "found": {h: {e: sorted(w)[:5] for e, w in encs.items()}
                            for h, encs in found.items()}}))
"""


@dataclass(frozen=True)
class ScanResult:
    """sha256 of each decoded match -> encoding -> where it was found (never
    the match itself); every unix socket file seen on the way."""

    files: int
    procs: int
    found: Mapping[str, Mapping[str, tuple[str, ...]]]
    sockets: tuple[str, ...] = ()
    older: int = 0  # files skipped: unchanged since before the value existed
    unreadable: int = 0  # processes whose environ this user could not read

    def where(self, digest: str) -> dict[str, tuple[str, ...]]:
        return dict(self.found.get(digest, {}))


def scan(bottle: Bottle, prefix: str, body: str, roots: Sequence[str] = ("/",), *,
         log: ProbeLog, prune: Sequence[str] = SCAN_PRUNE, changed_within: float = 0.0,
         timeout: float = 60.0, user: str = "root") -> ScanResult:
    """As ``user`` (root by default): every regular file under ``roots``
    (but ``prune``) and every process's environ and cmdline it can read,
    searched for ``prefix`` + regex ``body``, raw and encoded (see
    `_SCAN_SCRIPT`); only hashes come back. Root without CAP_SYS_PTRACE
    cannot read another user's ``/proc/<pid>/environ`` (ptrace access
    mode), so a caller that wants every process scans as each user too
    (``roots=()``: processes only).

    ``changed_within`` > 0 reads only files whose ctime or mtime is at most
    that many seconds old by the guest's own clock (the rest are stat-ed
    and counted): a value created N seconds ago can only be in a file
    written since, and ctime cannot be set back from user space. Pass the
    age of the searched value plus slack; the image's untouched files are
    then not re-read on every run."""
    result = _exec(bottle, ["python3", "-I", "-c", _SCAN_SCRIPT, prefix, body, json.dumps(list(prune)),
                            f"{changed_within:.3f}", *roots],
                   log=log, name=f"scan as {user}", timeout=timeout, user=user)
    data = _json_out(result, "scan")
    log.add("scan result", 0.0, f"{data['files']} files read, {data['older']} older skipped, "
            f"{data['procs']} processes ({data.get('unreadable', 0)} environ unreadable), "
            f"{len(data['found'])} distinct matches, "
            f"{len(data['sockets'])} sockets")
    return ScanResult(data["files"], data["procs"],
                      {h: {e: tuple(w) for e, w in encs.items()}
                       for h, encs in data["found"].items()},
                      tuple(data["sockets"]), data["older"], data.get("unreadable", 0))


def encodings(value: str) -> dict[str, str]:
    """``value`` in each encoding the scan decodes (for planting decoys)."""
    import base64
    import binascii

    b = value.encode()
    return {"raw": value, "hex": binascii.hexlify(b).decode().upper(),
            "base64": base64.b64encode(b"x" + b).decode(),  # off the 3-byte grid
            "base64url": base64.urlsafe_b64encode(b"xy" + b).decode().rstrip("="),
            "percent": "".join(f"%{c:02X}" for c in b)}


# -- the guest's view of the network and of the host ---------------------------------------

_NET_SCRIPT = r"""
import json, socket
def v4(h):
    return socket.inet_ntoa(bytes.fromhex(h)[::-1])
routes4, routes6 = [], []
for line in open("/proc/net/route").read().splitlines()[1:]:
    f = line.split()
    if len(f) >= 8:
        routes4.append({"iface": f[0], "dst": v4(f[1]), "gateway": v4(f[2]),
                        "flags": int(f[3], 16), "mask": v4(f[7])})
try:
    for line in open("/proc/net/ipv6_route").read().splitlines():
        f = line.split()
        if len(f) >= 10:
            routes6.append({"dst": str(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[0]))),
                            "len": int(f[1], 16), "gateway": str(socket.inet_ntop(
                                socket.AF_INET6, bytes.fromhex(f[4]))),
                            "flags": int(f[8], 16), "iface": f[9]})
except OSError:
    pass
mounts = []
for line in open("/proc/self/mountinfo").read().splitlines():
    left, _, right = line.partition(" - ")
    a, b = left.split(), right.split()
    mounts.append({"root": a[3], "point": a[4], "fstype": b[0] if b else "",
                   "source": b[1] if len(b) > 1 else ""})
ifaces = [line.split(":", 1)[0].strip()
          for line in open("/proc/net/dev").read().splitlines()[2:] if ":" in line]
print(json.dumps({"routes4": routes4, "routes6": routes6, "mounts": mounts, "ifaces": ifaces}))
"""

RTF_GATEWAY, RTF_REJECT = 0x2, 0x200


@dataclass(frozen=True)
class Route:
    family: int  # 4 or 6
    dst: str  # network address
    prefix: int  # prefix length
    gateway: str  # "" when on-link
    iface: str

    @property
    def default(self) -> bool:
        return self.prefix == 0

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        return f"{self.dst}/{self.prefix}{via} dev {self.iface}"


@dataclass(frozen=True)
class Mount:
    root: str  # the path inside its filesystem that is mounted
    point: str
    fstype: str
    source: str

    def __str__(self) -> str:
        return f"{self.point} ({self.fstype} {self.source}:{self.root})"


@dataclass(frozen=True)
class GuestNet:
    """The guest's routes (rejecting ones dropped), its mount table and its
    network interfaces (``/proc/net/dev``)."""

    routes: tuple[Route, ...]
    mounts: tuple[Mount, ...]
    interfaces: tuple[str, ...] = ()

    @property
    def loopback_only(self) -> bool:
        """No interface but ``lo``: a guest with no network at all (e.g. a
        smolvm machine without --net), whose empty route table is the
        answer, not a failed read."""
        return bool(self.interfaces) and set(self.interfaces) <= {"lo"}


# Filesystems that are no host storage when mounted whole (root "/").
VIRTUAL_FS = frozenset({
    "overlay", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2",
    "securityfs", "debugfs", "tracefs", "pstore", "bpf", "hugetlbfs", "devtmpfs", "autofs",
    "binfmt_misc", "configfs", "fusectl", "nsfs", "rpc_pipefs", "ramfs", "efivarfs", "shm"})
# What every container engine bind-mounts from its own state into a guest.
ENGINE_FILES = ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts")
ENGINE_SOCKET = re.compile(r"(docker|podman|containerd|cri-?o|buildkitd?|dockershim)[^/]*\.sock$")


def host_mounts(mounts: Sequence[Mount], allowed: Iterable[str] = ()) -> list[Mount]:
    """Mounts that show host storage in the guest: part of a filesystem
    (root other than "/", a bind mount) or a whole non-virtual one, except
    the guest's own root, the kernel's masks under /proc and /sys, and the
    ``allowed`` mount points."""
    ok = set(ENGINE_FILES) | set(allowed)
    out = []
    for m in mounts:
        if m.point == "/" or m.point in ok:
            continue
        if any(m.point == p or m.point.startswith(p + "/") for p in ("/proc", "/sys")):
            continue
        if m.root != "/" or m.fstype not in VIRTUAL_FS:
            out.append(m)
    return out


def gateways(net: GuestNet) -> list[str]:
    """Gateway addresses the guest can name: each route's gateway, and the
    first address of each on-link IPv4 subnet (where engines put the host's
    end of a bridge)."""
    import ipaddress

    out: dict[str, None] = {}
    for r in net.routes:
        if r.gateway:
            out[r.gateway] = None
        if r.family == 4 and 0 < r.prefix < 31:
            out[str(ipaddress.IPv4Network(f"{r.dst}/{r.prefix}", strict=False)[1])] = None
    return list(out)


def guest_net(bottle: Bottle, *, log: ProbeLog, timeout: float = 10.0) -> GuestNet:
    """Read (never dial) the guest's route tables and mountinfo."""
    import ipaddress

    result = _exec(bottle, ["python3", "-I", "-c", _NET_SCRIPT], log=log, name="routes+mounts",
                   timeout=timeout)
    data = _json_out(result, "routes")
    routes = []
    for r in data["routes4"]:
        if r["flags"] & RTF_REJECT:
            continue
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{r['mask']}").prefixlen
        gw = r["gateway"] if r["flags"] & RTF_GATEWAY else ""
        routes.append(Route(4, r["dst"], prefix, gw, r["iface"]))
    for r in data["routes6"]:
        if r["flags"] & RTF_REJECT or r["iface"] == "lo":
            continue
        dst = ipaddress.IPv6Address(r["dst"])
        if dst.is_multicast or (dst.is_link_local and r["len"] >= 64) or r["len"] == 128:
            continue  # multicast, link-local and the guest's own addresses
        gw = r["gateway"] if r["flags"] & RTF_GATEWAY else ""
        routes.append(Route(6, r["dst"], r["len"], gw, r["iface"]))
    mounts = tuple(Mount(m["root"], m["point"], m["fstype"], m["source"]) for m in data["mounts"])
    interfaces = tuple(data.get("ifaces", ()))
    log.add("routes", 0.0, ("; ".join(map(str, routes)) or "none")
            + f" (interfaces: {', '.join(interfaces) or '?'})")
    return GuestNet(tuple(routes), mounts, interfaces)


def concurrently(*calls: Callable[[], T], workers: int | None = None) -> list[T]:
    """Run independent probes at once (each is its own bounded exec), so
    probes that must time out cost one timeout, not one each. ``workers``
    caps how many run together (None: all). Every call has ended when this
    returns or raises (the first failure, in the calls' order)."""
    with ThreadPoolExecutor(max_workers=workers or len(calls) or 1) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


# -- the agent's own framing ------------------------------------------------------------


def agent_framed(bottle: Bottle, agent: str, shell: str, runner: Runner, *,
                 log: ProbeLog, timeout: float = 30.0, name: str = "agent-framed") -> Completed:
    """Run ``sh -c SHELL`` exactly where the agent binary would run: the
    host argv of ``agent_argv([], tty=False)`` up to the binary, then the
    shell (the resume-wrap trick of EXEC-RESUME)."""
    argv = bottle.agent_argv([], tty=False)
    try:
        i = next(i for i, a in enumerate(argv) if a == agent or a.endswith("/" + agent))
    except StopIteration:
        raise AssertionError(f"agent binary {agent!r} not found in agent_argv: {argv!r}") from None
    t0 = time.monotonic()
    result = runner.run([*argv[:i], "sh", "-c", shell], input="", timeout=timeout, check=False)
    log.add(name, time.monotonic() - t0, f"exit {result.returncode}")
    return result


# -- an interactive agent in a pty (LIVE-INTERACTIVE) ------------------------------

# What interactive Claude Code (2.1.330) shows, as seen through a pty with
# escape sequences and spaces removed: its input prompt's footer, and the
# dialogs that would stand between a user and that prompt.
CLAUDE_INPUT_PROMPT = ("forshortcuts", "/effort", "automodeon", "bypasspermissions")
CLAUDE_DIALOGS = {
    "the folder-trust dialog": ("Quicksafetycheck", "trustthisfolder"),
    "onboarding": ("Choosethetextstyle", "Let'sgetstarted", "Selectloginmethod"),
}


@dataclass
class Screen:
    """What a pty session showed before it reached ``until`` or stopped."""

    text: str
    reached: bool
    stopped_by: str | None
    seconds: float

    def tail(self, n: int) -> str:
        return self.text[-n:]


def _squash(raw: bytes) -> str:
    import re

    text = raw.decode("utf-8", errors="replace")
    text = re.sub(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)", "", text)  # OSC
    text = re.sub(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]", "", text)  # CSI
    text = re.sub(r"\x1b[@-Z\\-_]", "", text)
    return re.sub(r"\s+", "", text)


def pty_screen(argv: Sequence[str], *, until: Sequence[str], stop: Mapping[str, Sequence[str]],
               timeout: float, rows: int = 40, cols: int = 120) -> Screen:
    """Run host ``argv`` (e.g. ``docker exec -it ... claude``) on a fresh
    pseudo-terminal, read what it draws (a bounded poll: select with a
    deadline, no fixed sleep) until any ``until`` marker or any ``stop``
    marker appears, then kill it."""
    import fcntl
    import os
    import pty
    import select
    import signal
    import struct
    import termios

    t0 = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        try:
            os.execvp(argv[0], list(argv))
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    raw = b""
    reached, stopped_by = False, None
    try:
        while time.monotonic() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                raw += chunk
            text = _squash(raw)
            stopped_by = next((name for name, marks in stop.items()
                               if any(m in text for m in marks)), None)
            reached = any(m in text for m in until)
            if stopped_by or reached:
                break
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return Screen(_squash(raw), reached, stopped_by, time.monotonic() - t0)


# -- raw requests with names the guest picks (issue 15) -------------------------------------

_FRONT_SCRIPT = r"""
import json, os, socket, ssl, sys
from urllib.parse import urlsplit
mode, target, sni, host, path, auth, timeout, extra = sys.argv[1:9]
timeout = float(timeout)
hop = urlsplit(os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or "")
out = {"connect_status": 0, "status": 0, "body": "", "error": "", "proxy": hop.netloc}

def head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data

def status_of(data):
    try:
        return int(data.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return 0

try:
    sock = socket.create_connection((hop.hostname, hop.port), timeout=timeout)
    lines = []
    if mode == "plain":
        first = "GET http://%s%s HTTP/1.1" % (target, path)
    else:
        if ":" not in target:
            target += ":443" if mode == "tls" else ":80"
        sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        data = head(sock)
        out["connect_status"] = status_of(data)
        if out["connect_status"] != 200:
            out["body"] = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
            raise SystemExit
        if mode == "tls":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the attacker does not care whose certificate
            sock = ctx.wrap_socket(sock, server_hostname=None if sni == "-" else sni)
        first = "GET %s HTTP/1.1" % path
    req = first + "\r\n"
    if host != "-":
        req += "Host: %s\r\n" % host
    if auth != "-":
        req += "Authorization: %s\r\n" % auth
    if extra != "-":
        req += extra + "\r\n"
    req += "Connection: close\r\n\r\n"
    sock.sendall(req.encode())
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
    out["status"] = status_of(data)
    out["body"] = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
except SystemExit:
    pass
except (OSError, ssl.SSLError) as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


# -- issue 16: the host from root, with raw sockets where the guest allows them ----------

# Run as node AND as root (``python3 -I``: nothing node planted is imported).
# 1. Neighbour discovery on every guest interface: an ICMPv6 echo to ff02::1
#    (all nodes) framed by hand on an AF_PACKET socket where the guest has
#    NET_RAW (works even with the guest's own IPv6 off), else through the
#    kernel (raw ICMPv6, then an unprivileged ping socket). Every answer is a
#    neighbour: its link-local address and MAC. The guest's own are dropped.
# 2. TCP through the guest's kernel to each neighbour's link-local address
#    (scoped to the interface) and to each host address given: a handshake
#    with a host service on ``::`` would complete here.
# 3. Where AF_PACKET is allowed: one-way UDP datagrams to every host address
#    given (IPv4 and IPv6) and to each neighbour, framed for the neighbours'
#    MACs and for the broadcast MAC (a host accepts a unicast IP packet in a
#    link-layer broadcast unless drop_unicast_in_l2_multicast is set), so no
#    route, ARP or address on the guest's side is needed; then a TCP
#    handshake made by hand (SYN, ACK of the SYN-ACK) to every IPv6 host
#    address and neighbour through each neighbour's MAC, answering the
#    host's neighbour solicitations for the guest's link-local address on
#    the way (so it works with the guest's own IPv6 off).
# Only the addresses given (this host's own) and neighbours that answered on
# the guest's own links are ever sent to.
_HOST_RAW_SCRIPT = r"""
import json, os, select, socket, struct, sys, time
port, v4s, v6s, token, timeout = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4].encode(), float(sys.argv[5])
out = {"uid": os.getuid(), "packet": "", "ifaces": [], "neighbours": [], "tcp": [], "udp": [], "raw_tcp": [], "raw_tcp_tried": 0, "errors": []}
def err(what, e):
    out["errors"].append("%s: %s: %s" % (what, type(e).__name__, e))
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
ifaces = []
for name in sorted(os.listdir("/sys/class/net")):
    if name == "lo":
        continue
    try:
        mac = bytes.fromhex(open("/sys/class/net/%s/address" % name).read().strip().replace(":", ""))
        idx = socket.if_nametoindex(name)
    except (OSError, ValueError) as e:
        err(name, e); continue
    v4 = ""
    try:
        import fcntl
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v4 = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))[20:24])
        s.close()
    except OSError:
        pass
    if len(mac) == 6:
        ifaces.append((name, idx, mac, v4))
        out["ifaces"].append({"name": name, "mac": mac.hex(":"), "v4": v4})
own_ll = {}
try:
    for line in open("/proc/net/if_inet6"):
        f = line.split()
        a = bytes.fromhex(f[0])
        if a[:2] == b"\xfe\x80":
            own_ll[f[5]] = a
except OSError:
    pass
def lladdr(iface, mac):
    if iface in own_ll:
        return own_ll[iface]
    eui = bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]
    return b"\xfe\x80" + b"\0" * 6 + eui
def eth(dst, src, kind, payload):
    return dst + src + struct.pack("!H", kind) + payload
def ip6(src, dst, nh, payload, hop=255):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, hop) + src + dst + payload
def ip6_csum(src, dst, nh, payload):
    return csum(src + dst + struct.pack("!IxxxB", len(payload), nh) + payload)
def ip4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload
def udp(sport, dport, payload, pseudo=None):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if pseudo is not None:
        c = pseudo(u) or 0xffff
        u = u[:6] + struct.pack("!H", c) + u[8:]
    return u
neigh = {}  # (iface, ll) -> mac hex
ALL_NODES = socket.inet_pton(socket.AF_INET6, "ff02::1")
pk = None
try:
    pk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
    out["packet"] = "yes"
except OSError as e:
    out["packet"] = "%s: %s" % (type(e).__name__, e)
def na(name, mac, src6, dmac, dst6):
    body = struct.pack("!BBHI", 136, 0, 0, 0x60000000) + src6 + struct.pack("!BB", 2, 1) + mac
    body = body[:2] + struct.pack("!H", ip6_csum(src6, dst6, 58, body)) + body[4:]
    pk.sendto(eth(dmac, mac, 0x86DD, ip6(src6, dst6, 58, body)), (name, 0))
def tcp6(src6, dst6, sport, dport, seq, ack, flags):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return h[:16] + struct.pack("!H", ip6_csum(src6, dst6, 6, h)) + h[18:]
by_name = {i[0]: i for i in ifaces}
def frames(until, on_frame):
    # Every IPv6 frame another host sends us until `until`; answer neighbour
    # solicitations for our (hand-made) link-local address on the way, so a
    # host can answer us even though the guest's own IPv6 is off.
    while time.monotonic() < until:
        r, _, _ = select.select([pk], [], [], max(0.0, until - time.monotonic()))
        if not r:
            return
        data, addr = pk.recvfrom(65535)
        me = by_name.get(addr[0])
        if me is None or addr[2] == 4 or data[6:12] == me[2] or len(data) < 58 or data[12:14] != b"\x86\xdd":
            continue
        name, idx, mac, v4 = me
        src6 = lladdr(name, mac)
        nh, s6, d6, pl = data[20], data[22:38], data[38:54], data[54:]
        if nh == 58 and pl[:1] == b"\x87" and pl[8:24] == src6 and s6 != b"\0" * 16:
            neigh.setdefault((name, socket.inet_ntop(socket.AF_INET6, s6)), data[6:12].hex(":"))
            try:
                na(name, mac, src6, data[6:12], s6)
            except OSError as e:
                err("na %s" % name, e)
        elif nh == 58 and pl[:1] == b"\x81" and d6 == src6:
            neigh.setdefault((name, socket.inet_ntop(socket.AF_INET6, s6)), data[6:12].hex(":"))
        if on_frame(name, mac, src6, data, nh, s6, d6, pl):
            return
if pk is not None:
    for name, idx, mac, v4 in ifaces:
        src = lladdr(name, mac)
        icmp = struct.pack("!BBHHH", 128, 0, 0, 0x4242, 1) + token
        icmp = icmp[:2] + struct.pack("!H", ip6_csum(src, ALL_NODES, 58, icmp)) + icmp[4:]
        try:
            pk.sendto(eth(b"\x33\x33\x00\x00\x00\x01", mac, 0x86DD, ip6(src, ALL_NODES, 58, icmp)), (name, 0x86DD))
        except OSError as e:
            err("nd %s" % name, e)
    frames(time.monotonic() + 1.0, lambda *a: False)
else:
    for kind, proto in (("raw", socket.SOCK_RAW), ("ping", socket.SOCK_DGRAM)):
        try:
            s = socket.socket(socket.AF_INET6, proto, socket.IPPROTO_ICMPV6)
        except OSError as e:
            err("icmpv6 %s socket" % kind, e); continue
        try:
            for name, idx, mac, v4 in ifaces:
                try:
                    s.sendto(struct.pack("!BBHHH", 128, 0, 0, 0x4242, 1) + token, ("ff02::1", 0, 0, idx))
                except OSError as e:
                    err("nd %s %s" % (kind, name), e)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
                if not r:
                    break
                data, addr = s.recvfrom(65535)
                if data[:1] == b"\x81":
                    name = socket.if_indextoname(addr[3]) if addr[3] else ""
                    if addr[0].split("%")[0] != socket.inet_ntop(socket.AF_INET6, own_ll.get(name, b"\0" * 16)):
                        neigh[(name, addr[0].split("%")[0])] = ""
        finally:
            s.close()
        break
out["neighbours"] = ["%s%%%s %s" % (a, i, m) for (i, a), m in neigh.items()]
def dial(host, scope=0):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    t0 = time.monotonic()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port, 0, scope) if fam == socket.AF_INET6 else (host, port))
        ok, e = True, ""
    except OSError as x:
        ok, e = False, "%s: %s" % (type(x).__name__, x)
    finally:
        s.close()
    return {"target": "%s%s:%d" % (host, "%%%d" % scope if scope else "", port), "connected": ok, "error": e, "seconds": round(time.monotonic() - t0, 3)}
targets = [(a, 0) for a in v4s + v6s] + [(a, socket.if_nametoindex(i)) for (i, a) in neigh]
import threading
res = [None] * len(targets)
def go(n):
    res[n] = dial(*targets[n])
ts = [threading.Thread(target=go, args=(n,)) for n in range(len(targets))]
[t.start() for t in ts]
[t.join() for t in ts]
out["tcp"] = res
if pk is not None:
    for name, idx, mac, v4 in ifaces:
        macs = [b"\xff" * 6] + [bytes.fromhex(m.replace(":", "")) for (i, a), m in neigh.items() if i == name and m]
        src4 = socket.inet_aton(v4) if v4 else b"\0" * 4
        src6 = lladdr(name, mac)
        dsts = [(4, a) for a in v4s] + [(6, a) for a in v6s] + [(6, a) for (i, a) in neigh if i == name]
        for dmac in macs:
            for fam, a in dsts:
                try:
                    if fam == 4:
                        frame = eth(dmac, mac, 0x0800, ip4(src4, socket.inet_aton(a), 17, udp(40000, port, token)))
                    else:
                        d = socket.inet_pton(socket.AF_INET6, a)
                        frame = eth(dmac, mac, 0x86DD, ip6(src6, d, 17, udp(40000, port, token, lambda u: ip6_csum(src6, d, 17, u)), 64))
                    pk.sendto(frame, (name, 0))
                    out["udp"].append("%s via %s to %s" % (a, name, dmac.hex(":")))
                except OSError as e:
                    err("udp %s %s" % (a, name), e)
    # TCP handshakes by hand, to every IPv6 host address and neighbour
    # through each neighbour's MAC: SYN, then ACK the SYN-ACK (the canary
    # accepts, which it counts). The guest's kernel, IPv6 off, never RSTs.
    import random
    pending = {}
    for name, idx, mac, v4 in ifaces:
        src6 = lladdr(name, mac)
        for (i, a), m in list(neigh.items()):
            if i != name or not m:
                continue
            for d in dict.fromkeys([a] + list(v6s)):
                sport, seq = 41000 + len(pending), random.getrandbits(32)
                d6 = socket.inet_pton(socket.AF_INET6, d)
                pending[(name, sport)] = (d, d6, bytes.fromhex(m.replace(":", "")), seq)
                try:
                    pk.sendto(eth(pending[(name, sport)][2], mac, 0x86DD, ip6(src6, d6, 6, tcp6(src6, d6, sport, port, seq, 0, 0x02), 64)), (name, 0))
                except OSError as e:
                    err("syn %s" % d, e)
    done = {}
    def on_frame(name, mac, src6, data, nh, s6, d6, pl):
        if nh == 6 and d6 == src6 and len(pl) >= 20:
            sp, dp, sseq = struct.unpack("!HHI", pl[:8])
            key = (name, dp)
            if sp == port and key in pending and pl[13] & 0x12 == 0x12 and key not in done:
                d, dd6, dmac, seq = pending[key]
                pk.sendto(eth(data[6:12], mac, 0x86DD, ip6(src6, s6, 6, tcp6(src6, s6, dp, port, (seq + 1) & 0xffffffff, (sseq + 1) & 0xffffffff, 0x10), 64)), (name, 0))
                done[key] = "%s%%%s:%d" % (d, name, port)
        return len(done) == len(pending)
    if pending:
        frames(time.monotonic() + timeout, on_frame)
    out["raw_tcp"] = sorted(done.values())
    out["raw_tcp_tried"] = len(pending)
print(json.dumps(out))
"""


@dataclass(frozen=True)
class FrontResult:
    """A request with the names the guest chose. ``body`` may hold an echoed
    token: compare, never print."""

    what: str
    connect_status: int
    status: int
    error: str = ""
    body: str = field(default="", repr=False)

    @property
    def echo(self) -> dict | None:
        if self.status != 200:
            return None
        try:
            data = json.loads(self.body.strip().splitlines()[-1] if self.body.strip() else "")
        except (ValueError, IndexError):
            return None
        return data if isinstance(data, dict) and "authorization" in data else None

    def describe(self) -> str:
        answered = "an upstream echo" if self.echo is not None else "no upstream echo"
        return (f"{self.what}: CONNECT {self.connect_status or '-'}, status {self.status or '-'}, "
                f"{answered}{', ' + self.error if self.error else ''}")


def front(bottle: Bottle, *, mode: str, target: str, sni: str | None = None,
          host: str | None = None, path: str = "/", auth: str | None = None,
          extra: str | None = None, log: ProbeLog, name: str = "front",
          timeout: float = 8.0, user: str = "node") -> FrontResult:
    """One request through the guest's first hop with every name chosen:
    ``mode`` ``tls`` (CONNECT ``target``, port 443 unless given; ClientHello SNI ``sni``, inner
    ``Host: host``), ``tunnel`` (CONNECT, then cleartext HTTP inside) or
    ``plain`` (``GET http://target/path`` with ``Host: host``). None omits
    the SNI or the Host header; ``extra`` is one more ``Name: value`` header
    line. Python stdlib in the guest (raw sockets), as ``user``."""
    argv = ["python3", "-c", _FRONT_SCRIPT, mode, target, sni or "-", host or "-", path,
            auth or "-", f"{timeout:g}", extra or "-"]
    result = _exec(bottle, argv, log=log, name=name, timeout=timeout, user=user)
    data = _json_out(result, "front")
    what = f"{mode} {target} sni={sni} host={host}"
    out = FrontResult(what, int(data.get("connect_status") or 0), int(data.get("status") or 0),
                      (data.get("error") or "")[-300:], data.get("body") or "")
    log.add(f"{name} result", 0.0, out.describe())
    return out


@dataclass(frozen=True)
class HostRawResult:
    """What one `host_raw` run did as ``uid``."""

    uid: int
    packet: str  # "yes" when AF_PACKET was allowed, else the error
    neighbours: tuple[str, ...]
    tcp: tuple[TcpResult, ...]
    udp_sent: tuple[str, ...]
    errors: tuple[str, ...]
    raw_tcp: tuple[str, ...] = ()  # hand-made handshakes that got a SYN-ACK (and were ACKed)
    raw_tcp_tried: int = 0

    @property
    def raw(self) -> bool:
        return self.packet == "yes"


def host_raw(bottle: Bottle, v4: Sequence[str], v6: Sequence[str], port: int, token: str, *,
             user: str, log: ProbeLog, timeout: float = 2.0) -> HostRawResult:
    """Run `_HOST_RAW_SCRIPT` in the guest as ``user`` against this host's
    addresses ``v4``/``v6`` and the canary ``port`` (TCP dials, and UDP
    datagrams carrying ``token`` where raw frames are allowed)."""
    result = _exec(bottle, ["python3", "-I", "-c", _HOST_RAW_SCRIPT, str(int(port)),
                            json.dumps(list(v4)), json.dumps(list(v6)), token, f"{timeout:g}"],
                   log=log, name=f"host-raw ({user})", timeout=timeout + 5, user=user)
    data = _json_out(result, "host-raw")
    tcp_rows = tuple(TcpResult(r["target"], r["connected"], r["error"], r["seconds"])
                     for r in data["tcp"])
    out = HostRawResult(int(data["uid"]), data["packet"], tuple(data["neighbours"]), tcp_rows,
                        tuple(data["udp"]), tuple(data["errors"]), tuple(data["raw_tcp"]),
                        int(data["raw_tcp_tried"]))
    log.add(f"host-raw ({user}) result", 0.0,
            f"uid {out.uid}, AF_PACKET {out.packet}, neighbours {list(out.neighbours)}, "
            f"{len(out.udp_sent)} udp frames, raw handshakes {list(out.raw_tcp)} of "
            f"{out.raw_tcp_tried}, tcp connected "
            f"{[r.target for r in tcp_rows if r.connected]}")
    return out


# -- issue 16: what the guest's processes hold (LIVE-PRIVS) ------------------------------

# Linux capability numbers (include/uapi/linux/capability.h).
CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")


def cap_names(mask: int) -> frozenset[str]:
    """Names of the capability bits set in ``mask`` (unknown bits as ``CAP_<n>``)."""
    return frozenset(CAP_NAMES[i] if i < len(CAP_NAMES) else f"CAP_{i}"
                     for i in range(64) if mask >> i & 1)


# /proc/self/status and the cgroup's limits, cgroup v2 or v1 (whichever the
# guest has), read by the process itself: nothing is dialled.
_PRIVS_SCRIPT = r"""
import json, os
st = {}
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    st[k] = v.strip()
def read(*paths):
    for p in paths:
        try:
            return open(p).read().strip()
        except OSError:
            pass
    return None
cg = {"memory": read("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
      "pids": read("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"),
      "cpu_max": read("/sys/fs/cgroup/cpu.max"),
      "cfs_quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"),
      "cfs_period": read("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")}
print(json.dumps({"uid": os.getuid(), "CapEff": st.get("CapEff"), "CapPrm": st.get("CapPrm"),
                  "CapBnd": st.get("CapBnd"), "CapAmb": st.get("CapAmb"),
                  "NoNewPrivs": st.get("NoNewPrivs"), "cgroup": cg}))
"""


@dataclass(frozen=True)
class Privileges:
    """One process's view of itself (``uid``), and of its cgroup's limits."""

    uid: int
    effective: frozenset[str]
    permitted: frozenset[str]
    bounding: frozenset[str]
    ambient: frozenset[str]
    no_new_privs: bool | None
    memory_bytes: int | None  # None: "max" (no limit) or unreadable
    pids: int | None
    cpus: float | None
    raw: Mapping[str, object]


def _limit(text: str | None) -> int | None:
    if text is None or text == "max":
        return None
    value = int(text)
    return None if value >= 1 << 62 else value  # cgroup v1's "unlimited"


def privileges(bottle: Bottle, *, user: str, log: ProbeLog, timeout: float = 10.0) -> Privileges:
    """Read ``/proc/self/status`` (capabilities, NoNewPrivs) and the cgroup
    limits (memory, pids, CPU quota) as ``user`` in the guest."""
    result = _exec(bottle, ["python3", "-I", "-c", _PRIVS_SCRIPT], log=log,
                   name=f"privileges ({user})", timeout=timeout, user=user)
    d = _json_out(result, "privileges")
    cg = d["cgroup"]
    cpus = None
    if cg.get("cpu_max"):
        quota, _, period = cg["cpu_max"].partition(" ")
        cpus = None if quota == "max" else int(quota) / int(period or 100000)
    elif cg.get("cfs_quota") and cg.get("cfs_period") and int(cg["cfs_quota"]) > 0:
        cpus = int(cg["cfs_quota"]) / int(cg["cfs_period"])
    nnp = d.get("NoNewPrivs")
    out = Privileges(
        uid=int(d["uid"]), effective=cap_names(int(d["CapEff"] or "0", 16)),
        permitted=cap_names(int(d["CapPrm"] or "0", 16)),
        bounding=cap_names(int(d["CapBnd"] or "0", 16)),
        ambient=cap_names(int(d["CapAmb"] or "0", 16)),
        no_new_privs=None if nnp is None else nnp == "1",
        memory_bytes=_limit(cg.get("memory")), pids=_limit(cg.get("pids")), cpus=cpus, raw=d)
    log.add(f"privileges ({user}) result", 0.0,
            f"uid {out.uid}, CapEff {sorted(out.effective)}, CapBnd {sorted(out.bounding)}, "
            f"NoNewPrivs {nnp}, memory {out.memory_bytes}, pids {out.pids}, cpus {out.cpus}")
    return out


# -- issue 16: modules node plants for root to import (LIVE-ROOT-EXEC-CLEAN) ----------------

# Modules a Python run imports from sys.path before the standard library
# (``json``), or on start-up (``sitecustomize``, ``usercustomize``). Each
# planted copy, when imported, drops ``<marker>-<name>-<uid>`` into /tmp and
# then steps aside (``json`` loads the real one), so node's own Python keeps
# working while the plant is in place.
PLANTED_MODULES = ("json", "sitecustomize", "usercustomize")

_PLANT_BODY = r'''
import os as _os, sys as _sys
try:
    open("/tmp/%(marker)s-%%s-%%d" %% (__name__, _os.getuid()), "w").close()
except OSError:
    pass
if __name__ == "json":
    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
    del _sys.modules["json"]
    import json as _real
    _sys.modules["json"] = _real
    globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
'''

_PLANT_SCRIPT = r"""
import os, site, sys, json
marker, body, dirs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
user_site = site.getusersitepackages()
out = []
for d in dirs + [user_site]:
    try:
        os.makedirs(d, exist_ok=True)
        for name in json.loads(sys.argv[4]):
            p = os.path.join(d, name + ".py")
            if not os.path.exists(p):
                with open(p, "w") as f:
                    f.write(body)
                out.append(p)
    except OSError as e:
        print("cannot plant in %s: %s" % (d, e), file=sys.stderr)
print(json.dumps(out))
"""


def plant_modules(bottle: Bottle, dirs: Sequence[str], marker: str, *,
                  log: ProbeLog) -> list[str]:
    """As node: write `PLANTED_MODULES` into each of ``dirs`` and node's
    user site-packages (never over an existing file). Returns the paths
    written (for `unplant_modules`)."""
    body = _PLANT_BODY % {"marker": marker}
    result = _exec(bottle, ["python3", "-I", "-c", _PLANT_SCRIPT, marker, body,
                            json.dumps(list(dirs)), json.dumps(list(PLANTED_MODULES))],
                   log=log, name="plant modules (node)", timeout=10.0)
    return list(_json_out(result, "plant"))


def unplant_modules(bottle: Bottle, paths: Sequence[str], marker: str, *, log: ProbeLog) -> None:
    """Remove what `plant_modules` wrote, and the markers (as root: root's
    own markers are root's files in sticky /tmp)."""
    if paths:
        _exec(bottle, ["rm", "-f", *paths], log=log, name="unplant modules", timeout=10.0)
    _exec(bottle, ["sh", "-c", f'rm -f /tmp/{marker}-*'], log=log, name="remove markers",
          timeout=10.0, user="root")


def root_markers(bottle: Bottle, marker: str, *, log: ProbeLog) -> list[str]:
    """Markers the planted modules left while running as uid 0."""
    result = _exec(bottle, ["sh", "-c", f'ls /tmp 2>/dev/null | grep -e "^{marker}-.*-0$" || true'],
                   log=log, name="root markers", timeout=10.0)
    return sorted(result.stdout.split())
