"""The typed vocabulary a backend uses to say what it can do.

A backend declares capabilities as strings on ``Backend.capabilities``; a
clause that needs one the backend did not declare reports NOT_SUPPORTED,
never PASSED. Names are matched case-insensitively and ``-`` equals ``_``
(``git-gate`` is ``git_gate``), so the CLI spelling and the Python spelling
both work.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Capability(StrEnum):
    """One thing a backend may or may not support. ``.description`` says what."""

    def __new__(cls, value: str, description: str) -> "Capability":
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        member.__doc__ = description
        return member

    LIVE = (
        "live",
        "Real bottles can be launched where the suite runs (engine present), "
        "so live probes run against a running guest and bundle.",
    )
    TTY = (
        "tty",
        "agent_argv(tty=True) frames an interactive terminal (e.g. docker exec -it, "
        "smolvm exec -t plus a resize wrapper).",
    )
    GIT_GATE = (
        "git_gate",
        "Declared git upstreams are fronted by a git-gate daemon the guest reaches "
        "through ~/.gitconfig insteadOf rewrites.",
    )
    SUPERVISE = (
        "supervise",
        "The supervise MCP server runs in the bundle and is registered in the "
        "agent's own user config (Claude: ~/.claude.json; Codex: ~/.codex/config.toml).",
    )
    CODEX = (
        "codex",
        "Bottles may run the OpenAI Codex CLI (rustls CA handling, ~/.codex/auth.json "
        "placeholders, Codex API host passthrough; the prompt in ~/.codex/AGENTS.md, "
        "skills in ~/.agents/skills, codex mcp add).",
    )
    CLAUDE = (
        "claude",
        "Bottles may run Claude Code (prompt file, skills, ~/.claude credentials "
        "placeholder, claude mcp registration).",
    )


class Profile(StrEnum):
    """A part of the contract tied to what a backend drives (compare Gateway
    API's conformance profiles). Every backend meets ``core``; a backend also
    declares (``Backend.profiles``) each profile whose tools it drives, and
    a clause of a profile it does not declare is NOT_APPLICABLE: neither
    passed nor failed. PROFILE-DECLARED checks the declaration against the
    recorded argv, so declaring fewer profiles cannot dodge their clauses.
    ``.description`` says when a backend is in the profile."""

    def __new__(cls, value: str, description: str) -> "Profile":
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        member.__doc__ = description
        return member

    CORE = (
        "core",
        "Every backend: the plan, exec framing, credentials, pipelock, provisioning, "
        "launch, teardown and the live probes. Always in force; never declared.",
    )
    DOCKER_CLI = (
        "docker-cli",
        "The backend runs a container engine through the docker CLI grammar (docker, "
        "podman, nerdctl) for any part of a bottle (bundle or guest).",
    )
    CONTAINER_GUEST = (
        "container-guest",
        "The agent's guest is a container of such an engine (the agent exec is a "
        "docker/podman/nerdctl exec). Implies docker-cli.",
    )
    SMOLVM = (
        "smolvm",
        "The backend runs smolvm (smol-machines/smolvm): microVM guests, packs.",
    )


class UnknownProfileError(ValueError):
    """A profile name outside the vocabulary; the message lists the valid ones."""


def parse_profile(name: str) -> Profile:
    """One name (``"docker-cli"``, ``"DOCKER_CLI"``, a `Profile`) to a member."""
    key = str(name).strip().lower().replace("_", "-")
    for member in Profile:
        if member.value == key:
            return member
    valid = ", ".join(m.value for m in Profile if m is not Profile.CORE)
    raise UnknownProfileError(f"unknown profile {str(name)!r} (known: {valid})")


def parse_profiles(names: Iterable[str]) -> frozenset[Profile]:
    """Declared names (iterable or comma-separated string) to members, core
    always included. Empty entries are ignored."""
    if isinstance(names, str):
        names = names.split(",")
    out = {Profile.CORE}
    for name in names:
        if str(name).strip():
            out.add(parse_profile(name))
    return frozenset(out)


def sorted_profiles(profiles: Iterable[str]) -> tuple[str, ...]:
    """Profiles in vocabulary order (core first), unknown names last."""
    order = {p.value: i for i, p in enumerate(Profile)}
    return tuple(sorted({str(p) for p in profiles}, key=lambda p: (order.get(p, len(order)), p)))


class UnknownCapabilityError(ValueError):
    """A capability name outside the vocabulary; the message lists the valid ones."""


_CAPABILITY_BY_VALUE = {m.value: m for m in Capability}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def parse_capability(name: str) -> Capability:
    """One name (``"git-gate"``, ``"GIT_GATE"``, a `Capability`) to a member."""
    key = _normalise(str(name))
    member = _CAPABILITY_BY_VALUE.get(key)  # a dict, not a scan: called per example
    if member is not None:
        return member
    valid = ", ".join(m.value for m in Capability)
    raise UnknownCapabilityError(f"unknown capability {str(name)!r} (known: {valid})")


def parse_capabilities(names: Iterable[str]) -> frozenset[Capability]:
    """Names (an iterable, or one comma-separated string) to a set of members.

    Empty entries are ignored so ``"live,,tty,"`` and ``""`` are fine.
    """
    if isinstance(names, str):
        names = names.split(",")
    out = set()
    for name in names:
        if str(name).strip():
            out.add(parse_capability(name))
    return frozenset(out)
