"""Example budgets and helpers shared by the invariant properties."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import shlex
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, settings

from ... import redaction
from ... import strategies as bst
from ...capabilities import Capability, parse_capabilities
from ...recording import (
    Recording,
    contains_seq,
    env_assignments,
    guest_command_start,
    is_guest_exec,
    record,
)
from .facts import CLAUDE_API_HOSTS, CODEX_API_HOSTS, NODE, NODE_HOME, _Loader

# -- budgets ----------------------------------------------------------------------


def _budget(fraction: float) -> settings:
    """Settings for one property: the active profile's max_examples scaled by
    ``fraction`` (the profile's other settings are inherited as they are).

    Suppressed health checks, and why: fixtures of any scope are fine (no
    property mutates the backend); one test class per backend means the same
    tier method runs with several ``self`` types (differing_executors), which
    is safe because every example is valid for every backend; recorded
    launches are slow by hypothesis' standards (too_slow). No deadline: a
    recorded launch's wall time depends on the host's filesystem and load,
    not on the backend's correctness (the ci and certify profiles agree)."""
    base = settings.default.max_examples
    return settings(
        max_examples=max(1, round(base * fraction)),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.differing_executors],
    )


_PLAN = _budget(0.5)  # plan properties: prepare only
_LAUNCH = _budget(0.5)  # recorded properties: a whole recorded launch per example


# -- helpers ----------------------------------------------------------------------


def _show(argv: Sequence[str]) -> str:
    text = shlex.join(str(a) for a in argv)
    return text if len(text) <= 600 else text[:597] + "..."


def _routed(spec) -> bool:
    """Independent hop oracle: any declared route, or auto routes from
    forward_host_credentials (each agent has at least one API host)."""
    return bool(spec.routes) or spec.forward_host_credentials


def _expected_daemons(spec) -> list[str]:
    return (["egress", "pipelock"] + (["git-gate"] if spec.upstreams else [])
            + (["supervise"] if spec.supervise else []))


def _api_hosts(agent: str) -> tuple[str, ...]:
    return CODEX_API_HOSTS if agent == "codex" else CLAUDE_API_HOSTS


def _scratch_parent() -> str | None:
    """Where per-example scratch dirs go: a tmpfs when there is one (a
    recorded launch creates and removes a dozen small dirs and files; on a
    disk-backed /tmp that I/O, not the backend, dominates), else the default."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


_SCRATCH = _scratch_parent()


def _scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="bottle-inv-", dir=_SCRATCH)


def _planted(host) -> set[str]:
    """Every secret a generated host carries: env values holding
    `SECRET_MARK` (route tokens) and each credential file's material."""
    out = {v for v in host.env.values() if bst.SECRET_MARK in v}
    for text in host.home_files.values():
        try:
            out |= bst.credential_material(text)
        except (ValueError, TypeError, AttributeError):
            continue
    return out


def _fit(backend, case):
    """The case, cut to what ``backend`` declares it supports: no supervise
    without ``supervise``, no upstreams without ``git_gate``; an agent it
    cannot run is rejected (hypothesis draws another case)."""
    spec, host = case
    redaction.plant_all(_planted(host))  # never in anything the suite writes
    caps = parse_capabilities(getattr(backend, "capabilities", ()))
    assume(Capability(spec.agent) in caps)
    if spec.supervise and Capability.SUPERVISE not in caps:
        spec = dataclasses.replace(spec, supervise=False)
    if spec.upstreams and Capability.GIT_GATE not in caps:
        spec = dataclasses.replace(spec, upstreams=())
    return spec, host


@contextlib.contextmanager
def _recorded(backend, case) -> Iterator[Recording]:
    """Launch ``case`` with a recording runner under a fresh scratch
    directory (removed afterwards); skills and cwd become real dirs there."""
    with _scratch() as tmp:
        root = Path(tmp)
        spec, host = bst.materialise(*case, root)
        yield record(backend, (spec, host), tmp=root)


def _launched(rec: Recording) -> None:
    assert rec.error is None, (
        f"recorded launch of a generated case failed: {rec.describe_error()} "
        f"(spec {rec.spec!r})")


def _agent_index(argv: Sequence[str], agent: str) -> int:
    for i, tok in enumerate(argv):
        if tok == agent or (tok.startswith("/") and posixpath.basename(tok) == agent):
            return i
    return -1


def _user_switch_problem(prefix: Sequence[str]) -> str | None:
    """Why ``prefix`` (everything before a command) does not run it as node
    with HOME=/home/node, or None. The *last* user switch and the *last*
    HOME assignment win, as they do for docker and for nested runuser."""
    users: list[str] = []
    for i, tok in enumerate(prefix):
        if tok in ("-u", "--user") and i + 1 < len(prefix):
            users.append(prefix[i + 1])
        elif tok.startswith("--user="):
            users.append(tok.split("=", 1)[1])
        elif tok.startswith("-u") and len(tok) > 2 and not tok.startswith("--"):
            users.append(tok[2:])
    assigned = env_assignments(prefix)
    homes = [v for k, v in assigned if k == "HOME"]
    user_vars = [v for k, v in assigned if k == "USER"]
    if not users:
        return "no switch to node before it (no -u node / --user node / runuser -u node --)"
    if users[-1].split(":")[0] != NODE:
        return f"the last user switch before it is to {users[-1]!r}, not node"
    if not homes:
        return "it switches to node but never sets HOME=/home/node (HOME stays root's)"
    if homes[-1] != NODE_HOME:
        return f"it switches to node but the last HOME set before it is {homes[-1]!r}"
    # runuser -u keeps the caller's environment: from a root exec channel
    # USER stays root's unless set (DESIGN s4 frames -e USER=node).
    if "runuser" in prefix and (not user_vars or user_vars[-1] != NODE):
        return (f"it switches with runuser but USER is {user_vars[-1]!r}" if user_vars
                else "it switches with runuser but never sets USER=node (USER stays root's)")
    return None


def _guest_commands(rec: Recording) -> list[tuple[tuple[str, ...], int]]:
    """``(argv, index of the in-guest command)`` of every guest exec."""
    return [(a, guest_command_start(a)) for a in rec.runs() if is_guest_exec(a)]


def _git_config_calls(rec: Recording, key_prefix: str) -> list[tuple[tuple[str, ...], int, str, str]]:
    """``(argv, index of 'git', key, value)`` of every guest
    ``git config --global <key> <value>`` whose key starts with ``key_prefix``."""
    out = []
    for argv, start in _guest_commands(rec):
        at = contains_seq(argv[start:], ["git", "config", "--global"])
        if at < 0:
            continue
        i = start + at
        rest = argv[i + 3:]
        if len(rest) >= 2 and rest[0].startswith(key_prefix):
            out.append((argv, i, rest[0], rest[1]))
    return out


def _pipelock_config(plan) -> dict:
    data = yaml.load(plan.pipelock.config_yaml, Loader=_Loader)  # noqa: S506 - safe loader
    assert isinstance(data, dict), (
        f"pipelock.yaml is not a mapping: {plan.pipelock.config_yaml[:200]!r}")
    return data


def _guest_file(plan, path: str):
    files = [f for f in plan.guest_files if f.path == path]
    assert len(files) == 1, (
        f"expected one guest file at {path}, the plan has "
        f"{[f.path for f in plan.guest_files]}")
    return files[0]
