"""outside_backend: a worked example of a bottle backend outside this repository.

A backend author's starting point: a package of its own (see its
pyproject.toml) that implements the seam in `bottle_api.backend`, reuses the
author's toolkit `bottle_kit` (planning, CA, state, provisioning: a
documented, versioned API) and nothing else of the project, is registered by
the ``bottle.backends`` entry point ``outside`` and keeps its reviewed argv
snapshots in its own ``snapshots/outside/``. Certify it with

    pip install bottle-conformance        # the wheel; nothing from the repo
    pip install ./outside_backend
    bottle-conformance run --backend outside --tier snapshot,invariant --certify

It speaks podman's dialect on purpose, so the suite's argv reading is
exercised beyond docker's:

- one ``podman create`` per container with every network at once, aliases
  in podman's ``--network NET:alias=NAME`` form (no ``network connect``);
- ``podman exec --user node:node`` (user AND group) instead of ``-u node``;
- bind mounts as ``-v SRC:DST:ro,Z`` (SELinux relabel), not ``--mount``;
- ``podman rm -f -v`` / ``podman network rm`` at teardown;
- the readiness probe is marked ``purpose=READY`` on the runner call.

It declares no ``live`` capability: it is recorded, never run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from bottle_api.backend import Backend, Bottle, Progress
from bottle_api.conventions import (
    BUNDLE_ENTRY,
    EGRESS,
    EGRESS_CA_CERT,
    EGRESS_CA_KEY,
    EGRESS_ROUTES_PATH,
    GIT_GATE,
    NODE,
    NODE_HOME,
    PIPELOCK,
    PIPELOCK_CA_CERT,
    PIPELOCK_CA_KEY,
    PIPELOCK_CONFIG_PATH,
    PORTS,
    ROOT,
    ROOT_HOME,
    SUPERVISE,
    SUPERVISE_MCP_PATH,
)
from bottle_api.host import HostContext
from bottle_api.plan import Plan
from bottle_api.runner import READY, Completed, RecordingRunner, Runner, poll
from bottle_api.spec import BottleSpec, SpecError
from bottle_kit import (
    Addresses,
    GuestChannel,
    build_plan,
    check_host_inputs,
    ensure_ca,
    provision,
    remove_state,
    write_state,
)

PODMAN = "podman"
LABEL = "io.outside-backend.bottle"
READY_TIMEOUT = 30.0
PIPELOCK_URL = f"http://{PIPELOCK}:{PORTS[PIPELOCK]}"
AGENTS = {"claude": "claude", "codex": "codex"}


def _home(user: str) -> str:
    return ROOT_HOME if user == ROOT else NODE_HOME


def exec_argv(container: str, cmd: Sequence[str], *, user: str = NODE,
              env: Mapping[str, str] | None = None, env_names: Sequence[str] = (),
              tty: bool = False, interactive: bool = False,
              workdir: str | None = None) -> list[str]:
    """``podman exec --user node:node -e HOME=... [-e USER=node]``: podman
    takes ``user[:group]``; a node command gets USER beside HOME."""
    argv = [PODMAN, "exec"]
    if interactive or tty:
        argv.append("-i")
    if tty:
        argv.append("-t")
    argv += ["--user", f"{user}:{user}" if user == NODE else user,
             "-e", f"HOME={_home(user)}"]
    if user == NODE:
        argv += ["-e", f"USER={NODE}"]
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    for name in env_names:
        argv += ["-e", name]
    if workdir:
        argv += ["-w", workdir]
    return [*argv, container, *cmd]


class PodChannel(GuestChannel):
    def __init__(self, container: str):
        self.container = container

    def exec_argv(self, cmd, *, user=NODE, env=None, tty=False) -> list[str]:
        return exec_argv(self.container, cmd, user=user, env=env, tty=tty)

    def copy_argv(self, host_path: str, guest_path: str) -> list[str]:
        return [PODMAN, "cp", str(host_path), f"{self.container}:{guest_path}"]


def addresses(plan: Plan) -> Addresses:
    hop = EGRESS if plan.routed else PIPELOCK
    return Addresses(
        proxy_url=f"http://{hop}:{PORTS[hop]}",
        git_gate_url=f"git://{GIT_GATE}:{PORTS[GIT_GATE]}" if GIT_GATE in plan.daemons else None,
        supervise_url=(f"http://{SUPERVISE}:{PORTS[SUPERVISE]}{SUPERVISE_MCP_PATH}"
                       if SUPERVISE in plan.daemons else None),
    )


def agent_env(plan: Plan) -> dict[str, str]:
    hop = addresses(plan).proxy_url
    proxy = {"HTTPS_PROXY": hop, "HTTP_PROXY": hop, "NO_PROXY": f"{GIT_GATE},{SUPERVISE}"}
    proxy.update({k.lower(): v for k, v in proxy.items()})
    return {**proxy, **{k: v for k, v in plan.guest_env.items() if k not in proxy}}


def _ro(source: object, target: str) -> list[str]:
    return ["-v", f"{source}:{target}:ro,Z"]


class OutsideBottle(Bottle):
    def __init__(self, plan: Plan, runner: Runner, ident: str):
        self.plan, self.runner, self.ident = plan, runner, ident
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.prompt_path: str | None = None
        self._closed = False

    @property
    def agent(self) -> str:
        return f"{self.ident}-agent"

    def agent_argv(self, argv: Sequence[str] = (), *, tty: bool = True) -> list[str]:
        cmd = [AGENTS[self.plan.agent]]
        if self.plan.agent == "claude" and self.prompt_path:
            cmd += ["--append-system-prompt-file", self.prompt_path]
        return exec_argv(self.agent, [*cmd, *argv], tty=tty, interactive=True,
                         workdir=NODE_HOME)

    def exec(self, cmd, *, user=NODE, env=None, timeout=None, check=False) -> Completed:
        env = dict(env or {})
        return self.runner.run(exec_argv(self.agent, cmd, user=user, env_names=list(env)),
                               env=env or None, timeout=timeout, check=check)

    def close(self) -> None:
        """Remove by name; a failed removal counts as done only where the
        engine said the object does not exist (TEARDOWN-LOUD): otherwise
        raise naming what may remain, and keep the state dir."""
        if self._closed:
            return
        left = []
        for names, argv in ((self.containers, [PODMAN, "rm", "-f", "-v"]),
                            (self.networks, [PODMAN, "network", "rm"])):
            if not names:
                continue
            result = self.runner.run([*argv, *reversed(names)], check=False)
            if not result.ok:
                said = (result.stderr + result.stdout).lower()
                left += [n for n in names if not (n.lower() in said and (
                    "no such" in said or "not found" in said))]
        if left:
            raise RuntimeError(f"outside: cannot confirm removal of {', '.join(left)}")
        remove_state(self.plan.state_dir)
        self._closed = True


class OutsideBackend(Backend):
    name: ClassVar[str] = "outside"
    version: ClassVar[str] = "0.1"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"tty", "git_gate", "supervise", "codex", "claude"})
    profiles: ClassVar[frozenset[str]] = frozenset({"docker-cli", "container-guest"})

    def prepare(self, spec: BottleSpec, host: HostContext) -> Plan:
        return build_plan(spec, host, backend=self.name, pipelock_url=PIPELOCK_URL,
                          pipelock_listen=f"0.0.0.0:{PORTS[PIPELOCK]}")

    def launch(self, plan: Plan, runner: Runner, *, progress: Progress = print) -> OutsideBottle:
        if plan.missing_tokens:
            key = plan.missing_tokens[0]
            raise SpecError("a token this bottle needs is not set on the host",
                            file=plan.spec_source, key=key, line=plan.spec_lines.get(key))
        check_host_inputs(plan)
        bottle = OutsideBottle(plan, runner, runner.unique(f"pod-{plan.bottle}"))
        try:
            self._up(bottle, progress)
        except BaseException:
            bottle.close()
            raise
        return bottle

    def script(self, runner: RecordingRunner, plan: Plan) -> None:
        runner.reply(PODMAN, "exec", contains="update-ca-certificates",
                     stdout="Updating certificates in /etc/ssl/certs...\n1 added, 0 removed; done.\n")

    @staticmethod
    def _up(bottle: OutsideBottle, progress: Progress) -> None:
        plan, runner, ident = bottle.plan, bottle.runner, bottle.ident
        label = f"{LABEL}={ident}"
        files = write_state(plan)
        pipelock_ca = ensure_ca(runner, files.pipelock_ca_dir, common_name="outside pipelock CA")
        egress_ca = (ensure_ca(runner, files.egress_ca_dir, common_name="outside egress CA")
                     if plan.routed else None)

        net = {role: f"{ident}-{role}" for role in ("agent", "bundle", "out")}
        for role in ("agent", "bundle", "out"):
            internal = ["--internal"] if role != "out" else []
            runner.run([PODMAN, "network", "create", *internal, "--label", label, net[role]])
            bottle.networks.append(net[role])

        def create(role: str, nets: Sequence[tuple[str, bool]], args: Sequence[str],
                   image: str, cmd: Sequence[str], env: Mapping[str, str] | None = None) -> None:
            """One create, every network at once: ``--network NET[:alias=ROLE]``."""
            name = f"{ident}-{role}"
            progress(f"creating {role}")
            argv = [PODMAN, "create", "--name", name, "--label", label]
            for network, aliased in nets:
                argv += ["--network", f"{network}:alias={role}" if aliased else network]
            runner.run([*argv, *args, image, *cmd], env=env or None)
            bottle.containers.append(name)

        bundle = plan.bundle_image_ref
        create(PIPELOCK,
               [(net["bundle"], True), (net["out"], False)]
               + ([] if plan.routed else [(net["agent"], True)]),
               [*_ro(files.pipelock_yaml, PIPELOCK_CONFIG_PATH),
                *_ro(pipelock_ca.cert, PIPELOCK_CA_CERT), *_ro(pipelock_ca.key, PIPELOCK_CA_KEY)],
               bundle, [BUNDLE_ENTRY, PIPELOCK])
        slots = [s for s in plan.egress.token_slots if s in plan.secrets]
        egress_args = ["-e", f"EGRESS_UPSTREAM_PROXY={plan.egress.upstream_proxy}"]
        for slot in slots:
            egress_args += ["-e", slot]
        egress_args += _ro(files.egress_routes_yaml, EGRESS_ROUTES_PATH)
        if egress_ca is not None:
            egress_args += [*_ro(egress_ca.cert, EGRESS_CA_CERT), *_ro(egress_ca.key, EGRESS_CA_KEY),
                            *_ro(pipelock_ca.cert, PIPELOCK_CA_CERT)]
        create(EGRESS, [(net["bundle"], True)] + ([(net["agent"], True)] if plan.routed else []),
               egress_args, bundle, [BUNDLE_ENTRY, EGRESS],
               env={s: plan.secrets[s] for s in slots})
        if GIT_GATE in plan.daemons:
            repos = ",".join(u.name for u in plan.git_gate.upstreams)
            create(GIT_GATE, [(net["agent"], True)], ["-e", f"GIT_GATE_REPOS={repos}"],
                   bundle, [BUNDLE_ENTRY, GIT_GATE])
        if SUPERVISE in plan.daemons:
            create(SUPERVISE, [(net["agent"], True)], [], bundle, [BUNDLE_ENTRY, SUPERVISE])
        env_args = [a for k, v in agent_env(plan).items() for a in ("-e", f"{k}={v}")]
        create("agent", [(net["agent"], False)], [*env_args, "--entrypoint", "sleep"],
               plan.agent_image_ref, ["infinity"])
        for name in bottle.containers:
            runner.run([PODMAN, "start", name])

        progress("waiting for the agent")
        poll(runner, lambda: runner.run([PODMAN, "exec", bottle.agent, "true"], check=False,
                                        purpose=READY).ok,
             timeout=READY_TIMEOUT, what=f"podman container {bottle.agent}")
        ca = egress_ca if egress_ca is not None else pipelock_ca
        bottle.prompt_path = provision(plan, PodChannel(bottle.agent), runner, addresses(plan),
                                       ca_pem_host_path=str(ca.cert), log=progress)
