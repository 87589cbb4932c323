"""Example budgets and helpers shared by the invariant properties."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, settings

from bottle_api.spec import BottleSpec

from ... import redaction
from ... import strategies as bst
from ...capabilities import Capability, parse_capabilities
from ...argv import ArgvError, UnknownTool, agent_exec, framing_problem
from ...argv.framing import guest_command
from ...outcomes import not_supported
from ...recording import (
    Recording,
    contains_seq,
    is_guest_exec,
    record,
)
from .facts import CLAUDE_API_HOSTS, CODEX_API_HOSTS, _Loader

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


def _record_again(backend, rec: Recording, spec: BottleSpec) -> Recording:
    """``spec`` recorded under ``rec``'s host and scratch directory (call it
    inside `_recorded`): a second recording of the same case, one field
    changed, for a differential check (`readers.prompt_on_argv`)."""
    return record(backend, (spec, rec.host), tmp=Path(rec.host.state_root).parent)


def _launched(rec: Recording) -> None:
    assert rec.error is None, (
        f"recorded launch of a generated case failed: {rec.describe_error()} "
        f"(spec {rec.spec!r})")


def _agent_index(argv: Sequence[str], agent: str) -> int:
    """Index of the ``agent`` binary in an agent argv, found by role (the
    guest exec whose command runs it, `conformance.argv.agent_exec`), or -1.
    An argv no grammar of the suite reads is NOT_SUPPORTED, never guessed."""
    try:
        found = agent_exec(argv, {agent})
    except UnknownTool as exc:
        not_supported(f"agent argv not readable: {exc}")
    except ArgvError:
        return -1
    return found.at if found is not None else -1


def _node_problem(argv: Sequence[str], at: int) -> str | None:
    """The suite's one node-framing oracle (`conformance.argv.framing_problem`)
    for the guest command at ``argv[at]``; NOT_SUPPORTED for an unknown tool."""
    try:
        return framing_problem(argv, at)
    except UnknownTool as exc:
        not_supported(f"exec framing not readable: {exc}")


def _guest_commands(rec: Recording) -> list[tuple[tuple[str, ...], int]]:
    """``(argv, index of the in-guest command)`` of every guest exec the
    argv library reads (an exec its tool would refuse is kept, from after
    its ``--``, so the framing oracle reports the refusal)."""
    out = []
    for a in rec.runs():
        try:
            found = guest_command(a)
        except UnknownTool:
            continue
        except ArgvError:
            if is_guest_exec(a) and "--" in a:
                out.append((a, list(a).index("--") + 1))
            continue
        if found is not None:
            out.append((a, found[0]))
    return out


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
