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
    result = _exec(bottle, ["python3", "-c", _TCP_SCRIPT, spec], log=log, name=name,
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
    result = _exec(bottle, ["python3", "-c", _TLS_SCRIPT, host, path, trust, f"{timeout:g}"],
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
procs = 0
for pid in os.listdir("/proc"):
    if pid.isdigit() and pid != me:
        procs += 1
        for part in ("environ", "cmdline"):
            scan_file("/proc/%s/%s" % (pid, part))
print(json.dumps({"files": files, "older": older, "procs": procs, "sockets": sorted(sockets)[:200],
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

    def where(self, digest: str) -> dict[str, tuple[str, ...]]:
        return dict(self.found.get(digest, {}))


def scan(bottle: Bottle, prefix: str, body: str, roots: Sequence[str] = ("/",), *,
         log: ProbeLog, prune: Sequence[str] = SCAN_PRUNE, changed_within: float = 0.0,
         timeout: float = 60.0) -> ScanResult:
    """As root: every regular file under ``roots`` (but ``prune``) and every
    process's environ and cmdline, searched for ``prefix`` + regex ``body``,
    raw and encoded (see `_SCAN_SCRIPT`); only hashes come back.

    ``changed_within`` > 0 reads only files whose ctime or mtime is at most
    that many seconds old by the guest's own clock (the rest are stat-ed
    and counted): a value created N seconds ago can only be in a file
    written since, and ctime cannot be set back from user space. Pass the
    age of the searched value plus slack; the image's untouched files are
    then not re-read on every run."""
    result = _exec(bottle, ["python3", "-c", _SCAN_SCRIPT, prefix, body, json.dumps(list(prune)),
                            f"{changed_within:.3f}", *roots],
                   log=log, name="scan", timeout=timeout, user="root")
    data = _json_out(result, "scan")
    log.add("scan result", 0.0, f"{data['files']} files read, {data['older']} older skipped, "
            f"{data['procs']} processes, {len(data['found'])} distinct matches, "
            f"{len(data['sockets'])} sockets")
    return ScanResult(data["files"], data["procs"],
                      {h: {e: tuple(w) for e, w in encs.items()}
                       for h, encs in data["found"].items()},
                      tuple(data["sockets"]), data["older"])


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

    result = _exec(bottle, ["python3", "-c", _NET_SCRIPT], log=log, name="routes+mounts",
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


def concurrently(*calls: Callable[[], T]) -> list[T]:
    """Run independent probes at once (each is its own bounded exec), so
    probes that must time out cost one timeout, not one each."""
    with ThreadPoolExecutor(max_workers=len(calls) or 1) as pool:
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
