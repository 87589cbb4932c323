"""Deliberately broken backends: each reintroduces ONE defect into a reference
backend, so the meta-tests (`test_meta.py`) can prove the conformance suite
fails it with the intended clause ID (DESIGN §6: "meta-tests with
deliberately broken backends prove each clause can fail").

Every class is a small subclass of `DockerBackend` or `SmolmachinesBackend`
whose docstring quotes the seed bug or clause it breaks. `BROKEN` maps each
clause ID to the broken backends meant to fail it; ``also`` on a class is
the documented allow-list of other clauses the same defect legitimately
breaks (e.g. dropping runuser breaks both EXEC-USER and EXEC-RESUME).

The reference backends hard-code their runner use and bottle class, so the
defects enter through four small seams (the mixins below):

- `prepare` overrides rewrite the plan (pure defects: hop, daemons, lists,
  placeholders, env);
- `_RunnerDefect.run_through` sees every command launch, provisioning and
  close run, and may alter, add or drop one (launch-time defects);
- `_BottleDefect.bottle_cls` retypes the returned bottle (agent_argv defects);
- `_SmolChannelDefect.channel_cls` swaps the smolvm exec framing before
  provisioning (the seeds' runuser/HOME bugs were all smolmachines);

plus three direct overrides of ``launch`` / ``_bring_up`` (missing-token
refusal, pack in prepare, cleanup after a failed launch).

These backends are for the static tiers only: never launch one for real.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from bottle_ref import jwt as _jwt
from bottle_ref import yamltext
from bottle_api.backend import Backend, Bottle, Progress, _quiet
from bottle_ref.backends.docker import DockerBackend, DockerBottle, DockerPlan, docker_exec_argv
from bottle_ref.backends.smolmachines import (
    ROUTE_HOST_RELAY,
    SOCKET_ROUTE_ENV,
    host_socket,
    socket_daemons,
    SmolmachinesBackend,
    SmolmachinesBottle,
    SmolmachinesPlan,
    PTY_RESIZE_SCRIPT,
    SmolvmChannel,
    artifact_path,
)
from bottle_ref.ca import ensure_ca
from bottle_ref.credentials import CLAUDE_CREDENTIALS_GUEST, CODEX_AUTH_GUEST
from bottle_api.host import CLAUDE_CREDENTIALS, CODEX_AUTH
from bottle_api.plan import EGRESS, GIT_GATE, PIPELOCK, PORTS, SUPERVISE, Plan
from bottle_ref.provision import CA_GUEST_PATH, NODE, NODE_HOME, PROMPT_PATH, ROOT, ProvisionError
from bottle_api.conventions import LABEL_KEY
from bottle_api.runner import READY, Completed, DelegatingRunner, Runner
from bottle_ref.state import state_files, write_state

# A fixed "now" for the Codex exp defect: the seed's now+1h, but computed once
# per process so two prepares of one spec stay equal (only CRED-EXP breaks).
_NOW = int(time.time())


class Broken:
    """A backend with one deliberate defect (see `BROKEN` for its clause).

    ``also``: other clause IDs this defect legitimately breaks, each with
    the reason; the meta-test fails on any other FAILED clause.
    ``suite_gap``: set when the suite does NOT catch the defect (a finding
    for the suite, reported to the lead); the meta-test is then a strict
    xfail with this reason, so it turns red the day the suite catches it.
    ``reference_snapshots``: run against the reference backend's reviewed
    snapshots (``snapshots/<name>``) instead of a fresh snapshot dir: only
    for defects that nothing but snapshot equality can see (SNAP-MATCH).
    """

    also: ClassVar[Mapping[str, str]] = {}
    suite_gap: ClassVar[str | None] = None
    # A regex the FAILED clause's reason must match (issue 16: "fails it for
    # the named reason"); None checks the clause ID only.
    reason: ClassVar[str | None] = None
    reference_snapshots: ClassVar[bool] = False


# -- seams ----------------------------------------------------------------------


class _DefectRunner(DelegatingRunner):
    """Delegates to the suite's runner, except that `run` goes through the
    broken backend's `run_through` (which may alter, add or drop commands)."""

    def __init__(self, backend: "_RunnerDefect", plan: Plan, inner: Runner):
        super().__init__(inner)
        self.backend, self.plan = backend, plan

    def run(self, argv, **kw):
        return self.backend.run_through(self.plan, self.inner, [str(a) for a in argv], **kw)


class _RunnerDefect(Broken):
    """Launch (and the bottle's later commands) through `run_through`."""

    def launch(self, plan, runner, *, progress: Progress = _quiet):
        return super().launch(plan, _DefectRunner(self, plan, runner), progress=progress)

    def run_through(self, plan: Plan, runner: Runner, argv: list[str], **kw: Any) -> Completed:
        return runner.run(argv, **kw)


class _BottleDefect(Broken):
    """Retype the launched bottle to ``bottle_cls`` (a subclass of the
    reference bottle with one method broken; no new state)."""

    bottle_cls: ClassVar[type[Bottle]]

    def launch(self, plan, runner, *, progress: Progress = _quiet):
        bottle = super().launch(plan, runner, progress=progress)
        bottle.__class__ = self.bottle_cls
        return bottle


class _SmolChannelDefect(Broken):
    """Give the smolmachines bottle a broken exec framing before provisioning."""

    channel_cls: ClassVar[type[SmolvmChannel]]

    def _bring_up(self, bottle, progress):
        bottle.channel = self.channel_cls(bottle.ident)
        super()._bring_up(bottle, progress)


# -- argv helpers (independent of the suite's own readers) -------------------------


def guest_tail_index(argv: Sequence[str]) -> int | None:
    """Index of the in-guest command of a docker/smolvm exec argv, else None."""
    if argv[:3] == ["smolvm", "machine", "exec"] and "--" in argv:
        i = argv.index("--") + 1
        return i + 4 if argv[i:i + 4] == ["runuser", "-u", NODE, "--"] else i
    if argv[:2] == ["docker", "exec"]:
        i = 2
        while i < len(argv):
            if argv[i] in ("-u", "-e", "-w"):
                i += 2
            elif argv[i].startswith("-"):
                i += 1
            else:
                return i + 1
    return None


def guest_tail(argv: Sequence[str]) -> list[str]:
    i = guest_tail_index(argv)
    return [] if i is None else list(argv[i:])


def with_tail(argv: Sequence[str], tail: Sequence[str]) -> list[str]:
    """``argv`` with its in-guest command replaced by ``tail`` (same framing)."""
    i = guest_tail_index(argv)
    assert i is not None, argv
    return [*argv[:i], *tail]


def sh_script(argv: Sequence[str]) -> str | None:
    tail = guest_tail(argv)
    return tail[2] if tail[:2] == ["sh", "-c"] and len(tail) == 3 else None


def ok(argv: Sequence[str], stdout: str = "") -> Completed:
    """What a dropped command "returned": success, never recorded."""
    return Completed(tuple(argv), 0, stdout, "")


def insert_after(argv: list[str], anchor: Callable[[int, str], bool], extra: Sequence[str]) -> list[str]:
    i = next(i for i, tok in enumerate(argv) if anchor(i, tok))
    return [*argv[:i + 1], *extra, *argv[i + 1:]]


def is_bundle_run(argv: Sequence[str]) -> bool:
    return argv[:3] == ["docker", "run", "-d"] and any(a.endswith("-bundle") for a in argv[:5])


# -- plan helpers -------------------------------------------------------------------


# libyaml's loader where PyYAML has it: the pure-Python parser cost ~7 ms a
# plan, and every pipelock broken backend calls this once per example.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def with_pipelock(plan: Plan, change: Callable[[dict], None]) -> Plan:
    """The plan with its pipelock.yaml parsed, changed in place, and written
    again the way the reference writes it (`bottle_ref.yamltext.dump`)."""
    data = yaml.load(plan.pipelock.config_yaml, Loader=_LOADER)  # noqa: S506 - a safe loader
    change(data)
    text = yamltext.dump(data)
    return dataclasses.replace(plan, pipelock=dataclasses.replace(plan.pipelock, config_yaml=text))


def with_guest_file(plan: Plan, path: str, change: Callable[[dict], None]) -> Plan:
    """The plan with the JSON guest file at ``path`` changed (if present)."""
    files = []
    for gf in plan.guest_files:
        if gf.path == path:
            data = json.loads(gf.content)
            change(data)
            gf = dataclasses.replace(gf, content=json.dumps(data, indent=2) + "\n")
        files.append(gf)
    return dataclasses.replace(plan, guest_files=tuple(files))


def _passthrough(data: dict) -> list[str]:
    return data["tls_interception"]["passthrough_domains"]


# ================================================================================
# prepare defects
# ================================================================================


class CodexExpNowPlus1h(Broken, DockerBackend):
    """Seed "codex_auth": "dummy access/id tokens now inherit the *real* host
    token's exp instead of now+1h". Reintroduced: placeholder exp = now+1h,
    so Codex refreshes when it lapses and drops to the sign-in screen."""

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)

        def fresh_exp(data: dict) -> None:
            for key in ("id_token", "access_token"):
                claims = _jwt.decode_payload(data["tokens"][key])
                claims["exp"] = _NOW + 3600
                data["tokens"][key] = _jwt.encode_unsigned(claims)

        return with_guest_file(plan, CODEX_AUTH_GUEST, fresh_exp)


class CodexPlaceholderKeepsRefreshToken(Broken, DockerBackend):
    """CRED-SHAPE: placeholders "MUST contain no real token material".
    Reintroduced: the Codex placeholder carries the host's real refresh
    token (the one egress must own)."""

    also = {"SECRET-PLAN": "the placeholder is a guest file of the plan, so its repr leaks it"}

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        real = host.home_files.get(CODEX_AUTH)
        if real is None:
            return plan
        refresh = json.loads(real)["tokens"].get("refresh_token")

        def leak(data: dict) -> None:
            data["tokens"]["refresh_token"] = refresh

        return with_guest_file(plan, CODEX_AUTH_GUEST, leak)


class CodexPlaceholderNoLastRefresh(Broken, DockerBackend):
    """CRED-SHAPE: the Codex placeholder must parse as Codex expects,
    including ``last_refresh``. Reintroduced: the key is dropped."""

    def prepare(self, spec, host):
        return with_guest_file(super().prepare(spec, host), CODEX_AUTH_GUEST,
                               lambda data: data.pop("last_refresh", None))


class CodexCaUnset(Broken, DockerBackend):
    """Seed "prepare: set CODEX_CA_CERTIFICATE to the agent CA bundle for
    codex bottles. Codex is rustls and ignores the system store".
    Reintroduced: CODEX_CA_CERTIFICATE is not set."""

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        env = {k: v for k, v in plan.guest_env.items() if k != "CODEX_CA_CERTIFICATE"}
        return dataclasses.replace(plan, guest_env=env)


class ClaudeCaUnset(Broken, SmolmachinesBackend):
    """CRED-CA-CLAUDE: claude bottles MUST set NODE_EXTRA_CA_CERTS to the
    agent CA bundle. Reintroduced: it is not set."""

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        env = {k: v for k, v in plan.guest_env.items() if k != "NODE_EXTRA_CA_CERTS"}
        return dataclasses.replace(plan, guest_env=env)


class RouteHostNotPassthrough(Broken, DockerBackend):
    """Seed "pipelock: ... Egress injects the bearer before pipelock, whose
    header DLP then flags the JWT". Reintroduced: declared route hosts are
    left out of tls_interception.passthrough_domains."""

    def prepare(self, spec, host):
        declared = {r.host for r in spec.routes}
        return with_pipelock(super().prepare(spec, host), lambda d: d["tls_interception"].update(
            passthrough_domains=[h for h in _passthrough(d) if h not in declared]))


class CodexApexOnlyWildcard(Broken, SmolmachinesBackend):
    """Seed "auto tls_passthrough the Codex API hosts ... the hosts are added
    explicitly" (DESIGN §8: a wildcard does not match the apex).
    Reintroduced: chatgpt.com is covered only by *.chatgpt.com."""

    also = {"PIPELOCK-PASS": "chatgpt.com is also an auto route egress injects for"}

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host), lambda d: d["tls_interception"].update(
            passthrough_domains=[h for h in _passthrough(d) if h != "chatgpt.com"]))


class PipelockUnknownKey(Broken, DockerBackend):
    """PIPELOCK-SCHEMA: pipelock treats an unknown key as a hard error.
    Reintroduced: a plausible misspelling, ``tls_interception.passthrough_hosts``."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host), lambda d: d["tls_interception"].update(
            passthrough_hosts=list(_passthrough(d))))


class PipelockForwardProxyOff(Broken, SmolmachinesBackend):
    """PIPELOCK-SCHEMA: ``forward_proxy.enabled`` MUST be true (the agent
    uses pipelock as its forward proxy). Reintroduced: it is false."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host),
                             lambda d: d["forward_proxy"].update(enabled=False))


class PipelockBalanced(Broken, DockerBackend):
    """Issue 9: "Every rendered pipelock.yaml has mode: balanced. Real pipelock
    enforces api_allowlist only in strict mode" (scanner.go New).
    Reintroduced: mode balanced, everything else as the reference renders it."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host), lambda d: d.update(mode="balanced"))


class PipelockEmptyAllowlist(Broken, SmolmachinesBackend):
    """Issue 9: "an empty allowlist allows every host" (scanner.go
    checkAllowlist). Reintroduced: api_allowlist [] in audit mode (strict
    with an empty list would not even load: validate.go validateMode)."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host),
                             lambda d: d.update(mode="audit", api_allowlist=[]))


class PipelockTldWildcard(Broken, DockerBackend):
    """Issue 9: "no bare or TLD-wide wildcards": in api_allowlist ``*.com``
    admits every .com host (MatchDomain). Reintroduced: ``*.com`` allowed."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host),
                             lambda d: d["api_allowlist"].append("*.com"))


class PipelockInterceptionOff(Broken, SmolmachinesBackend):
    """Issue 9: "TLS interception on": with it off pipelock sees no request
    inside HTTPS, so header DLP never runs. Reintroduced: enabled false."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host),
                             lambda d: d["tls_interception"].update(enabled=False))


class PipelockPassthroughTooBroad(Broken, DockerBackend):
    """Issue 9: "passthrough_domains exactly the hosts the plan needs to pass
    through ... nothing broader". Reintroduced: every allowlisted host is
    passed through (none decrypted, none scanned)."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host), lambda d: d["tls_interception"].update(
            passthrough_domains=list(dict.fromkeys(_passthrough(d) + d["api_allowlist"]))))


class PipelockTlsPassthroughDropped(Broken, SmolmachinesBackend):
    """Issue 9: passthrough_domains MUST hold the spec's tls_passthrough.
    Reintroduced: only route hosts are passed through."""

    def prepare(self, spec, host):
        user = set(spec.tls_passthrough) - {r.host for r in spec.routes}
        return with_pipelock(super().prepare(spec, host), lambda d: d["tls_interception"].update(
            passthrough_domains=[h for h in _passthrough(d) if h not in user]))


class PipelockLookaroundRegex(Broken, DockerBackend):
    """Issue 9: "regexes with lookaround or backreferences, which RE2
    refuses" (validate.go validateDLP). Reintroduced: a lookahead pattern."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host), lambda d: d["dlp"]["patterns"].append(
            {"name": "lookahead", "regex": "sk-(?=ant)[a-z]+", "severity": "high"}))


class FirstHopPipelockDespiteRoutes(Broken, DockerBackend):
    """Seed "Auth chain bypassed egress ... the agent always dialed pipelock
    directly". Reintroduced: first hop pipelock although routes exist."""

    also = {
        "PORT-EGRESS-ONLY-WHEN-ROUTED": "the agent then reaches pipelock, not egress",
        "LAUNCH-PROXY-ENV": "HTTPS_PROXY follows the (wrong) first hop",
        "PROV-CA-SELECT": "the guest trusts the pipelock CA of its (wrong) hop",
        "LAUNCH-CA-WHEN-ROUTED": "no egress CA is made for a routed bottle",
    }

    def prepare(self, spec, host):
        return dataclasses.replace(super().prepare(spec, host), first_hop=PIPELOCK)


class EgressUpstreamNotPipelock(Broken, DockerBackend):
    """PLAN-HOP: "egress's upstream proxy MUST always be pipelock".
    Reintroduced: egress dials the internet directly (empty upstream)."""

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        return dataclasses.replace(plan, egress=dataclasses.replace(plan.egress, upstream_proxy=""))


class GitGateMissingWithUpstreams(Broken, DockerBackend):
    """Seed chunk 4b: "daemons_csv = [egress, pipelock] + [git-gate] (if
    upstreams)". Reintroduced: git-gate is left out although upstreams exist."""

    also = {"PROV-GITGATE": "with no gate there is no insteadOf to it"}

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        return dataclasses.replace(plan, daemons=tuple(d for d in plan.daemons if d != GIT_GATE))


class SuperviseMissingWhenEnabled(Broken, SmolmachinesBackend):
    """Seed chunk 4b: "+ [supervise] (if enabled)". Reintroduced: supervise
    is not started although enabled."""

    also = {"PROV-MCP": "no supervise daemon, so nothing is registered",
            "PROV-MCP-USER": "no registration to check the user of",
            "PROV-CODEX-MCP": "no supervise daemon, so codex registers nothing either"}

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        return dataclasses.replace(plan, daemons=tuple(d for d in plan.daemons if d != SUPERVISE))


class SubprocessInPrepare(Broken, SmolmachinesBackend):
    """Seed launch-boundary fix: smolmachines "prepare called
    _ensure_smolmachine which ran docker build". Reintroduced: prepare shells
    out (a cheap stand-in for the build that is harmless to run)."""

    also = {"LAUNCH-PACK-IN-LAUNCH": "its property also refuses any process prepare starts"}

    def prepare(self, spec, host):
        subprocess.run(["true"], check=False)
        return super().prepare(spec, host)


# A pool a backend keeps for slow host probes; its worker is started here,
# at import, long before any prepare() is judged.
_PROBE_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-probe")
_PROBE_POOL.submit(lambda: None).result()


class SubprocessInPreparePool(Broken, DockerBackend):
    """Seed launch-boundary fix, moved off the calling thread: prepare
    checks its image through a probe pool the backend keeps (its worker
    predates the call), so the process starts in another thread than the
    one that called prepare. The purity guard follows the submitted call."""

    also = {"LAUNCH-PACK-IN-LAUNCH": "its property also refuses any process prepare starts"}

    def prepare(self, spec, host):
        _PROBE_POOL.submit(subprocess.run, [sys.executable, "-c", "pass"], check=False).result()
        return super().prepare(spec, host)


class PrepareWritesState(Broken, DockerBackend):
    """PLAN-PURE: prepare makes no filesystem write. Reintroduced: prepare
    pre-writes the bottle's config files into the state dir (launch's job),
    best effort, so an unwritable state root goes unnoticed."""

    also = {
        "LAUNCH-PACK-IN-LAUNCH": "its property also refuses any write prepare makes",
        "LAUNCH-MISSING-TOKEN": "the state dir exists before launch refuses (prepare made it)",
    }

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        try:
            write_state(plan)
        except OSError:
            pass
        return plan


class PrepareNotDeterministic(Broken, DockerBackend):
    """PLAN-PURE: "MUST return equal plans for equal inputs". Reintroduced:
    the plan's state dir carries a per-call counter."""

    also = {"EXEC-ABI": "two recorded launches of one scenario then differ"}

    _calls = 0

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        type(self)._calls += 1
        return dataclasses.replace(plan, state_dir=f"{plan.state_dir}-{self._calls}")


@dataclass(frozen=True, kw_only=True)
class _PackedPlan(SmolmachinesPlan):
    agent_from_path: Path  # the seed's field before the fix


class PackInPrepare(Broken, SmolmachinesBackend):
    """Seed: "SmolmachinesBottlePlan.agent_from_path: Path becomes
    agent_image_ref: str ... prepare stashes only the docker tag; launch
    resolves it into the artifact". Reintroduced: the plan carries the packed
    artifact (prepare's job) and launch trusts it, never packing itself."""

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
        return _PackedPlan(**fields, agent_from_path=artifact_path(plan))

    def _bring_up(self, bottle, progress):
        # "prepare packed it": launch creates an empty stand-in artifact
        # instead of running `smolvm pack create`.
        artifact = artifact_path(bottle.plan)
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.touch()
        try:
            super()._bring_up(bottle, progress)
        finally:
            artifact.unlink(missing_ok=True)


@dataclass(frozen=True, kw_only=True)
class _LeakyPlan(DockerPlan):
    tokens: Mapping[str, str] = field(default_factory=dict)  # repr=True: the defect


class PlanReprLeaksSecret(Broken, DockerBackend):
    """SECRET-PLAN: "A plan's repr and JSON form MUST NOT contain any secret
    value". Reintroduced: a debug copy of the token slots in a plain field."""

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
        return _LeakyPlan(**fields, tokens=dict(plan.secrets))


class _SmolHostRelay(SmolmachinesBackend):
    """The smolmachines reference on its host-relay route (macOS's: the
    bundle publishes its agent-facing ports on host loopback for a host
    relay), the one route on which the bundle publishes ports at all."""

    def prepare(self, spec, host):
        # A socket root of its own: two of these recorded at once (xdist)
        # would otherwise start host relays on the same <root>/<ident>.
        host = dataclasses.replace(host, env={**host.env, SOCKET_ROUTE_ENV: ROUTE_HOST_RELAY,
                                              "XDG_RUNTIME_DIR": f"/tmp/bc-{type(self).__name__}"})
        return super().prepare(spec, host)

    def start_host_relay(self, plan, ident, hostports):
        """No real relay process in a recorded launch (the static tiers judge
        argv; a process start on a loaded CI host outlasts the call timeout):
        placeholders where its sockets would be, which close() removes."""
        for daemon in socket_daemons(plan):
            host_socket(plan, ident, daemon).touch()


class PublishHostNotLoopback(_RunnerDefect, _SmolHostRelay):
    """Seed port pivot: publish "-p 127.0.0.1::PORT". Reintroduced: the
    bundle's ports are published on every interface (0.0.0.0::PORT)."""

    also = {"PORT-NO-FIXED": "a publish off loopback is what PORT-NO-FIXED forbids too"}

    def run_through(self, plan, runner, argv, **kw):
        if is_bundle_run(argv):
            argv = [a.replace("127.0.0.1::", "0.0.0.0::") if i and argv[i - 1] == "-p" else a
                    for i, a in enumerate(argv)]
        return runner.run(argv, **kw)


# ================================================================================
# launch / provisioning defects (through the runner)
# ================================================================================


class TokenOnArgv(_RunnerDefect, DockerBackend):
    """Seed chunk 4b: "token-slot bare names (values never land on argv)".
    Reintroduced: egress gets ``-e BOTTLE_EGRESS_TOKEN_i=<value>``."""

    def run_through(self, plan, runner, argv, **kw):
        out = []
        for i, tok in enumerate(argv):
            if i and argv[i - 1] == "-e" and tok in plan.secrets:
                tok = f"{tok}={plan.secrets[tok]}"
            out.append(tok)
        return runner.run(out, **kw)


class PublishAllInterfaces(_RunnerDefect, _SmolHostRelay):
    """Seed port pivot ("-p 127.0.0.1::PORT ... on host loopback").
    Reintroduced: ``-p PORT`` (docker binds every interface)."""

    also = {"PORT-NO-FIXED": "a publish off loopback is what PORT-NO-FIXED forbids too"}

    def run_through(self, plan, runner, argv, **kw):
        if is_bundle_run(argv):
            argv = [a.rsplit(":", 1)[-1] if i and argv[i - 1] == "-p" else a
                    for i, a in enumerate(argv)]
        return runner.run(argv, **kw)


def _extra_socket(argv: list[str], daemon: str) -> list[str]:
    """``argv`` (a smolvm machine create) with one more --mount-socket, for
    ``daemon``, in the folder of the machine's own sockets (issue 14)."""
    first = next(a for i, a in enumerate(argv) if i and argv[i - 1] == "--mount-socket")
    folder = first.partition(":")[0].rsplit("/", 1)[0]
    return [*argv[:5], "--mount-socket", f"{folder}/{daemon}.sock:/run/bottle/{daemon}.sock",
            *argv[5:]]


class EgressPublishedWhenNotRouted(_RunnerDefect, SmolmachinesBackend):
    """Seed auth-chain fix: "when the bottle declares egress.routes, the
    agent's first hop is egress (publish egress port 9099 ...)"; without
    routes, egress must not be reachable. Reintroduced (issue 14 topology):
    egress's socket is mounted into the guest always."""

    also = {"SMOLVM-SOCKETS": "an unrouted guest then has a socket past its first hop"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"] and not plan.routed:
            argv = _extra_socket(argv, EGRESS)
        return runner.run(argv, **kw)


class PipelockPublishedWhenRouted(_RunnerDefect, SmolmachinesBackend):
    """Seed auth-chain fix: "publish egress port 9099 to host loopback, leave
    pipelock bundle-internal". Reintroduced (issue 14 topology): pipelock's
    socket is mounted into a routed guest too."""

    also = {"SMOLVM-SOCKETS": "a routed guest then has a socket past egress"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"] and plan.routed:
            argv = _extra_socket(argv, PIPELOCK)
        return runner.run(argv, **kw)


class PipelockOnAgentNetWhenRouted(_RunnerDefect, DockerBackend):
    """Docker topology: pipelock is on the agent network "iff NOT routed".
    Reintroduced: pipelock is also connected to the agent network when routed."""

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        if (plan.routed and argv[:3] == ["docker", "network", "connect"]
                and argv[-1].endswith("-pipelock") and argv[-2].endswith("-out")):
            ident = argv[-1][: -len("-pipelock")]
            runner.run([*argv[:-2], f"{ident}-agent", argv[-1]])
        return result


class ProxyEnvSkipsEgress(_RunnerDefect, DockerBackend):
    """Seed auth-chain fix: "claude's HTTPS_PROXY is http://127.0.0.1:<egress
    port>". Reintroduced: the agent's HTTPS_PROXY points at pipelock even
    when the bottle is routed (egress is its first hop)."""

    also = {"PORT-EGRESS-ONLY-WHEN-ROUTED": "a routed agent's env then names pipelock"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[:2] == ["docker", "create"] and any(a.endswith("-agent") for a in argv[:4]):
            argv = [a.replace("http://egress:9099", "http://pipelock:8888")
                    if a.upper().startswith("HTTPS_PROXY=") else a for a in argv]
        return runner.run(argv, **kw)


class CaSelectsPipelockWhenRouted(_RunnerDefect, SmolmachinesBackend):
    """Seed chunk 4d: "ca.py: select egress vs pipelock CA". Reintroduced: the
    guest always gets the pipelock CA, also when egress (MITM) is its hop."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[:3] == ["smolvm", "machine", "cp"] and argv[-1].endswith(CA_GUEST_PATH):
            argv = [a.replace("/egress-ca/", "/pipelock-ca/") for a in argv]
        return runner.run(argv, **kw)


class EgressCaAlways(_RunnerDefect, DockerBackend):
    """Seed chunk 4b: "egress_tls_init only when the bottle declares routes
    (otherwise ... openssl runs would be wasted)". Reintroduced: the egress CA
    is made for every bottle."""

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        if argv[:2] == ["openssl", "req"] and "/pipelock-ca/" in " ".join(argv) and not plan.routed:
            ensure_ca(runner, state_files(plan).egress_ca_dir, common_name="bottle-ref egress CA")
        return result


class CaSeveralRoundTrips(_RunnerDefect, SmolmachinesBackend):
    """Seed Docker Desktop fix: "fold provision_ca's chown + chmod +
    update-ca-certificates into one sh -c so we only pay one exec round
    trip". Reintroduced: three separate execs."""

    def run_through(self, plan, runner, argv, **kw):
        script = sh_script(argv)
        if script and "update-ca-certificates" in script:
            result = None
            for step in script.split(" && "):
                result = runner.run(with_tail(argv, shlex.split(step)), **kw)
            return result
        return runner.run(argv, **kw)


class CaSuccessNotChecked(_RunnerDefect, DockerBackend):
    """Seed: "Bail with a clear error if update-ca-certificates doesn't report
    '1 added' (failing silently was how the original SIGKILL went
    unnoticed)". Reintroduced: any outcome counts as success."""

    def run_through(self, plan, runner, argv, **kw):
        script = sh_script(argv)
        if script and "update-ca-certificates" in script:
            result = runner.run(argv, **{**kw, "check": False})
            return Completed(result.argv, 0, result.stdout + "\n1 added (assumed)\n", result.stderr)
        return runner.run(argv, **kw)


class FixedSleepAfterStart(_RunnerDefect, SmolmachinesBackend):
    """Seed Docker Desktop fix: "1.5s sleep after machine_start (empirically
    enough)", the sleep LAUNCH-READY replaces with a poll. Reintroduced
    (through the runner's clock): runner.sleep(1.5) after machine start."""

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        if argv[:3] == ["smolvm", "machine", "start"]:
            runner.sleep(1.5)
        return result


class TimeSleepAfterStart(_RunnerDefect, DockerBackend):
    """LAUNCH-READY: "MUST NOT wait with a fixed sleep". Reintroduced: a plain
    ``time.sleep`` after the agent container starts (outside the runner)."""

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        if argv[:2] == ["docker", "start"] and argv[-1].endswith("-agent"):
            time.sleep(0.01)  # the seed slept 1.5 s; any fixed wall-clock wait is the bug
        return result


class NoReadinessPoll(_RunnerDefect, SmolmachinesBackend):
    """LAUNCH-READY: "Launch MUST observe guest readiness with a bounded poll
    before any provisioning exec". Reintroduced: the readiness probe is never
    run; provisioning starts right after machine start."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[:3] == ["smolvm", "machine", "exec"] and guest_tail(argv) == ["true"]:
            return ok(argv)
        return runner.run(argv, **kw)


class ReadinessProbesAnotherGuest(_RunnerDefect, DockerBackend):
    """LAUNCH-READY (issue 10: "the readiness probe may target another
    container than the guest provisioning then uses"). Reintroduced: the
    probe marked purpose=READY waits for the pipelock container, and
    provisioning then goes to the agent, which nobody waited for."""

    def run_through(self, plan, runner, argv, **kw):
        if kw.get("purpose") == READY and argv[-2].endswith("-agent"):
            argv = [*argv[:-2], argv[-2].removesuffix("-agent") + "-pipelock", argv[-1]]
        return runner.run(argv, **kw)


class PromptMode0644(_RunnerDefect, DockerBackend):
    """Seed chunk 4d: "prompt.py default path moves ... chown + chmod after
    machine cp" (DESIGN §4: mode 0600). Reintroduced: mode 0644."""

    def run_through(self, plan, runner, argv, **kw):
        script = sh_script(argv)
        if script and PROMPT_PATH in script and "chmod 0600" in script:
            argv = with_tail(argv, ["sh", "-c", script.replace("chmod 0600", "chmod 0644")])
        return runner.run(argv, **kw)


class SkillsNotChowned(_RunnerDefect, SmolmachinesBackend):
    """Seed chunk 4d: "skills dir moves ... to /home/node/.claude/skills;
    chown -R per skill". Reintroduced: the chown is skipped (root owns them)."""

    def run_through(self, plan, runner, argv, **kw):
        tail = guest_tail(argv)
        if tail[:2] == ["chown", "-R"] and "/.claude/skills/" in tail[-1]:
            return ok(argv)
        return runner.run(argv, **kw)


class McpFailureFatal(_RunnerDefect, DockerBackend):
    """Seed chunk 4d: "supervise.py ... Failure is logged but non-fatal".
    Reintroduced: a failed ``claude mcp add`` aborts the launch."""

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        if guest_tail(argv)[:3] == ["claude", "mcp", "add"] and not result.ok:
            raise ProvisionError(f"claude mcp add failed (exit {result.returncode})")
        return result


class GitUserOneCallForBoth(_RunnerDefect, SmolmachinesBackend):
    """Seed git-user fix: "Runs ... git config --global user.<X> <value> for
    each git_user field". Reintroduced: both fields folded into one exec."""

    def run_through(self, plan, runner, argv, **kw):
        tail = guest_tail(argv)
        fields = dict(plan.git_user.fields())
        if tail[:4] == ["git", "config", "--global", "user.email"] and "name" in fields:
            return ok(argv)  # already set together with the name
        if tail[:4] == ["git", "config", "--global", "user.name"] and "email" in fields:
            both = (f"git config --global user.name {shlex.quote(fields['name'])} && "
                    f"git config --global user.email {shlex.quote(fields['email'])}")
            argv = with_tail(argv, ["sh", "-c", both])
        return runner.run(argv, **kw)


class GitUserUnsetFieldWritten(_RunnerDefect, DockerBackend):
    """Seed git-user fix: "for each git_user field. No-op when
    git_user.is_empty()". Reintroduced: the unset field is written too
    (as an empty value) whenever the other one is set."""

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        tail = guest_tail(argv)
        if tail[:3] == ["git", "config", "--global"] and tail[3] in ("user.name", "user.email"):
            other = "email" if tail[3] == "user.name" else "name"
            if other not in dict(plan.git_user.fields()):
                runner.run(with_tail(argv, ["git", "config", "--global", f"user.{other}", ""]))
        return result


class GitUserWhenEmpty(_RunnerDefect, DockerBackend):
    """Seed git-user fix: "No-op when git_user.is_empty()". Reintroduced: an
    empty git_user still gets ``git config --global user.name ''`` (run
    as node, right after the prompt is provisioned)."""

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        script = sh_script(argv)
        if script and PROMPT_PATH in script and "chmod" in script and plan.git_user.is_empty():
            container = argv[guest_tail_index(argv) - 1]
            runner.run(docker_exec_argv(container, ["git", "config", "--global", "user.name", ""]))
        return result


class GitUserAsRoot(_RunnerDefect, DockerBackend):
    """Seed git-user fix: "bare runuser inherits root's HOME=/root, which would
    put --global in /root/.gitconfig". Reintroduced on docker: the user.<x>
    config runs ``-u root`` (HOME=/root)."""

    also = {"EXEC-USER": "git config --global is user state, which EXEC-USER covers too"}

    def run_through(self, plan, runner, argv, **kw):
        tail = guest_tail(argv)
        if tail[:3] == ["git", "config", "--global"] and tail[3].startswith("user."):
            argv = docker_exec_argv(argv[guest_tail_index(argv) - 1], tail, user=ROOT)
        return runner.run(argv, **kw)


class GitCwdNotChowned(_RunnerDefect, DockerBackend):
    """Seed chunk 4d: "copy host .git when --cwd was passed" (to
    /home/node/work/.git, chowned to node). Reintroduced: the chown is
    skipped, so node cannot write its own repository."""

    def run_through(self, plan, runner, argv, **kw):
        tail = guest_tail(argv)
        if tail[:2] == ["chown", "-R"] and tail[-1] == f"{NODE_HOME}/work":
            return ok(argv)
        return runner.run(argv, **kw)


class GitGateInsteadOfMissing(_RunnerDefect, SmolmachinesBackend):
    """Seed chunk 4d: "render ~/.gitconfig with insteadOf URLs" for every
    upstream. Reintroduced: the first upstream's insteadOf is skipped."""

    def run_through(self, plan, runner, argv, **kw):
        tail = guest_tail(argv)
        first = plan.git_gate.upstreams[0].url if plan.git_gate else None
        if tail[:3] == ["git", "config", "--global"] and tail[3].endswith(".insteadOf") \
                and tail[-1] == first:
            return ok(argv)
        return runner.run(argv, **kw)


class UnreviewedArgvChange(_RunnerDefect, DockerBackend):
    """SNAP-MATCH: "a change in what a backend runs is a reviewed diff, never a
    surprise". Reintroduced: every container quietly gains a debug label, a
    change no structural rule forbids and only the reviewed snapshot shows."""

    reference_snapshots = True

    def run_through(self, plan, runner, argv, **kw):
        if argv[:2] == ["docker", "create"]:
            argv = [*argv[:2], "--label", "bottle-ref.debug=1", *argv[2:]]
        return runner.run(argv, **kw)


class MissingTokenRefusedLate(Broken, DockerBackend):
    """LAUNCH-MISSING-TOKEN: launch MUST refuse a missing token "before
    starting anything". Reintroduced: it creates the bottle's first network,
    then refuses (leaving it behind)."""

    def launch(self, plan, runner, *, progress: Progress = _quiet):
        if plan.missing_tokens:
            runner.run(["docker", "network", "create", "--internal",
                        f"{runner.unique(f'bottle-{plan.bottle}')}-agent"])
        return super().launch(plan, runner, progress=progress)


# ================================================================================
# smolvm exec framing defects (channel)
# ================================================================================


class _NoUserEnvChannel(SmolvmChannel):
    """Bare runuser: no ``-e HOME=/home/node -e USER=node`` before it."""

    def exec_argv(self, cmd, *, user=NODE, env=None, tty=False, workdir=None):
        argv = super().exec_argv(cmd, user=user, env=env, tty=tty, workdir=workdir)
        if user == NODE:
            i = argv.index(f"HOME={NODE_HOME}")
            del argv[i - 1:i + 3]  # -e HOME=... -e USER=node
        return argv


class GitUserBareRunuser(_SmolChannelDefect, SmolmachinesBackend):
    """Seed git-user fix: "HOME / USER are forced via smolvm -e because bare
    runuser inherits root's HOME=/root, which would put --global in
    /root/.gitconfig". Reintroduced: node execs are bare runuser."""

    channel_cls = _NoUserEnvChannel
    also = {
        "EXEC-USER": "every node exec (the agent too) keeps HOME=/root",
        "EXEC-RESUME": "the agent's prefix keeps HOME=/root, wrapped or not",
        "PROV-MCP-USER": "claude mcp add is a node exec with HOME=/root too",
        "PROV-GITGATE": "insteadOf lands in /root/.gitconfig as well",
        "PROV-CODEX-MCP": "codex mcp add is a node exec with HOME=/root too",
    }


class _McpAsRootChannel(SmolvmChannel):
    def exec_argv(self, cmd, *, user=NODE, env=None, tty=False, workdir=None):
        if list(cmd[:3]) == ["claude", "mcp", "add"]:
            user = ROOT
        return super().exec_argv(cmd, user=user, env=env, tty=tty, workdir=workdir)


class McpAddAsRoot(_SmolChannelDefect, SmolmachinesBackend):
    """Seed MCP fix: "provision_supervise dispatched claude mcp add --scope
    user through smolvm machine_exec, which runs as root ... The MCP entry got
    written to root's ~/.claude.json". Reintroduced exactly."""

    channel_cls = _McpAsRootChannel
    also = {"EXEC-USER": "claude mcp add is user state, which EXEC-USER covers too"}


class _NoUserVarChannel(SmolvmChannel):
    def exec_argv(self, cmd, *, user=NODE, env=None, tty=False, workdir=None):
        argv = super().exec_argv(cmd, user=user, env=env, tty=tty, workdir=workdir)
        if user == NODE:
            i = argv.index(f"USER={NODE}")
            del argv[i - 1:i + 1]
        return argv


class UserVarMissing(_SmolChannelDefect, SmolmachinesBackend):
    """DESIGN §4: node commands are framed ``-e HOME=/home/node -e USER=node
    -- runuser -u node -- CMD``. Reintroduced: USER=node is not set (USER
    stays root's in the agent's environment)."""

    channel_cls = _NoUserVarChannel
    also = {
        "PROV-GITUSER": "git config --global is user state framed by the same channel",
        "PROV-MCP-USER": "claude mcp add is user state framed by the same channel",
        "PROV-CODEX-MCP": "codex mcp add is user state framed by the same channel",
    }


# ================================================================================
# agent_argv defects (bottle)
# ================================================================================


class _NoRunuserBottle(SmolmachinesBottle):
    def agent_argv(self, argv=(), *, tty=True):
        out = super().agent_argv(argv, tty=tty)
        i = out.index("runuser")
        return out[:i] + out[i + 4:]


class AgentWithoutRunuser(_BottleDefect, SmolmachinesBackend):
    """Seed claude_argv move: "the full smolvm machine exec --name ... --
    runuser -u node -- claude ... argv" (smolvm exec is always root).
    Reintroduced: agent_argv drops ``runuser -u node --``; claude runs as root."""

    bottle_cls = _NoRunuserBottle
    also = {"EXEC-RESUME": "with no user switch, the resume wrap keeps none either"}


class _HomeRootBottle(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        return [a if a != f"HOME={NODE_HOME}" else "HOME=/root"
                for a in super().agent_argv(argv, tty=tty)]


class AgentHomeRoot(_BottleDefect, DockerBackend):
    """EXEC-USER: the agent runs "as node with HOME=/home/node" (seeds: bare
    runuser kept HOME=/root). Reintroduced: ``-u node -e HOME=/root``."""

    bottle_cls = _HomeRootBottle
    also = {"EXEC-RESUME": "the resume wrap keeps the (wrong) prefix"}


class _AlwaysTtyDocker(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        return super().agent_argv(argv, tty=True)


class TtyWhenNotAsked(_BottleDefect, DockerBackend):
    """Seed pty fix: "Non-TTY mode (provisioning shell-outs) skips the
    wrapper" (TestClaudeArgvNoTTY). Reintroduced: ``-t`` even with tty=False."""

    bottle_cls = _AlwaysTtyDocker


class _AlwaysWrapperSmol(SmolmachinesBottle):
    def agent_argv(self, argv=(), *, tty=True):
        out = super().agent_argv(argv, tty=tty)
        if tty:
            return out
        return [sys.executable, PTY_RESIZE_SCRIPT, self.machine, "--", *out]


class PtyWrapperWithoutTty(_BottleDefect, SmolmachinesBackend):
    """Seed pty fix: "SmolmachinesBottle.claude_argv prepends [...pty_resize
    ...] in TTY mode. Non-TTY mode skips the wrapper". Reintroduced: the
    resize wrapper wraps the non-TTY argv too."""

    bottle_cls = _AlwaysWrapperSmol


class _DashMWrapper(SmolmachinesBottle):
    def agent_argv(self, argv=(), *, tty=True):
        out = super().agent_argv(argv, tty=tty)
        if tty:
            out = [out[0], "-m", "bottle_ref.pty_resize", *out[2:]]
        return out


class PtyWrapperDashM(_BottleDefect, SmolmachinesBackend):
    """Seed tmux fix: "python -m claude_bottle.backend.smolmachines.pty_resize
    needs the package on sys.path ... invoke the wrapper as python
    <absolute-path-to-pty_resize.py>". Reintroduced: ``python -m``."""

    bottle_cls = _DashMWrapper


class _PromptFlagAlways(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        out = super().agent_argv(argv, tty=tty)
        if self.prompt_path is None:
            i = out.index(self.plan.agent) + 1
            out[i:i] = ["--append-system-prompt-file", PROMPT_PATH]
        return out


class PromptFlagWhenEmpty(_BottleDefect, DockerBackend):
    """Seed chunk 4a: "return value drives --append-system-prompt-file iff the
    agent has a non-empty prompt". Reintroduced: the flag is always passed."""

    bottle_cls = _PromptFlagAlways
    also = {"PROV-CODEX-PROMPT": "a codex bottle then gets Claude's prompt flag too"}


class _NoAgentArgv(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        raise AttributeError(f"{type(self).__name__!r} object has no attribute 'agent_argv' "
                             "(use claude_docker_argv)")

    def claude_docker_argv(self, argv=(), *, tty=True):
        return DockerBottle.agent_argv(self, argv, tty=tty)


class AgentArgvOnlyDockerSpecific(_BottleDefect, DockerBackend):
    """Seed: "AttributeError: 'SmolmachinesBottle' object has no attribute
    'claude_docker_argv'" -- the argv builder existed only under a
    backend-specific name. Reintroduced: agent_argv is missing."""

    bottle_cls = _NoAgentArgv
    # A recorded launch ends with agent_argv, so every clause whose tests
    # read a whole recording fails with the same AttributeError.
    also = dict.fromkeys(
        ("SNAP-MATCH", "EXEC-USER", "EXEC-TTY", "EXEC-PTY-ABS", "EXEC-RESUME", "PROV-PROMPT",
         "LAUNCH-PROXY-ENV", "PLAN-DAEMONS", "SECRET-ARGV", "PORT-LOOPBACK",
         "PORT-EGRESS-ONLY-WHEN-ROUTED", "CRED-CA", "CRED-CA-CLAUDE", "PROV-CA-SELECT",
         "PROV-GITUSER", "PROV-GITGATE", "PROV-CODEX-PROMPT", "PROV-WORKDIR",
         "SECRET-STDIN"),
        "every recorded launch fails at agent_argv, so nothing after it can be checked")


class _AgentAsRootBottle(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        out = super().agent_argv(argv, tty=tty)
        i = out.index("-u")
        out[i + 1] = ROOT
        return out


class ResumeWrapRunsAsRoot(_BottleDefect, DockerBackend):
    """Seed claude_argv move: the user switch must sit on the exec-framing
    prefix "so the dashboard's _build_resume_argv_with_fallback split-at-
    "claude" trick keeps the UID switch" (else the wrapped shell, and the
    agent, run as root). Reintroduced: the prefix switches to root."""

    bottle_cls = _AgentAsRootBottle
    also = {"EXEC-USER": "the resume wrap keeps the prefix, so the unwrapped agent runs "
                         "as root too (EXEC-RESUME cannot fail without EXEC-USER)"}


class NoCleanupAfterFailedLaunch(Broken, SmolmachinesBackend):
    """LIVE-TEARDOWN / PROV-CA-ONE-ADDED: "fail with a clear error, and clean
    up". Reintroduced: a failed launch leaves its bundle, network and
    machine behind."""

    def _bring_up(self, bottle, progress):
        try:
            super()._bring_up(bottle, progress)
        except BaseException:
            bottle._closed = True  # launch's cleanup then does nothing
            raise


# ================================================================================
# issue 10: encoded secrets, env files, the host read behind the HostContext,
# exact placeholder shape, the supervise URL
# ================================================================================


def _route_tokens(kw: Mapping[str, Any]) -> list[str]:
    return [v for v in (kw.get("env") or {}).values() if v]


def _gets_tokens(argv: Sequence[str], kw: Mapping[str, Any]) -> bool:
    """The container run/create that receives tokens in the runner's env
    (docker: ``docker create ... -egress``; smolmachines: the bundle run)."""
    return bool(_route_tokens(kw)) and (is_bundle_run(argv) or argv[:2] == ["docker", "create"])


_ENCODED_SNAPSHOT = {"SNAP-MATCH": "the snapshot would hold the encoded token, so the suite "
                                   "refuses to write it (SECRET-ARGV's refusal)"}


class TokenBase64OnArgv(_RunnerDefect, DockerBackend):
    """SECRET-ARGV (issue 10: "a token passed base64- ... encoded on argv
    passes"). Reintroduced: the bundle run carries a debug label holding
    base64("Bearer " + token)."""

    also = _ENCODED_SNAPSHOT

    def run_through(self, plan, runner, argv, **kw):
        if _gets_tokens(argv, kw):
            blob = base64.b64encode(f"Bearer {_route_tokens(kw)[0]}".encode()).decode()
            argv = argv[:2] + ["--label", f"bottle.debug-auth={blob}"] + argv[2:]
        return runner.run(argv, **kw)


class TokenHexOnArgv(_RunnerDefect, SmolmachinesBackend):
    """SECRET-ARGV: ... "or hex-encoded". Reintroduced: the bundle run gets
    ``-e DEBUG_AUTH_HEX=<hex of the token>`` (not a token slot, so the bare
    -e NAME check alone cannot see it)."""

    also = _ENCODED_SNAPSHOT

    def run_through(self, plan, runner, argv, **kw):
        if _gets_tokens(argv, kw):
            hexed = _route_tokens(kw)[0].encode().hex()
            argv = argv[:2] + ["-e", f"DEBUG_AUTH_HEX={hexed}"] + argv[2:]
        return runner.run(argv, **kw)


class TokenSplitOverWords(_RunnerDefect, DockerBackend):
    """SECRET-ARGV: ... "or split/quoted". Reintroduced: the token rides in
    two argv words of a label (``--label x=<first half> <second half>``)."""

    also = {"SNAP-MATCH": "a recorded argv word is then the image, so the snapshot differs",
            # issue 18: the suite reads argv as docker does (conformance/argv), so
            # --name and the CA --mounts after that word are the container's command
            "PROV-CA-SELECT": "docker reads the second half as the image: no CA is mounted",
            "LAUNCH-CA-WHEN-ROUTED": "docker reads the second half as the image: no CA is mounted",
            "TEARDOWN-OWN": "docker reads the second half as the image: the egress container "
                            "is created without its --name, so close removes a name it never made"}

    def run_through(self, plan, runner, argv, **kw):
        if _gets_tokens(argv, kw):
            t = _route_tokens(kw)[0]
            argv = argv[:2] + ["--label", f"x={t[:len(t) // 2]}", t[len(t) // 2:]] + argv[2:]
        return runner.run(argv, **kw)


class TokenInEnvFile(_RunnerDefect, DockerBackend):
    """SECRET-FILES (issue 10: "a clause for env files"). Reintroduced: the
    bundle's tokens are also written to ``<state>/bundle.env`` and handed to
    it with ``--env-file`` (a file any host user with the state dir reads)."""

    def run_through(self, plan, runner, argv, **kw):
        env = {k: v for k, v in (kw.get("env") or {}).items() if v}
        if _gets_tokens(argv, kw):
            path = Path(plan.state_dir) / "bundle.env"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            argv = argv[:2] + ["--env-file", str(path)] + argv[2:]
        return runner.run(argv, **kw)


class PrepareReadsTokenFromEnviron(Broken, DockerBackend):
    """PLAN-PURE (issue 10: "a backend that reads a token straight from the
    process environment (not through HostContext) passes PLAN-PURE").
    Reintroduced: a route's token is taken from ``os.environ`` when set there,
    the HostContext only as a fallback."""

    also = {"LAUNCH-MISSING-TOKEN": "a token in the process env hides one the host lacks"}

    def prepare(self, spec, host):
        import os

        env = dict(host.env)
        for r in spec.routes:
            if os.environ.get(r.token_env):
                env[r.token_env] = os.environ[r.token_env]
        return super().prepare(spec, dataclasses.replace(host, env=env))


class PrepareReadsHomeCredentials(Broken, SmolmachinesBackend):
    """PLAN-PURE: "decoy credential files in HOME". Reintroduced: with
    forward_host_credentials the sign-in is read from the real
    ``~/.claude/.credentials.json`` / ``~/.codex/auth.json`` when present,
    not from ``HostContext.home_files``."""

    def prepare(self, spec, host):
        files = dict(host.home_files)
        for rel in (CODEX_AUTH, CLAUDE_CREDENTIALS):
            real = Path.home() / rel
            if real.is_file():
                files[rel] = real.read_text()
        return super().prepare(spec, dataclasses.replace(host, home_files=files))


class CodexAccountIdNull(Broken, DockerBackend):
    """CRED-SHAPE (issue 10: "account_id: null ... passes"). Reintroduced:
    the placeholder's tokens.account_id is null (Codex then sends no
    ChatGPT-Account-Id)."""

    def prepare(self, spec, host):
        return with_guest_file(super().prepare(spec, host), CODEX_AUTH_GUEST,
                               lambda data: data["tokens"].update(account_id=None))


class CodexAuthModeAdded(Broken, SmolmachinesBackend):
    """CRED-SHAPE: "an added auth_mode". Reintroduced: the placeholder says
    ``auth_mode: apikey`` though the host's file has no auth_mode."""

    def prepare(self, spec, host):
        return with_guest_file(super().prepare(spec, host), CODEX_AUTH_GUEST,
                               lambda data: data.setdefault("auth_mode", "apikey"))


class CodexUnknownTopLevelKey(Broken, DockerBackend):
    """CRED-SHAPE: "unknown top-level keys in the Codex placeholder".
    Reintroduced: a ``bottle`` bookkeeping key is added to auth.json."""

    def prepare(self, spec, host):
        return with_guest_file(super().prepare(spec, host), CODEX_AUTH_GUEST,
                               lambda data: data.update(bottle={"placeholder": True}))


class ClaudeUnknownOauthKey(Broken, SmolmachinesBackend):
    """CRED-SHAPE: "Claude likewise". Reintroduced: claudeAiOauth gains an
    ``isPlaceholder`` key, and subscriptionType is invented when the host has none."""

    def prepare(self, spec, host):
        def change(data: dict) -> None:
            data["claudeAiOauth"]["isPlaceholder"] = True
            data["claudeAiOauth"].setdefault("subscriptionType", "max")

        return with_guest_file(super().prepare(spec, host), CLAUDE_CREDENTIALS_GUEST, change)


class McpUrlUnreachable(_RunnerDefect, DockerBackend):
    """PROV-MCP (issue 10: "PROV-MCP does not check that the registered URL is
    the agent-reachable supervise address"). Reintroduced: supervise is
    registered at http://127.0.0.1:9100/mcp, the guest's own loopback."""

    def run_through(self, plan, runner, argv, **kw):
        tail = guest_tail(argv)
        if tail[:3] == ["claude", "mcp", "add"]:
            argv = [("http://127.0.0.1:9100/mcp" if a.startswith("http://") else a)
                    for a in argv]
        return runner.run(argv, **kw)


# ================================================================================
# argv grammar and guest confinement defects (conformance/argv, helper H8a)
# ================================================================================


def _is_agent_create(argv: Sequence[str]) -> bool:
    return argv[:2] in (["docker", "create"], ["docker", "run"]) and any(
        a.endswith("-agent") and argv[i - 1] == "--name" for i, a in enumerate(argv) if i)


def _with_agent_flags(argv: list[str], extra: Sequence[str]) -> list[str]:
    """The agent's docker create with ``extra`` options right after ``create``."""
    return [*argv[:2], *extra, *argv[2:]] if _is_agent_create(argv) else argv


class _SmolvmFixed(_RunnerDefect, SmolmachinesBackend):
    """NOT a broken backend: the smolmachines reference through the runner
    seam, for the smolvm defects below (the reference itself now passes
    SMOLVM-*, issue 8 fixed)."""


_SMOLVM_FIX_ALSO: dict[str, str] = {}


class SmolvmPositionalName(_SmolvmFixed):
    """Issue 8: "since 1.0.2, machine create/delete take -n/--name" (smolvm
    machine.rs CreateCmd). Reintroduced: ``machine create NAME`` positional."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"] and "--name" in argv:
            i = argv.index("--name")
            argv = [*argv[:3], argv[i + 1], *argv[3:i], *argv[i + 2:]]
        return runner.run(argv, **kw)


class SmolvmCpDirectory(_SmolvmFixed):
    """Issue 8: "machine cp copies one regular file; the backend copies
    directories". Reintroduced: the prompt's directory is handed to machine cp."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "cp"] and Path(argv[3]).is_file():
            argv = [*argv[:3], str(Path(argv[3]).parent), *argv[4:]]
        return runner.run(argv, **kw)


class SmolvmFromStub(_SmolvmFixed):
    """Issue 8: "the backend renames the stub and passes it to --from, which
    fails the SMOLPACK footer check". Reintroduced: pack, then --from the stub X."""

    also = {"LAUNCH-PACK-IN-LAUNCH": "the defect adds a pack the plan did not foresee"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"] and ("-I" in argv or "--image" in argv):
            i = argv.index("-I") if "-I" in argv else argv.index("--image")
            stub = "/tmp/bottle-stub"
            runner.run(["smolvm", "pack", "create", "-I", "claude-bottle:latest", "-o", stub],
                       check=False)
            argv = [*argv[:i], "--from", stub, *argv[i + 2:]]
        return runner.run(argv, **kw)


class SmolvmNoVersionCheck(_SmolvmFixed):
    """Issue 8: "launch asks smolvm --version first and refuses an older
    smolvm" (the --from egress hole before 1.8.0). Reintroduced: no check
    reaches smolvm (the launch is told a version without asking)."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[:2] == ["smolvm", "--version"]:
            return ok(argv, "smolvm 1.9.3\n")
        return runner.run(argv, **kw)


class SmolvmSshAgent(_SmolvmFixed):
    """Issue 10: "no engine socket or host paths mounted into the guest".
    Reintroduced: the machine gets the host's ssh-agent socket (--ssh-agent)."""

    also = _SMOLVM_FIX_ALSO

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"]:
            argv = [*argv, "--ssh-agent"]
        return super().run_through(plan, runner, argv, **kw)


class DockerLabelValueDropped(_RunnerDefect, DockerBackend):
    """Issue 8: "a flag that takes a value is never misparsed". Reintroduced:
    ``docker network create --label NAME`` for the outbound network (the
    label's value missing, so docker takes the name as the label and has no
    name left)."""

    also = {"TEARDOWN-OWN": "the refused network create names no network, so close()'s "
                            "network rm looks like a name the launch never created"}

    def run_through(self, plan, runner, argv, **kw):
        if (argv[:3] == ["docker", "network", "create"] and "--label" in argv
                and argv[-1].endswith("-out")):
            i = argv.index("--label")
            argv = [*argv[:i + 1], *argv[i + 2:]]
        return runner.run(argv, **kw)


class AgentNetworkNotInternal(_RunnerDefect, DockerBackend):
    """Issue 10: "the agent's networks not all --internal". Reintroduced:
    the agent network is created routable."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[:3] == ["docker", "network", "create"] and argv[-1].endswith("-agent"):
            argv = [a for a in argv if a != "--internal"]
        return runner.run(argv, **kw)


class AgentNetworkHostAddress(_RunnerDefect, DockerBackend):
    """Issue 10 / facts file (docker): an --internal bridge still gives the
    host an address. Reintroduced: inhibit_ipv4 dropped from the agent network."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[:3] == ["docker", "network", "create"] and "-o" in argv:
            i = argv.index("-o")
            argv = [*argv[:i], *argv[i + 2:]]
        return runner.run(argv, **kw)


class AgentPrivileged(_RunnerDefect, DockerBackend):
    """Issue 10: "--privileged". Reintroduced on the agent container."""

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(argv, ["--privileged"]), **kw)


class AgentCapAdd(_RunnerDefect, DockerBackend):
    """Issue 10: "added capabilities". Reintroduced: --cap-add NET_ADMIN."""

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(argv, ["--cap-add", "NET_ADMIN"]), **kw)


class AgentHostPid(_RunnerDefect, DockerBackend):
    """Issue 10: "host namespaces". Reintroduced: --pid host on the agent."""

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(argv, ["--pid", "host"]), **kw)


class AgentEngineSocket(_RunnerDefect, DockerBackend):
    """Issue 10: "the engine socket ... mounted into the guest". Reintroduced:
    -v /var/run/docker.sock:/var/run/docker.sock on the agent."""

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(
            argv, ["-v", "/var/run/docker.sock:/var/run/docker.sock"]), **kw)


class AgentHostGateway(_RunnerDefect, DockerBackend):
    """Issue 10: "--add-host ...:host-gateway". Reintroduced on the agent."""

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(
            argv, ["--add-host", "host.docker.internal:host-gateway"]), **kw)


class BundleFixedHostPort(_RunnerDefect, _SmolHostRelay):
    """Issue 10: "fixed host ports (-p 8080:...)". Reintroduced: the bundle's
    first hop is published on host port 18080 (still on loopback), on the
    host-relay route (issue 14: the only one on which the bundle publishes)."""

    also = _SMOLVM_FIX_ALSO

    def run_through(self, plan, runner, argv, **kw):
        if argv[:2] == ["docker", "run"] and "-p" in argv:
            argv = list(argv)
            i = argv.index("-p") + 1
            host, _, port = argv[i].rpartition(":")
            argv[i] = f"{host.rstrip(':')}:18080:{port}"
        return super().run_through(plan, runner, argv, **kw)


# ================================================================================
# the table
# ================================================================================

class _PruneOnClose(DockerBottle):
    def close(self):
        if not self._closed:
            self.runner.run(["docker", "network", "prune", "-f", "--filter",
                             f"label={LABEL_KEY}"], check=False)
        super().close()


class PruneOnClose(_BottleDefect, DockerBackend):
    """Issue 10: teardown "by label key alone" -- a prune filtered on the
    label key removes every bottle's unused networks on the engine."""

    bottle_cls = _PruneOnClose


class _ForeignNameOnClose(DockerBottle):
    def close(self):
        if not self._closed:
            self.runner.run(["docker", "rm", "-f", f"{self.ident}-cache"], check=False)
        super().close()


class RemovesForeignName(_BottleDefect, DockerBackend):
    """Issue 10: close() removes a name its launch never created."""

    bottle_cls = _ForeignNameOnClose


class _CloseTwice(DockerBottle):
    def close(self):
        super().close()
        self._closed = False  # forgets it is closed: a second close runs rm again


class CloseNotIdempotent(_BottleDefect, DockerBackend):
    """DESIGN §3 "closing is idempotent": a second close() removes again,
    by names that may belong to a new bottle by then."""

    bottle_cls = _CloseTwice



BROKEN: dict[str, list[type[Backend]]] = {
    "PLAN-PURE": [SubprocessInPrepare, SubprocessInPreparePool, PrepareWritesState,
                  PrepareNotDeterministic, PrepareReadsTokenFromEnviron,
                  PrepareReadsHomeCredentials],
    "PLAN-HOP": [FirstHopPipelockDespiteRoutes, EgressUpstreamNotPipelock],
    "PLAN-DAEMONS": [GitGateMissingWithUpstreams, SuperviseMissingWhenEnabled],
    "SNAP-MATCH": [UnreviewedArgvChange],
    "LAUNCH-PACK-IN-LAUNCH": [PackInPrepare],
    "EXEC-ABI": [AgentArgvOnlyDockerSpecific],
    "EXEC-USER": [AgentWithoutRunuser, AgentHomeRoot, UserVarMissing],
    "EXEC-TTY": [TtyWhenNotAsked, PtyWrapperWithoutTty],
    "EXEC-PTY-ABS": [PtyWrapperDashM],
    "EXEC-RESUME": [ResumeWrapRunsAsRoot],
    "SECRET-ARGV": [TokenOnArgv, TokenBase64OnArgv, TokenHexOnArgv, TokenSplitOverWords],
    "SECRET-FILES": [TokenInEnvFile],
    "SECRET-PLAN": [PlanReprLeaksSecret],
    "PORT-LOOPBACK": [PublishAllInterfaces, PublishHostNotLoopback],
    "PORT-EGRESS-ONLY-WHEN-ROUTED": [EgressPublishedWhenNotRouted, PipelockPublishedWhenRouted,
                                     PipelockOnAgentNetWhenRouted],
    "LAUNCH-PROXY-ENV": [ProxyEnvSkipsEgress],
    "CRED-EXP": [CodexExpNowPlus1h],
    "CRED-SHAPE": [CodexPlaceholderKeepsRefreshToken, CodexPlaceholderNoLastRefresh,
                   CodexAccountIdNull, CodexAuthModeAdded, CodexUnknownTopLevelKey,
                   ClaudeUnknownOauthKey],
    "CRED-CA": [CodexCaUnset],
    "CRED-CA-CLAUDE": [ClaudeCaUnset],
    "PIPELOCK-PASS": [RouteHostNotPassthrough],
    "PIPELOCK-PASS-CODEX": [CodexApexOnlyWildcard],
    "PIPELOCK-SCHEMA": [PipelockUnknownKey, PipelockForwardProxyOff, PipelockLookaroundRegex],
    "PIPELOCK-ENFORCE": [PipelockBalanced, PipelockEmptyAllowlist, PipelockTldWildcard,
                         PipelockInterceptionOff, PipelockPassthroughTooBroad,
                         PipelockTlsPassthroughDropped],
    "PROV-CA": [CaSeveralRoundTrips],
    "PROV-CA-ONE-ADDED": [CaSuccessNotChecked, NoCleanupAfterFailedLaunch],
    "PROV-CA-SELECT": [CaSelectsPipelockWhenRouted],
    "PROV-GITUSER": [GitUserOneCallForBoth, GitUserUnsetFieldWritten, GitUserWhenEmpty,
                     GitUserAsRoot, GitUserBareRunuser],
    "PROV-GITGATE": [GitGateInsteadOfMissing],
    "PROV-GIT-CWD": [GitCwdNotChowned],
    "PROV-PROMPT": [PromptMode0644, PromptFlagWhenEmpty],
    "PROV-SKILLS": [SkillsNotChowned],
    "PROV-MCP": [McpFailureFatal, McpUrlUnreachable],
    "PROV-MCP-USER": [McpAddAsRoot],
    "LAUNCH-READY": [FixedSleepAfterStart, TimeSleepAfterStart, NoReadinessPoll,
                     ReadinessProbesAnotherGuest],
    "LAUNCH-MISSING-TOKEN": [MissingTokenRefusedLate],
    "LAUNCH-CA-WHEN-ROUTED": [EgressCaAlways],
    "TEARDOWN-OWN": [PruneOnClose, RemovesForeignName],
    "TEARDOWN-IDEMPOTENT": [CloseNotIdempotent],
    "SMOLVM-ARGV": [SmolvmPositionalName],
    "SMOLVM-CP-FILE": [SmolvmCpDirectory],
    "SMOLVM-FROM-SIDECAR": [SmolvmFromStub],
    "SMOLVM-VERSION-FIRST": [SmolvmNoVersionCheck],
    "DOCKER-ARGV": [DockerLabelValueDropped],
    "GUEST-NET-INTERNAL": [AgentNetworkNotInternal],
    "GUEST-NET-NO-HOST-ADDR": [AgentNetworkHostAddress],
    "GUEST-NO-PRIVILEGE": [AgentPrivileged, AgentCapAdd],
    "GUEST-NO-HOST-NS": [AgentHostPid],
    "GUEST-NO-HOST-MOUNTS": [AgentEngineSocket, SmolvmSshAgent],
    "GUEST-NO-HOST-GATEWAY": [AgentHostGateway],
    "PORT-NO-FIXED": [BundleFixedHostPort],
}


# Clauses a reference backend is KNOWN to fail until a pending backend fix
# lands (issue 8: helper H8b's smolmachines fixes). Strict: the reference test
# fails once one of these passes, so the entry is removed with the fix; broken
# backends built on that reference may fail them too.
PENDING_REFERENCE_FIXES: dict[str, dict[str, str]] = {}  # issue 8 fixed (H8b)


def broken_cases() -> list[tuple[str, type[Backend]]]:
    """``(intended clause, broken backend class)`` for every table entry."""
    return [(cid, cls) for cid, classes in BROKEN.items() for cls in classes]


# ================================================================================
# issue 14 item 5: codex bottles get supervise, prompt and skills the codex way
# ================================================================================

_CODEX_PROMPT = "/home/node/.codex/AGENTS.md"
_CODEX_SKILLS = "/home/node/.agents/skills"
_CLAUDE_SKILLS = "/home/node/.claude/skills"


class CodexMcpViaClaude(_RunnerDefect, DockerBackend):
    """PROV-CODEX-MCP (issue 14: "supervise is registered with `claude mcp
    add` for every agent ... in a Codex bottle they silently do nothing").
    Reintroduced: a codex bottle registers supervise with `claude mcp add
    --scope user --transport http supervise URL`, as before."""

    def run_through(self, plan, runner, argv, **kw):
        i = guest_tail_index(argv)
        tail = guest_tail(argv)
        if i is not None and tail[:3] == ["codex", "mcp", "add"]:
            url = tail[tail.index("--url") + 1]
            argv = argv[:i] + ["claude", "mcp", "add", "--scope", "user", "--transport",
                               "http", tail[3], url]
        return runner.run(argv, **kw)


class _CodexMcpAsRootChannel(SmolvmChannel):
    def exec_argv(self, cmd, *, user=NODE, env=None, tty=False, workdir=None):
        if list(cmd[:3]) == ["codex", "mcp", "add"]:
            user = ROOT
        return super().exec_argv(cmd, user=user, env=env, tty=tty, workdir=workdir)


class CodexMcpAsRoot(_SmolChannelDefect, SmolmachinesBackend):
    """PROV-CODEX-MCP: the seed MCP bug, codex edition. Reintroduced: `codex
    mcp add` goes through smolvm's root exec, so the entry lands in
    /root/.codex/config.toml and node's codex sees no server."""

    channel_cls = _CodexMcpAsRootChannel


class CodexPromptForClaude(_RunnerDefect, DockerBackend):
    """PROV-CODEX-PROMPT (issue 14: "the prompt is given only through
    Claude's --append-system-prompt-file"). Reintroduced: a codex bottle's
    prompt lands in Claude's prompt file, which codex never reads."""

    def run_through(self, plan, runner, argv, **kw):
        argv = [a.replace(_CODEX_PROMPT, PROMPT_PATH) for a in argv]
        return runner.run(argv, **kw)


class CodexPromptNotPrivate(_RunnerDefect, SmolmachinesBackend):
    """PROV-CODEX-PROMPT: ~/.codex/AGENTS.md must be 0600. Reintroduced: it
    is left world-readable (chmod 0644)."""

    def run_through(self, plan, runner, argv, **kw):
        argv = [a.replace(f"chmod 0600 {_CODEX_PROMPT}", f"chmod 0644 {_CODEX_PROMPT}")
                for a in argv]
        return runner.run(argv, **kw)


class CodexSkillsForClaude(_RunnerDefect, SmolmachinesBackend):
    """PROV-CODEX-SKILLS (issue 14: "skills land only under
    ~/.claude/skills"). Reintroduced: a codex bottle's skills are copied to
    ~/.claude/skills/<name>, where codex never looks."""

    def run_through(self, plan, runner, argv, **kw):
        argv = [a.replace(_CODEX_SKILLS, _CLAUDE_SKILLS) for a in argv]
        return runner.run(argv, **kw)


BROKEN["PROV-CODEX-MCP"] = [CodexMcpViaClaude, CodexMcpAsRoot]
BROKEN["PROV-CODEX-PROMPT"] = [CodexPromptForClaude, CodexPromptNotPrivate]
BROKEN["PROV-CODEX-SKILLS"] = [CodexSkillsForClaude]


# --- issue 17: faults, round 2 --------------------------------------------------------


class _CloseSwallowsEngineErrors(DockerBottle):
    """Today's bug: an engine that cannot answer is taken for "nothing left"."""

    def close(self):
        try:
            super().close()
        except RuntimeError:
            self._closed = True


class CloseSwallowsUnreachableEngine(_BottleDefect, DockerBackend):
    """issue 17 item 1: close() returns normally when every engine command
    fails, so `down` forgets a running bottle."""

    bottle_cls = _CloseSwallowsEngineErrors


BROKEN["TEARDOWN-LOUD"] = [CloseSwallowsUnreachableEngine]


# --- issue 15: PIPELOCK-ENFORCE needs the bottle's credential DLP patterns -----------

def _drop_dlp(names: tuple[str, ...]) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        dlp = data.get("dlp") or {}
        dlp["patterns"] = [p for p in dlp.get("patterns") or [] if p.get("name") not in names]
    return change


class PipelockNoAnthropicPattern(Broken, DockerBackend):
    """Issue 15: no rendered DLP pattern catches an Anthropic key (the
    Anthropic pattern dropped, and the OpenAI ``sk-...`` one, which matches
    it too), so pipelock would pass a Claude bottle's key to any host it
    decrypts."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host),
                             _drop_dlp(("anthropic-api-key", "openai-api-key")))


class PipelockNoJwtPattern(Broken, SmolmachinesBackend):
    """Issue 15: the rendered DLP patterns lack a JWT pattern, so a Codex
    bottle's forwarded sign-in tokens (JWTs) would pass any host pipelock
    decrypts. Also drops the Anthropic one, so a Claude case fails too."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host),
                             _drop_dlp(("jwt", "anthropic-api-key", "openai-api-key")))


BROKEN["PIPELOCK-ENFORCE"] = [*BROKEN["PIPELOCK-ENFORCE"], PipelockNoAnthropicPattern,
                              PipelockNoJwtPattern]


# issue 16: a static clause per contract gap, and the wrong-reason failures
# (each class names the failing clause's reason: `reason`, a regex the
# meta-test looks for in the report's reason text)
# ================================================================================

import os as _os  # noqa: E402
import tempfile as _tempfile  # noqa: E402

from bottle_api.runner import CommandError  # noqa: E402
from bottle_api.spec import SpecError  # noqa: E402


class AgentSeccompUnconfined(_RunnerDefect, DockerBackend):
    """Issue 16: "GUEST-NO-PRIVILEGE reads --privileged and --cap-add only:
    --security-opt seccomp=unconfined passes". Reintroduced on the agent."""

    reason = r"seccomp=unconfined switches seccomp confinement off"

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(argv, ["--security-opt", "seccomp=unconfined"]), **kw)


class AgentApparmorUnconfined(_RunnerDefect, DockerBackend):
    """Issue 16: "... apparmor=unconfined pass". Reintroduced on the agent."""

    reason = r"apparmor=unconfined switches apparmor confinement off"

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(argv, ["--security-opt", "apparmor=unconfined"]), **kw)


class AgentHostDevice(_RunnerDefect, DockerBackend):
    """Issue 16 (the docker flag table: --device). Reintroduced: the agent
    gets the host's /dev/fuse."""

    reason = r"--device /dev/fuse hands a host device to the agent"

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(argv, ["--device", "/dev/fuse"]), **kw)


class AgentConnectedNotCreatedOnNetwork(_RunnerDefect, DockerBackend):
    """Issue 16: "the agent created without --network, then network
    connected, also sits on the default bridge: GUEST-NET-INTERNAL passes".
    Reintroduced: the agent is created with no --network and connected to
    its internal network afterwards."""

    reason = r"created with no --network, so it sits on the engine's default bridge"

    def run_through(self, plan, runner, argv, **kw):
        if not _is_agent_create(argv) or "--network" not in argv:
            return runner.run(argv, **kw)
        i = argv.index("--network")
        net, name = argv[i + 1], argv[argv.index("--name") + 1]
        result = runner.run([*argv[:i], *argv[i + 2:]], **kw)
        runner.run(["docker", "network", "connect", net, name])
        return result


class AgentAddHostGatewayIp(_RunnerDefect, DockerBackend):
    """Issue 16: "--add-host NAME:<gateway IP> (an IP, not host-gateway)
    passes GUEST-NO-HOST-GATEWAY". Reintroduced: the agent network gets
    --subnet 10.213.7.0/24 and the agent --add-host host.internal:10.213.7.1,
    the bridge's gateway (the host's end)."""

    reason = r"10\.213\.7\.1 is the gateway of a network this launch created"

    def run_through(self, plan, runner, argv, **kw):
        if argv[:3] == ["docker", "network", "create"] and argv[-1].endswith("-agent"):
            argv = [*argv[:3], "--subnet", "10.213.7.0/24", *argv[3:]]
        return runner.run(_with_agent_flags(argv, ["--add-host", "host.internal:10.213.7.1"]),
                          **kw)


class TokenGzipBase64OnArgv(_RunnerDefect, DockerBackend):
    """Issue 16: "gzip-then-base64 on argv passes SECRET-ARGV". Reintroduced:
    the bundle's create carries base64(gzip("Bearer " + token)) in a label."""

    also = _ENCODED_SNAPSHOT
    reason = r"a token value is on argv \(gzip\+base64"

    def run_through(self, plan, runner, argv, **kw):
        if _gets_tokens(argv, kw):
            import gzip

            blob = base64.b64encode(gzip.compress(
                f"Bearer {_route_tokens(kw)[0]}".encode(), mtime=0)).decode()
            argv = argv[:2] + ["--label", f"bottle.debug-auth={blob}"] + argv[2:]
        return runner.run(argv, **kw)


_OUTSIDE = []


def _outside_dir() -> Path:
    """A host directory outside any scratch root the suite hands a launch."""
    if not _OUTSIDE:
        import atexit
        import shutil

        path = _tempfile.mkdtemp(prefix="bottle-broken-")
        atexit.register(shutil.rmtree, path, True)
        _OUTSIDE.append(Path(path))
    return _OUTSIDE[0]


class TokenEnvFileMountedIntoDaemon(_RunnerDefect, DockerBackend):
    """Issue 16: "a token env file bind-mounted into a daemon passes
    SECRET-FILES". Reintroduced: egress's tokens are written to an env file
    outside the state dir and bind-mounted into egress at /run/bottle/egress.env."""

    reason = r"egress\.env holds a token value"

    def run_through(self, plan, runner, argv, **kw):
        env = {k: v for k, v in (kw.get("env") or {}).items() if v}
        if _gets_tokens(argv, kw):
            path = _outside_dir() / f"{Path(plan.state_dir).name}-egress.env"
            path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            argv = argv[:2] + ["--mount", f"type=bind,source={path},"
                               "target=/run/bottle/egress.env,readonly"] + argv[2:]
        return runner.run(argv, **kw)


class TokenOnExecStdin(_RunnerDefect, DockerBackend):
    """Issue 16: "a token piped into the guest over exec stdin passes
    everything static". Reintroduced: after the readiness probe the first
    route's token is piped into the agent (``docker exec -i ... cat >
    /home/node/.token``), as a debugging aid would."""

    reason = r"piped into the standard input of"

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        if kw.get("purpose") == READY and plan.secrets and result.ok:
            token = next(iter(v for v in plan.secrets.values() if v), None)
            if token:
                runner.run(["docker", "exec", "-i", argv[2], "sh", "-c",
                            "cat > /home/node/.token"], input=token)
        return result


class MissingTokenRefusalListsRoutes(Broken, DockerBackend):
    """Issue 16: "the missing-token refusal listing every route" (with the
    values of the tokens that are set). Reintroduced: the SpecError keeps
    its file, key and line but appends every route's slot and value."""

    reason = r"the refusal of a launch with a missing token raised SpecError holding a token"

    def launch(self, plan, runner, *, progress: Progress = _quiet):
        try:
            return super().launch(plan, runner, progress=progress)
        except SpecError as exc:
            routes = ", ".join(f"{k}={v}" for k, v in plan.secrets.items())
            raise SpecError(f"{exc.message} (routes: {routes})", file=exc.file, key=exc.key,
                            line=exc.line) from None


class LaunchErrorCarriesDaemonEnv(_RunnerDefect, DockerBackend):
    """Issue 16: "a failed launch re-raised with the daemon env". Reintroduced:
    a command that fails is re-raised with the env it was given."""

    reason = r"token-carrying command failed raised RuntimeError holding a token"

    def run_through(self, plan, runner, argv, **kw):
        try:
            return runner.run(argv, **kw)
        except CommandError as exc:
            raise RuntimeError(f"{exc} (env: {kw.get('env')})") from exc


class ReadinessProbeUnmarked(_RunnerDefect, SmolmachinesBackend):
    """Issue 16: "LAUNCH-READY: an unmarked probe passes". Reintroduced: the
    probe runs without purpose=READY."""

    reason = r"no command of the launch is marked purpose=READY"

    def run_through(self, plan, runner, argv, **kw):
        if kw.get("purpose") == READY:
            kw = {**kw, "purpose": None}
        return runner.run(argv, **kw)


class CaCopiedBeforeReady(_RunnerDefect, DockerBackend):
    """Issue 16: "a guest copy (the CA step) before the first probe passes".
    Reintroduced: the CA is copied into the agent as soon as it starts,
    before the readiness probe (and the later copy is skipped)."""

    reason = r"commands reach the guest before its first readiness probe"

    def run_through(self, plan, runner, argv, **kw):
        if argv[:2] == ["docker", "start"] and argv[-1].endswith("-agent"):
            result = runner.run(argv, **kw)
            ca = Path(plan.state_dir) / ("egress-ca" if plan.routed else "pipelock-ca") / "ca.pem"
            runner.run(["docker", "cp", str(ca), f"{argv[-1]}:{CA_GUEST_PATH}"])
            return result
        if argv[:2] == ["docker", "cp"] and argv[-1].endswith(CA_GUEST_PATH):
            return ok(argv)
        return runner.run(argv, **kw)


class SmolvmVersionMajorOnly(Broken, SmolmachinesBackend):
    """Issue 16: "a smolvm version parsed by major only (accepting 1.0-1.7)
    passes SMOLVM-VERSION-FIRST". Reintroduced: only the major is compared."""

    reason = r"was not refused"

    def launch(self, plan, runner, *, progress: Progress = _quiet):
        import bottle_ref.backends.smolmachines as smol

        real = smol.smolvm_version_problem

        def major_only(result):
            version = smol.parse_smolvm_version(result.stdout) if result.ok else None
            if version is not None and version[0] >= smol.MIN_SMOLVM[0]:
                return None
            return real(result)

        smol.smolvm_version_problem = major_only
        try:
            return super().launch(plan, runner, progress=progress)
        finally:
            smol.smolvm_version_problem = real


# Read when this module is imported, as a backend reading its settings at
# import time would (PrepareReadsEnvAtImport).
_CPUS_AT_IMPORT = _os.environ.get("BOTTLE_SMOL_CPUS")


class PrepareReadsEnvAtImport(Broken, SmolmachinesBackend):
    """Issue 16: "PLAN-PURE misses an import-time environment read".
    Reintroduced: BOTTLE_SMOL_CPUS is read when the module is imported and
    sizes the VM."""

    reason = r"reads the environment at import time"

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        if _CPUS_AT_IMPORT and _CPUS_AT_IMPORT.isdigit():
            plan = dataclasses.replace(plan, cpus=int(_CPUS_AT_IMPORT))
        return plan


class PrepareReadsCodexAuth(Broken, DockerBackend):
    """Issue 16: "a prepare that reads the real ~/.codex/auth.json (the ci
    profile never draws a codex bottle forwarding credentials)". Reintroduced:
    a codex bottle forwarding credentials reads ~/.codex/auth.json itself."""

    reason = r"decoy value"

    def prepare(self, spec, host):
        real = Path.home() / CODEX_AUTH
        if spec.agent == "codex" and spec.forward_host_credentials and real.is_file():
            host = dataclasses.replace(host, home_files={**host.home_files,
                                                         CODEX_AUTH: real.read_text()})
        return super().prepare(spec, host)


class CodexAccountIdTokensOnly(Broken, DockerBackend):
    """Issue 16: "CRED-SHAPE never sees a host auth.json without
    tokens.account_id". Reintroduced: the placeholder's account_id is the
    host's tokens.account_id only (None without it), never the id token's
    chatgpt_account_id claim."""

    reason = r"tokens\.account_id is None, the host's is"

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        text = host.home_files.get(CODEX_AUTH)
        if not text:
            return plan
        try:
            account = (json.loads(text).get("tokens") or {}).get("account_id")
        except ValueError:
            return plan

        def change(data: dict) -> None:
            data["tokens"]["account_id"] = account if isinstance(account, str) else None

        return with_guest_file(plan, CODEX_AUTH_GUEST, change)


class _KeepStateBottle(DockerBottle):
    def close(self):
        import bottle_ref.backends.docker as mod

        real = mod.remove_state
        mod.remove_state = lambda path: None
        try:
            super().close()
        finally:
            mod.remove_state = real


class StateDirLeftOnClose(_BottleDefect, DockerBackend):
    """Issue 16: "a normal close that leaves the state dir (with CA keys) is
    caught only live". Reintroduced: close() removes the engine objects and
    keeps the state dir."""

    bottle_cls = _KeepStateBottle
    reason = r"after close\(\) the state dir .* is still there"


class _WorkdirRootBottle(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        out = list(super().agent_argv(argv, tty=tty))
        i = out.index("-w")
        out[i + 1] = "/"
        return out


class AgentWorkdirRoot(_BottleDefect, DockerBackend):
    """Issue 16: "no clause covers the agent's workdir". Reintroduced: the
    agent runs in /."""

    bottle_cls = _WorkdirRootBottle
    reason = r"runs the agent in /, outside /home/node"


class PlaceholderMode0644(_RunnerDefect, DockerBackend):
    """Issue 16: "who owns the credential placeholders (node, 0600)".
    Reintroduced: the Codex placeholder is made 0644 (world-readable)."""

    reason = r"auth\.json is put in the guest .* its mode is set to 0644, not 0600"

    def run_through(self, plan, runner, argv, **kw):
        script = sh_script(argv)
        if script and CODEX_AUTH_GUEST in script:
            argv = with_tail(argv, ["sh", "-c", script.replace("chmod 0600", "chmod 0644")])
        return runner.run(argv, **kw)


class PlaceholderOwnedByRoot(_RunnerDefect, DockerBackend):
    """Issue 16: the same, owner: the Codex placeholder stays root's."""

    reason = r"auth\.json is put in the guest .* chowned to root, not owned by node"

    def run_through(self, plan, runner, argv, **kw):
        script = sh_script(argv)
        if script and CODEX_AUTH_GUEST in script:
            argv = with_tail(argv, ["sh", "-c", script.replace("chown node:node",
                                                               "chown root:root")])
        return runner.run(argv, **kw)


class EgressGetsPipelockKey(_RunnerDefect, DockerBackend):
    """Issue 16: "which daemon gets which CA private key (egress only its
    own)". Reintroduced: egress is also handed pipelock's CA key."""

    reason = r"pipelock's CA key path /etc/pipelock/ca-key\.pem is mounted into .*-egress"

    def run_through(self, plan, runner, argv, **kw):
        if argv[:2] == ["docker", "create"] and any(a.endswith("-egress") for a in argv[:4]):
            key = Path(plan.state_dir) / "pipelock-ca" / "ca-key.pem"
            argv = argv[:2] + ["--mount", f"type=bind,source={key},"
                               "target=/etc/pipelock/ca-key.pem,readonly"] + argv[2:]
        return runner.run(argv, **kw)


class GuestGetsCaKey(_RunnerDefect, SmolmachinesBackend):
    """Issue 16: "... the guest none". Reintroduced: the CA's private key is
    copied into the machine beside its certificate."""

    reason = r"CA private key copied into guest"

    def run_through(self, plan, runner, argv, **kw):
        result = runner.run(argv, **kw)
        if argv[:3] == ["smolvm", "machine", "cp"] and argv[-1].endswith(CA_GUEST_PATH):
            key = str(Path(argv[3]).with_name("ca-key.pem"))
            machine = argv[-1].split(":", 1)[0]
            runner.run(["smolvm", "machine", "cp", key, f"{machine}:/root/ca-key.pem"])
        return result


class SmolvmOutboundLocalhostOnly(_SmolvmFixed):
    """Issue 16: "the topology model reads only --allow-cidr, so missing or
    --outbound-localhost-only lists are reported as 'cannot reach egress'
    instead of 'reaches everything'". Reintroduced: the machine is created
    with --outbound-localhost-only (smolvm: 127.0.0.0/8 and ::1/128, no port
    filter); PORT-EGRESS-ONLY-WHEN-ROUTED must say why."""

    also = {"SMOLVM-NO-NET": "--outbound-localhost-only gives the guest networking"}
    reason = r"reaches everything: --outbound-localhost-only"

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"]:
            argv = [*argv[:3], "--outbound-localhost-only", *argv[3:]]
        return super().run_through(plan, runner, argv, **kw)


class PlanSecretsKeyedByValue(Broken, DockerBackend):
    """Issue 16: "the secret checks take plan.secrets values as the tokens,
    so a plan keyed by value reports the wrong leak". Reintroduced: the
    plan's secrets map each token VALUE to its slot name, so launch finds no
    slot and egress never gets its tokens; SECRET-ARGV must report the
    undelivered tokens, not the slot names as "token values"."""

    reason = r"route token\(s\) of the host never reached a child"

    def prepare(self, spec, host):
        plan = super().prepare(spec, host)
        return dataclasses.replace(plan, secrets={v: k for k, v in plan.secrets.items() if v})


# Backends that must PASS a clause they used to FAIL for the wrong reason (or
# that a hardened backend must not fail): the meta-tests check each PASSES
# the clause named. Not broken backends (no `Broken`), so BROKEN stays exact.


class _RunnerTweak:
    """The runner seam of `_RunnerDefect`, for a backend that is not broken."""

    def launch(self, plan, runner, *, progress: Progress = _quiet):
        return super().launch(plan, _DefectRunner(self, plan, runner), progress=progress)

    def run_through(self, plan: Plan, runner: Runner, argv: list[str], **kw: Any) -> Completed:
        return runner.run(argv, **kw)


class CaPathEnvOnCreate(_RunnerTweak, DockerBackend):
    """PROV-CA counted ``-e VAR=<a path in the CA dir>`` on the agent's
    create as a copy of the CA. Here the agent gets such a variable."""

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(
            argv, ["-e", f"BOTTLE_AGENT_CA={CA_GUEST_PATH}"]), **kw)


class _DeclaredMountBottle(DockerBottle):
    def guest_mounts(self):
        return ("/home/node/work",)


class DeclaredWorkspaceMount(_RunnerTweak, DockerBackend):
    """GUEST-NO-HOST-MOUNTS ignored Bottle.guest_mounts() (LIVE-CONFINE
    honours it). Here the agent gets a declared workspace bind mount."""

    def launch(self, plan, runner, *, progress: Progress = _quiet):
        bottle = super().launch(plan, runner, progress=progress)
        bottle.__class__ = _DeclaredMountBottle
        return bottle

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(
            argv, ["--mount", f"type=bind,source={_outside_dir()},target=/home/node/work"]), **kw)


class HardenedAgent(_RunnerTweak, DockerBackend):
    """What issue 16's hardened reference runs: --cap-drop ALL with a few of
    docker's default capabilities added back, no-new-privileges, limits."""

    def run_through(self, plan, runner, argv, **kw):
        return runner.run(_with_agent_flags(argv, [
            "--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE,FOWNER",
            "--security-opt", "no-new-privileges", "--pids-limit", "512",
            "--memory", "2g", "--cpus", "2"]), **kw)


PASSING: dict[str, list[type[Backend]]] = {
    "PROV-CA": [CaPathEnvOnCreate],
    "GUEST-NO-HOST-MOUNTS": [DeclaredWorkspaceMount],
    "GUEST-NO-PRIVILEGE": [HardenedAgent],
}


ISSUE16: dict[str, list[type[Backend]]] = {
    "GUEST-NO-PRIVILEGE": [AgentSeccompUnconfined, AgentApparmorUnconfined, AgentHostDevice],
    "GUEST-NET-INTERNAL": [AgentConnectedNotCreatedOnNetwork],
    "GUEST-NO-HOST-GATEWAY": [AgentAddHostGatewayIp],
    "SECRET-ARGV": [TokenGzipBase64OnArgv, PlanSecretsKeyedByValue],
    "SECRET-FILES": [TokenEnvFileMountedIntoDaemon],
    "SECRET-STDIN": [TokenOnExecStdin],
    "SECRET-ERRORS": [MissingTokenRefusalListsRoutes, LaunchErrorCarriesDaemonEnv],
    "LAUNCH-READY": [ReadinessProbeUnmarked, CaCopiedBeforeReady],
    "SMOLVM-VERSION-FIRST": [SmolvmVersionMajorOnly],
    "PLAN-PURE": [PrepareReadsEnvAtImport, PrepareReadsCodexAuth],
    "CRED-SHAPE": [CodexAccountIdTokensOnly],
    "TEARDOWN-STATE": [StateDirLeftOnClose],
    "PROV-WORKDIR": [AgentWorkdirRoot],
    "PROV-CRED-OWNER": [PlaceholderMode0644, PlaceholderOwnedByRoot],
    "PROV-CA-KEYS": [EgressGetsPipelockKey, GuestGetsCaKey],
    "PORT-EGRESS-ONLY-WHEN-ROUTED": [SmolvmOutboundLocalhostOnly],
}
for _cid, _classes in ISSUE16.items():
    BROKEN.setdefault(_cid, []).extend(_classes)


# --- issue 18: profiles -------------------------------------------------------------


class SmolvmProfileUndeclared(Broken, SmolmachinesBackend):
    """Runs smolvm (its guest is a smolvm machine) but declares only docker-cli,
    so every SMOLVM-* clause would be NOT_APPLICABLE: the dodge PROFILE-DECLARED
    exists to catch."""

    name = "smolmachines"
    profiles = frozenset({"docker-cli"})


class DockerProfileUndeclared(Broken, DockerBackend):
    """Drives docker for its agent container but declares no profile at all
    (GUEST-* and DOCKER-ARGV would be NOT_APPLICABLE)."""

    name = "docker"
    profiles = frozenset()


class SmolvmProfileOverDeclared(Broken, DockerBackend):
    """Declares the smolvm profile though no launch runs smolvm (its clauses
    would have nothing to read)."""

    name = "docker"
    profiles = frozenset({"docker-cli", "container-guest", "smolvm"})


BROKEN["PROFILE-DECLARED"] = [SmolvmProfileUndeclared, DockerProfileUndeclared,
                              SmolvmProfileOverDeclared]


class AgentNetworkFlagOutsideGrammar(_RunnerDefect, DockerBackend):
    """Issue 18: a `network create` the argv library cannot parse was silently
    dropped, so GUEST-NET-INTERNAL FAILED with "which this launch did not
    create". Reintroduced: podman's `--disable-dns` (containers/podman
    cmd/podman/networks/create.go:83) on a docker `network create`, which
    docker refuses (DOCKER-ARGV); the guest clauses that must read it are
    NOT_SUPPORTED naming the flag (test_meta checks), never FAILED."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[:3] == ["docker", "network", "create"] and argv[-1].endswith("-agent"):
            argv = [*argv[:3], "--disable-dns", *argv[3:]]
        return runner.run(argv, **kw)


BROKEN["DOCKER-ARGV"] = [*BROKEN["DOCKER-ARGV"], AgentNetworkFlagOutsideGrammar]


# issue 14: smolmachines with no network; the first hop through mounted sockets
# ================================================================================


class SmolvmOldNetDesign(_SmolvmFixed):
    """Issue 14: the old design, ``--net --allow-cidr 127.77.x.y/32``: virtio-net
    (smolvm src/network/launch.rs plan_launch_network), so the guest's 127/8
    stays inside it, DNS is forwarded for any name and the CIDR has no port
    filter. Reintroduced on top of the sockets."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"]:
            argv = [*argv[:5], "--net", "--allow-cidr", "127.77.1.2/32", *argv[5:]]
        return super().run_through(plan, runner, argv, **kw)


class SmolvmDnsFlag(_SmolvmFixed):
    """Issue 14: ``--dns IP`` "implies --net" (smolvm 1.9.3 machine.rs ~2990).
    Reintroduced: a custom resolver for the guest."""

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"]:
            argv = [*argv[:5], "--dns", "10.0.0.53", *argv[5:]]
        return super().run_through(plan, runner, argv, **kw)


class SmolvmPublishedGuestPort(_SmolvmFixed):
    """Issue 14: a published port makes smolvm attach virtio-net
    (plan_launch_network: has_ports). Reintroduced: ``-p 127.0.0.1::8080``-style
    ``-p 18080:8080`` on the machine."""

    also = {"PORT-NO-FIXED": "a fixed host port on the machine is PORT-NO-FIXED's too",
            "PORT-LOOPBACK": "-p HOST:GUEST binds every host interface"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"]:
            argv = [*argv[:5], "-p", "18080:8080", *argv[5:]]
        return super().run_through(plan, runner, argv, **kw)


class SmolvmEngineSocket(_SmolvmFixed):
    """Issue 14: "one socket each, none extra". Reintroduced: the docker
    engine's socket mounted beside the daemons' (a way around every hop)."""

    also = {"GUEST-NO-HOST-MOUNTS": "an engine socket in the guest is a host mount too"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"]:
            argv = [*argv[:5], "--mount-socket", "/var/run/docker.sock:/run/docker.sock",
                    *argv[5:]]
        return super().run_through(plan, runner, argv, **kw)


class SmolvmSocketMissing(_SmolvmFixed):
    """Issue 14: each agent-facing daemon gets its socket. Reintroduced: the
    last --mount-socket (supervise's, git-gate's, or the first hop's) dropped."""

    also = {"PROV-MCP": "supervise, when its socket is the one dropped, is registered at an "
                        "address the guest cannot reach",
            "PROV-CODEX-MCP": "the same, for the codex bottle's registration",
            "PORT-EGRESS-ONLY-WHEN-ROUTED": "when the first hop's socket is the one dropped, "
                                            "a routed guest cannot reach egress",
            "PROV-GITGATE": "when git-gate's socket is the one dropped, its insteadOf leads "
                            "nowhere"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"] and "--mount-socket" in argv:
            i = len(argv) - 1 - argv[::-1].index("--mount-socket")
            argv = [*argv[:i], *argv[i + 2:]]
        return super().run_through(plan, runner, argv, **kw)


class SmolvmSocketsShareAPath(_SmolvmFixed):
    """Issue 14 / smolvm parse_published_sockets: "guest path is mounted more
    than once" (the later bind mount shadows the first). Reintroduced: every
    socket at one guest path."""

    also = {"PROV-MCP": "supervise's relay then points at a guest path no socket of its own "
                        "is mounted at",
            "PROV-CODEX-MCP": "the same, for the codex bottle's registration",
            "PROV-GITGATE": "git-gate's relay then points at a guest path no socket of its "
                            "own is mounted at"}

    def run_through(self, plan, runner, argv, **kw):
        if argv[1:3] == ["machine", "create"]:
            argv = [a.rsplit(":", 1)[0] + ":/run/bottle/hop.sock"
                    if i and argv[i - 1] == "--mount-socket" else a for i, a in enumerate(argv)]
            if argv.count("--mount-socket") < 2:  # one daemon only: add a twin
                first = argv[argv.index("--mount-socket") + 1]
                argv = [*argv[:5], "--mount-socket", first, *argv[5:]]
        return super().run_through(plan, runner, argv, **kw)


BROKEN["SMOLVM-NO-NET"] = [SmolvmOldNetDesign, SmolvmDnsFlag, SmolvmPublishedGuestPort]
BROKEN["SMOLVM-SOCKETS"] = [SmolvmEngineSocket, SmolvmSocketMissing, SmolvmSocketsShareAPath]


# --- issue 15 (second pass): PIPELOCK-ENFORCE: SSRF exemptions only when asked -------

class PipelockSsrfRangeExempt(Broken, DockerBackend):
    """Issue 15: every rendered config exempts 10.0.0.0/8 from pipelock's SSRF
    guard (``ssrf.ip_allowlist``) although nothing asked for it."""

    def prepare(self, spec, host):
        return with_pipelock(super().prepare(spec, host),
                             lambda d: d.__setitem__("ssrf", {"ip_allowlist": ["10.0.0.0/8"]}))


class PipelockTrustsUnaskedHost(Broken, SmolmachinesBackend):
    """Issue 15: the renderer adds a trusted domain nobody named (and narrows
    ``internal`` to loopback), so the bottle's pipelock may reach that host on
    an internal address."""

    def prepare(self, spec, host):
        def change(d):
            d["trusted_domains"] = [*(d.get("trusted_domains") or []), "metadata.internal.test"]
            d["internal"] = ["127.0.0.0/8"]
        return with_pipelock(super().prepare(spec, host), change)


BROKEN["PIPELOCK-ENFORCE"] = [*BROKEN["PIPELOCK-ENFORCE"], PipelockSsrfRangeExempt,
                              PipelockTrustsUnaskedHost]


# --- issue 19 (certify false failure): PROV-CODEX-PROMPT reads tokens, not letters ---

class _CodexPromptPositional(DockerBottle):
    def agent_argv(self, argv=(), *, tty=True):
        out = super().agent_argv(argv, tty=tty)
        prompt = self.plan.prompt.strip()
        if self.plan.agent == "codex" and prompt and len(prompt) <= 40:
            out.append(prompt)  # codex's positional PROMPT: a short one "fits"
        return out


class CodexShortPromptOnArgv(_BottleDefect, DockerBackend):
    """PROV-CODEX-PROMPT: codex takes a positional PROMPT, and a short prompt
    goes there instead of ~/.codex/AGENTS.md's copy, where ps shows it. The
    check reads argv tokens against a second recording of the same case (a
    prompt like ``0`` is inside 127.0.0.1 either way), so this still FAILS."""

    bottle_cls = _CodexPromptPositional
    reason = "the prompt text is on an argv"


BROKEN["PROV-CODEX-PROMPT"] = [*BROKEN["PROV-CODEX-PROMPT"], CodexShortPromptOnArgv]
