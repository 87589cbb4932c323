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
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from bottle_api.backend import Bottle
from bottle_api.runner import Completed, Runner

T = TypeVar("T")
EXEC_SLACK = 15.0  # host-side exec timeout beyond the in-guest one
CURL_MARK = "@@bottle-probe@@"
# TCP targets resolved inside the guest: the host:port of $HTTPS_PROXY (a
# positive control), and the guest's default gateway (skipped if none).
PROXY_TARGET = "@first-hop"
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
    if host == "@first-hop":
        hop = urlsplit(os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or "")
        host, port = hop.hostname or "", hop.port or 0
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
    means the guest's own first hop (a positive control), `GATEWAY_TARGET`
    its default gateway."""
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
                     body.removesuffix("\n"))
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

_SCAN_SCRIPT = r"""
import hashlib, json, os, re, sys
pat = re.compile(sys.argv[1].encode())
roots = sys.argv[2:]
found = {}
def scan(data, where):
    for m in pat.finditer(data):
        found.setdefault(hashlib.sha256(m.group()).hexdigest(), set()).add(where)
def read(path, limit=8 << 20):
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return b""
files = 0
for root in roots:
    for d, dirs, names in os.walk(root):
        if d.startswith("/proc"):
            dirs[:] = []
            continue
        for n in names:
            p = os.path.join(d, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            files += 1
            scan(read(p), p)
me = str(os.getpid())
procs = 0
for pid in os.listdir("/proc"):
    if pid.isdigit() and pid != me:
        procs += 1
        for part in ("environ", "cmdline"):
            scan(read("/proc/%s/%s" % (pid, part)), "/proc/%s/%s" % (pid, part))
print(json.dumps({"files": files, "procs": procs,
                  "found": {h: sorted(w)[:5] for h, w in found.items()}}))
"""


@dataclass(frozen=True)
class ScanResult:
    """sha256 of each match -> where it was found (never the match itself)."""

    files: int
    procs: int
    found: Mapping[str, tuple[str, ...]]


def scan(bottle: Bottle, pattern: str, roots: Sequence[str], *, log: ProbeLog,
         timeout: float = 60.0) -> ScanResult:
    """As root: every regular file under ``roots`` and every process's
    environ and cmdline, searched for ``pattern``; only hashes come back."""
    result = _exec(bottle, ["python3", "-c", _SCAN_SCRIPT, pattern, *roots], log=log,
                   name="scan", timeout=timeout, user="root")
    data = _json_out(result, "scan")
    log.add("scan result", 0.0, f"{data['files']} files, {data['procs']} processes, "
            f"{len(data['found'])} distinct matches")
    return ScanResult(data["files"], data["procs"],
                      {h: tuple(w) for h, w in data["found"].items()})


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
