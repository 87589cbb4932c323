"""Time one full docker bottle lifecycle against the bare docker work it needs.

    python bench/lifecycle.py [--scenario routed|unrouted] [--json] [--no-up]

Lifecycle: launch (the reference docker backend, through the live harness,
with its test upstream), every live probe once, teardown. Every command it
runs is traced; the bare run then does the same number of each engine
operation -- network create/connect/rm, container create/start/run/rm,
exec, cp, reads -- with nothing in them (containers that sleep, ``exec
true``, a tiny file), so the ratio says what the bottle costs beyond the
engine floor (CA rehash, proxies, the agent CLI, probe timeouts). Budget:
the `lifecycle` row of README.md's Benchmarks table (printed with whether it
was met; exit 1 when not). No fixed sleep anywhere: readiness is polled
(`bottle_api.runner.poll`), probes are bounded.

Then (unless ``--no-up``) ``bottle-ref up`` of a routed bottle, images
warm, timed against the `routed-up` row of the same table, and ``down``
(a throwaway HOME; the route's token only in the environment).

Needs a docker engine and the images (export what
``python -m bottle_ref.images all --print-env`` prints).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from bottle_ref.backends.docker import DockerBackend
from bottle_api.runner import SubprocessRunner
from conformance.live import probes, upstream
from conformance.live.canary import Canary
from conformance.live.engine import Engine
from conformance.live.harness import (
    PLACEHOLDER,
    SCENARIOS,
    TOKEN_BODY,
    TOKEN_PREFIX,
    LiveBottle,
    LiveHarness,
    TracingRunner,
    new_token,
)
from conformance.live.resources import Resources

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budgets import budget, verdict  # noqa: E402
UNREACHABLE_TIMEOUT = 1.0  # in-guest connect timeout for probes that must fail


class BenchError(RuntimeError):
    pass


def check(ok: bool, what: str) -> None:
    if not ok:
        raise BenchError(f"probe failed: {what}")


def all_probes(lb: LiveBottle, h: LiveHarness, canary: Canary) -> int:
    """Every live probe once, asserting just enough that a broken bottle
    cannot look fast. Returns how many probes ran."""
    b, log = lb.bottle, probes.ProbeLog()
    check(b.exec(["echo", "bench"]).stdout.strip() == "bench", "smoke")
    framed = probes.agent_framed(b, lb.plan.agent, 'id -un; printf "%s\\n" "$HOME"', h.runner,
                                 log=log)
    check(framed.stdout.split()[:2] == ["node", "/home/node"], "exec user")
    sites = lb.wait_ready(log)
    canary.self_test()
    targets = [("127.0.0.1", canary.port), ("@gateway", canary.port)]
    targets += [(ip, p) for ip in sites.all_ips() for p in (80, 443)]
    for addrs in b.internal_endpoints().values():
        targets += [(a.rpartition(":")[0], int(a.rpartition(":")[2])) for a in addrs]
    *direct, hop = probes.tcp(b, targets + [("@first-hop", 0)], log=log,
                              timeout=UNREACHABLE_TIMEOUT)
    check(hop.connected and not any(r.connected for r in direct), "loopback/bypass")
    check(probes.http(b, f"http://{upstream.UPSTREAM_HOST}/bench", log=log).echo is not None,
          "pipelock answers")
    check(probes.http(b, f"http://{upstream.DENIED_HOST}/bench", log=log).status == 403,
          "pipelock denies")
    auth = {"Authorization": f"Bearer {PLACEHOLDER}"}
    if lb.plan.routed:
        r = probes.http(b, f"https://{upstream.UPSTREAM_HOST}/bench-auth", headers=auth, log=log)
        check(r.echo is not None and r.echo["authorization"] == f"Bearer {h.token}", "auth")
        decoy = new_token()
        b.exec(["sh", "-c", f"printf '%s' {decoy} > /home/node/.bench-decoy"])
        found = probes.scan(b, TOKEN_PREFIX, TOKEN_BODY, log=log,
                            changed_within=h.token_age()).found
        check(hashlib.sha256(decoy.encode()).hexdigest() in found, "scan control")
        check(hashlib.sha256(h.token.encode()).hexdigest() not in found, "no token in guest")
    check(probes.tls(b, upstream.UPSTREAM_HOST, "/bench-tls", trust="system", log=log).ok, "ca trust")
    check(not probes.tls(b, upstream.UPSTREAM_HOST, "/bench-tls", trust="none", log=log).ok,
          "ca control")
    if lb.plan.prompt:
        st = b.exec(["stat", "-c", "%U %a", lb.plan.prompt_path], user="root")
        check(st.stdout.split() == ["node", "600"], "prompt file")
    if lb.plan.supervise:
        cfg = b.exec(["cat", "/home/node/.claude.json"])
        check("supervise" in json.loads(cfg.stdout or "{}").get("mcpServers", {}), "mcp")
    if lb.plan.skills:
        check(b.exec(["find", "/home/node/.claude/skills", "!", "-user", "node"],
                     user="root").stdout.strip() == "", "skills owner")
    return len(log.entries)


def lifecycle(scenario: str, tmp: Path) -> tuple[float, Counter, int]:
    """Launch, probe, tear down; the wall time and what the engine was asked."""
    tracer = TracingRunner(SubprocessRunner())
    h = LiveHarness(DockerBackend(), tracer, tmp, timeout=120)
    with Canary(lifetime=600) as canary:
        t0 = time.monotonic()
        try:
            n = all_probes(h.launch(scenario), h, canary)
        finally:
            h.cleanup()
        seconds = time.monotonic() - t0
    return seconds, classify(tracer.argvs), n


def classify(argvs) -> Counter:
    """How many of each engine operation the lifecycle ran (and, for the
    removals, how many objects they removed)."""
    c: Counter = Counter()
    for a in argvs:
        if a[:1] != ("docker",):
            c["host (openssl...)"] += 1
        elif a[1] == "network" and a[2] in ("create", "connect", "rm"):
            c[f"network {a[2]}"] += 1
            if a[2] == "rm":
                c["networks removed"] += len(a) - 3
        elif a[1] in ("create", "run", "start", "exec", "cp", "stop"):
            c[a[1]] += 1
        elif a[1] == "rm":
            c["rm"] += 1
            c["containers removed"] += len([x for x in a[2:] if not x.startswith("-")])
        else:
            c["read (inspect, logs, port...)"] += 1
    return c


def bare(counts: Counter, image: str, tmp: Path) -> float:
    """The same engine operations, same counts, with nothing in them:
    containers that only sleep, ``exec true``, a tiny ``cp``, ``inspect``
    for every read; then the same number of removals."""
    eng = Engine(SubprocessRunner())
    res = Resources(eng, "bench" + secrets.token_hex(2))
    payload = tmp / "payload.txt"
    payload.write_text("bench\n")
    nets = [res.name("net") for _ in range(max(1, counts["network create"]))]
    t0 = time.monotonic()
    try:
        for n in nets:
            eng.run("network", "create", "--label", res.label, res.network(n))
        created, running = [], []
        for _ in range(counts["create"]):
            name = res.container(res.name("ctr"))
            eng.run("create", "--name", name, "--label", res.label, "--network", nets[0],
                    "--entrypoint", "sleep", image, "infinity")
            created.append(name)
        for k in range(counts["network connect"]):
            if created and len(nets) > 1:
                eng.run("network", "connect", nets[1 + (k // len(created)) % (len(nets) - 1)],
                        created[k % len(created)])
        for k in range(counts["start"]):
            eng.run("start", created[k % len(created)])
        running = list(created)
        for _ in range(counts["run"]):
            name = res.container(res.name("ctr"))
            eng.run("run", "-d", "--name", name, "--label", res.label, "--network", nets[0],
                    "--entrypoint", "sleep", image, "infinity")
            running.append(name)
        for i in range(counts["exec"]):
            eng.run("exec", running[i % len(running)], "true")
        for i in range(counts["cp"]):
            eng.run("cp", str(payload), f"{running[i % len(running)]}:/tmp/payload-{i}")
        for i in range(counts["read (inspect, logs, port...)"]):
            eng.run("inspect", "--format", "{{.Id}}", running[i % len(running)])
        for i in range(counts["stop"]):
            eng.run("stop", "--time", "5", running[i % len(running)])
        groups = max(1, counts["rm"])
        for g in range(groups):
            batch = running[g::groups]
            if batch:
                eng.run("rm", "-f", *batch)
        groups = max(1, counts["network rm"])
        for g in range(groups):
            batch = nets[g::groups]
            if batch:
                eng.run("network", "rm", *batch)
        seconds = time.monotonic() - t0
    finally:
        res.cleanup()  # only what is still there (nothing, unless a step failed)
    return seconds


ROUTED_SPEC = """\
name: {name}
agent: claude
egress:
  routes:
    - {{host: api.anthropic.com, token_env: BENCH_ROUTED_TOKEN, header: Authorization, scheme: Bearer}}
"""


def routed_up(tmp: Path) -> float:
    """Wall seconds of ``bottle-ref up`` of a routed bottle (then ``down``,
    whatever happened). Raises `BenchError` when up or down fails."""
    cli = Path(sys.executable).with_name("bottle-ref")
    name = "bench-up-" + secrets.token_hex(3)
    spec = tmp / "routed.yaml"
    spec.write_text(ROUTED_SPEC.format(name=name))
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "BENCH_ROUTED_TOKEN": new_token()}
    t0 = time.monotonic()
    try:
        up = subprocess.run([str(cli), "up", str(spec)], env=env, capture_output=True,
                            text=True, timeout=300)
        seconds = time.monotonic() - t0
    finally:
        down = subprocess.run([str(cli), "down", name], env=env, capture_output=True,
                              text=True, timeout=300)
    for what, r in (("up", up), ("down", down)):
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
            raise BenchError(f"bottle-ref {what} failed: {tail[0]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="routed", choices=("routed", "unrouted"))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeat", type=int, default=3, metavar="N",
                    help="rounds (default 3); the median round is reported")
    ap.add_argument("--no-up", action="store_true",
                    help="skip timing `bottle-ref up` of a routed bottle")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat: at least 1")
    target = budget("lifecycle")
    with tempfile.TemporaryDirectory(prefix="bottle-bench-") as d:
        tmp = Path(d)
        probe_h = LiveHarness(DockerBackend(), SubprocessRunner(), tmp / "check", timeout=60)
        why = probe_h.engine.answers() or probe_h.backend.live_unavailable(probe_h.runner)
        if why:
            print(f"bench: {why}", file=sys.stderr)
            return 2
        try:
            plan = probe_h.prepare(SCENARIOS[args.scenario])
        except pytest.skip.Exception as exc:  # environment_broken: e.g. no image
            print(f"bench: {exc.msg}", file=sys.stderr)
            return 2
        # Rounds alternate lifecycle and bare run, so a load change on a
        # shared machine hits both; the median round is the figure.
        rounds, ups = [], []
        for i in range(args.repeat):
            life, counts, n_probes = lifecycle(args.scenario, tmp / f"life{i}")
            floor = bare(counts, plan.bundle_image_ref, tmp)
            rounds.append((life / floor if floor else float("inf"), life, floor))
            if not args.no_up:
                (tmp / f"up{i}").mkdir()
                try:
                    ups.append(routed_up(tmp / f"up{i}"))
                except (BenchError, subprocess.TimeoutExpired) as exc:
                    print(f"bench: {exc}", file=sys.stderr)
                    return 2
        ratio, life, floor = sorted(rounds)[len(rounds) // 2]
        up_s = sorted(ups)[len(ups) // 2] if ups else None
    up_target = budget("routed-up") if up_s is not None else None
    met = ratio < target and (up_s is None or up_s < up_target)
    result = {"scenario": args.scenario, "lifecycle_s": round(life, 3), "bare_s": round(floor, 3),
              "ratio": round(ratio, 2), "budget": target, "met": ratio < target, "probes": n_probes,
              "operations": dict(counts)}
    result["rounds"] = [{"ratio": round(r, 2), "lifecycle_s": round(a, 3), "bare_s": round(b, 3)}
                        for r, a, b in rounds]
    if up_s is not None:
        result["routed_up"] = {"seconds": round(up_s, 3), "budget": up_target,
                               "met": up_s < up_target, "rounds": [round(u, 3) for u in ups]}
    if args.json:
        print(json.dumps(result))
    else:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"lifecycle ({args.scenario}: up, {n_probes} probe steps, down): {life:7.2f} s")
        print(f"bare docker ops, same counts:                {floor:7.2f} s")
        print(f"  operations: {ops}")
        if len(rounds) > 1:
            print("  rounds: " + ", ".join(f"{r:.2f}x ({a:.1f}/{b:.1f} s)" for r, a, b in rounds)
                  + (f"; up {', '.join(f'{u:.2f} s' for u in ups)}" if ups else ""))
        print(f"lifecycle: {verdict(ratio, target, 'x')}")
        if up_s is not None:
            print(f"routed-up (bottle-ref up, routed, images warm): {verdict(up_s, up_target, 's')}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
