"""The purity guard: prepare() may reach nothing outside the process (PLAN-PURE)."""

from __future__ import annotations

import atexit
import base64
import builtins
import contextlib
import dataclasses
import enum
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ... import redaction
from ...recording.packages import backend_modules
from ...threadscope import Patch, ScopedEnviron, patched, rebound, scoped, thread_scope

# -- purity guard ------------------------------------------------------------------


class ExternalCall(OSError):
    """Raised by the purity guard. An OSError so a backend's ``except
    OSError`` around a write is exercised; the guard records it anyway."""


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _guarded_targets() -> list[tuple[Any, str, str]]:
    """``(owner, attribute, what)`` for everything prepare must never call."""
    out: list[tuple[Any, str, str]] = [
        (subprocess, "Popen", "subprocess.Popen"),
        (socket.socket, "connect", "socket.connect"),
        (socket.socket, "connect_ex", "socket.connect_ex"),
        (socket.socket, "sendto", "socket.sendto"),
        (socket, "create_connection", "socket.create_connection"),
        (socket, "getaddrinfo", "socket.getaddrinfo (DNS)"),
        (socket, "gethostbyname", "socket.gethostbyname (DNS)"),
        (shutil, "rmtree", "shutil.rmtree"),
        (shutil, "copy", "shutil.copy"),
        (shutil, "copy2", "shutil.copy2"),
        (shutil, "copyfile", "shutil.copyfile"),
        (shutil, "copytree", "shutil.copytree"),
        (shutil, "move", "shutil.move"),
    ]
    for name in ("system", "popen", "fork", "forkpty", "execv", "execve", "execvp", "execvpe",
                 "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnvp",
                 "spawnvpe", "spawnl", "spawnle", "posix_spawn", "posix_spawnp",
                 "mkdir", "makedirs", "remove", "unlink", "rename", "renames", "replace",
                 "rmdir", "removedirs", "chmod", "chown", "lchown", "symlink", "link",
                 "truncate", "mkfifo", "mknod", "utime"):
        if hasattr(os, name):
            out.append((os, name, f"os.{name}"))
    for name in ("write_text", "write_bytes", "mkdir", "touch", "unlink", "rename", "replace",
                 "rmdir", "symlink_to", "hardlink_to", "chmod", "lchmod"):
        if hasattr(pathlib.Path, name):
            out.append((pathlib.Path, name, f"Path.{name}"))
    return out


@contextlib.contextmanager
def no_external_calls(backend=None) -> Iterator[list[str]]:
    """While active, every process, network and filesystem-write entry point
    (and every runner) records what was attempted in the yielded list and
    raises `ExternalCall`. Globals of the backend's modules bound to an
    original (``from subprocess import Popen``) are replaced too. Only the
    calling thread (and threads it starts) is judged: the live harness's
    background launches call the originals (`threadscope`)."""
    seen: list[str] = []

    def stub(what: str):
        def refuse(*args, **kwargs):
            seen.append(what + (f"({args[0]!s:.120})" if args else "()"))
            raise ExternalCall(f"prepare() must not call {what}")
        return refuse

    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in str(mode) for c in "wax+"):
            seen.append(f"open({file!s:.120}, {mode!r})")
            raise ExternalCall("prepare() must not open a file for writing")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & _WRITE_FLAGS:
            seen.append(f"os.open({path!s:.120}, write flags)")
            raise ExternalCall("prepare() must not open a file for writing")
        return real_os_open(path, flags, *args, **kwargs)

    with thread_scope() as scope:
        patches: list[Patch] = []
        originals: dict[int, Any] = {}  # id of an original -> its replacement

        def guard(owner: Any, name: str, original: Any, replacement: Any) -> None:
            patches.append((owner, name, scoped(scope, replacement, original)))
            if owner is not builtins:
                originals[id(original)] = patches[-1][2]

        for owner, name, what in _guarded_targets():
            guard(owner, name, getattr(owner, name), stub(what))
        guard(builtins, "open", real_open, guarded_open)
        guard(io, "open", io.open, guarded_open)
        guard(os, "open", real_os_open, guarded_os_open)
        from bottle_api import runner as runner_mod

        for cls in (runner_mod.SubprocessRunner, runner_mod.RecordingRunner):
            for name in ("run", "sleep", "unique"):
                guard(cls, name, getattr(cls, name), stub(f"{cls.__name__}.{name}"))
        if backend is not None:
            patches += rebound(backend_modules(backend), originals)
        with patched(patches):
            yield seen


_DECOY_ENV = {
    "CLAUDE_BOTTLE_IMAGE": "decoy-from-os-environ:1", "BOTTLE_BUNDLE_IMAGE": "decoy-bundle:1",
    "BOTTLE_SMOL_SOCKET_ROUTE": "host-relay", "BOTTLE_SMOL_CPUS": "7",
    "BOTTLE_SMOL_MEM_MIB": "777", "XDG_STATE_HOME": "/decoy/state",
}
# Every decoy secret holds this; nothing a backend derives from its inputs does.
DECOY_MARK = "decoy~"


def decoy_value(name: str) -> str:
    """The decoy for host env var ``name``: distinctive, deterministic."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{DECOY_MARK}{digest}-not-from-the-HostContext"


def _decoy_jwt(tag: str) -> str:
    seg = lambda obj: base64.urlsafe_b64encode(  # noqa: E731
        json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return (f"{seg({'alg': 'RS256', 'typ': 'JWT'})}."
            f"{seg({'exp': 2_000_000_000, 'decoy': decoy_value(tag)})}.{decoy_value(tag + '-sig')}")


# Decoy HOME: the credential and config files a backend might read behind
# the HostContext's back (path relative to HOME -> text).
DECOY_HOME_FILES: Mapping[str, str] = {
    ".codex/auth.json": json.dumps({
        "OPENAI_API_KEY": decoy_value("codex-api-key"),
        "tokens": {"id_token": _decoy_jwt("codex-id"), "access_token": _decoy_jwt("codex-access"),
                   "refresh_token": decoy_value("codex-refresh"),
                   "account_id": decoy_value("codex-account")},
        "last_refresh": "2025-01-01T00:00:00Z"}),
    ".claude/.credentials.json": json.dumps({"claudeAiOauth": {
        "accessToken": decoy_value("claude-access"), "refreshToken": decoy_value("claude-refresh"),
        "expiresAt": 2_000_000_000_000, "scopes": ["user:inference"]}}),
    ".claude.json": json.dumps({"primaryApiKey": decoy_value("claude-json-api-key"),
                                "oauthAccount": {"accountUuid": decoy_value("claude-account")}}),
    ".gitconfig": f"[user]\n\tname = {decoy_value('git-name')}\n"
                  f"\temail = {decoy_value('git-email')}@example.invalid\n",
    ".git-credentials": f"https://user:{decoy_value('git-credential')}@example.invalid\n",
    ".ssh/id_ed25519": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{decoy_value('ssh-key')}\n"
                       "-----END OPENSSH PRIVATE KEY-----\n",
    ".docker/config.json": json.dumps({"auths": {"registry.invalid": {
        "auth": base64.b64encode(f"u:{decoy_value('docker-auth')}".encode()).decode()}}}),
    ".config/gh/hosts.yml": f"github.com:\n    oauth_token: {decoy_value('gh-token')}\n",
    ".netrc": f"machine example.invalid login u password {decoy_value('netrc')}\n",
}


def decoy_secrets(environ: Mapping[str, str]) -> frozenset[str]:
    """Every decoy secret `decoy_environ` plants for ``environ``'s names."""
    out = {decoy_value(n) for n in environ if n not in _DECOY_ENV and n != "HOME"}
    for text in DECOY_HOME_FILES.values():
        out |= set(re.findall(re.escape(DECOY_MARK) + r"[0-9a-f]{16}-not-from-the-HostContext",
                              text))
        out |= {t for t in re.findall(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9~_-]+", text)
                if DECOY_MARK in t}
    return frozenset(out)


_DECOY_HOME: list[str] = []


def _decoy_home() -> str:
    """A directory of `DECOY_HOME_FILES`, made once per process (the files
    never change; a tmpfs when there is one) and removed at exit."""
    if not _DECOY_HOME:
        shm = "/dev/shm"
        parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
        home = tempfile.mkdtemp(prefix="bottle-decoy-home-", dir=parent)
        atexit.register(shutil.rmtree, home, True)
        for rel, text in DECOY_HOME_FILES.items():
            path = Path(home) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        _DECOY_HOME.append(home)
    return _DECOY_HOME[0]


_DECOY_SECRETS = decoy_secrets({})


@contextlib.contextmanager
def _decoy_environ(extra: Mapping[str, str], backend=None) -> Iterator[frozenset[str]]:
    """Replace the process env while the body runs: EVERY variable the host
    has (and each name in ``extra``) gets a decoy value (image refs, the
    loopback address and VM size get plausible ones), and HOME is a
    directory of decoy credential files (`DECOY_HOME_FILES`). A backend
    that reads any of it instead of its HostContext shows a decoy in its
    plan or argv. Yields the decoy secrets; restores everything after.

    Only the calling thread (and threads it starts) sees the decoys:
    ``os.environ`` becomes a `ScopedEnviron`, and so does each global of
    the backend's modules bound to it (``from os import environ``); the
    live harness's background launches read the real environment."""
    real = os.environ
    names = set(real) | set(extra)
    decoys = {n: decoy_value(n) for n in names}
    decoys.update(_DECOY_ENV)
    decoys["HOME"] = _decoy_home()
    secrets = _DECOY_SECRETS | {v for n, v in decoys.items()
                                if n not in _DECOY_ENV and n != "HOME"}
    redaction.plant_all(secrets)
    with thread_scope() as scope:
        proxy = ScopedEnviron(real, decoys, scope)
        modules = backend_modules(backend) if backend is not None else ()
        with patched([(os, "environ", proxy), *rebound(modules, {id(real): proxy})]):
            yield secrets


def _plain_data_problems(value: Any, path: str, out: list[str]) -> None:
    """Collect every place in a plan that holds something other than plain
    data (str, int, float, bool, None, tuples/lists/mappings/dataclasses)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, enum.Enum):
        return
    if isinstance(value, os.PathLike):
        out.append(f"{path} is a path object ({type(value).__name__} {os.fspath(value)!r}); "
                   "a plan carries strings")
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _plain_data_problems(getattr(value, f.name), f"{path}.{f.name}", out)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _plain_data_problems(k, f"{path}[key {k!r}]", out)
            _plain_data_problems(v, f"{path}[{k!r}]", out)
        return
    if isinstance(value, (tuple, list, frozenset)):
        for i, v in enumerate(value):
            _plain_data_problems(v, f"{path}[{i}]", out)
        return
    out.append(f"{path} holds a {type(value).__name__} ({value!r:.80}), not plain data")


def _differing(a: Any, b: Any) -> list[str]:
    """Names of the top-level dataclass fields where ``a`` and ``b`` differ."""
    if not (dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b)) or type(a) is not type(b):
        return [f"type {type(a).__name__} vs {type(b).__name__}"]
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y:
            out.append(f.name if f.name == "secrets" else f"{f.name}: {x!r:.120} vs {y!r:.120}")
    return out


_ARTIFACT_SUFFIXES = (".smolmachine", ".tar", ".tar.gz", ".oci", ".img", ".qcow2", ".raw")


@contextlib.contextmanager
def reimported(backend) -> Iterator[Any]:
    """A copy of ``backend`` whose own package's modules (the top-level
    package its class lives in; not the third-party packages it uses, whose
    extension modules cannot be loaded twice) were imported afresh just
    now, under whatever environment the caller planted. Its class is
    looked up by module and qualified name in the fresh modules and the
    instance's attributes are copied over (no constructor arguments needed).
    Every module is put back as it was afterwards."""
    import importlib

    from ...recording.packages import own_package

    cls = type(backend)
    tops = {own_package(backend)}
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in tops}
    for name in saved:
        del sys.modules[name]
    try:
        mod = importlib.import_module(cls.__module__)
        fresh_cls: Any = mod
        for part in cls.__qualname__.split("."):
            fresh_cls = getattr(fresh_cls, part)
        fresh = fresh_cls.__new__(fresh_cls)
        # The instance's state, but not the methods the suite's watchdog
        # binds on the instance (they would call the old class's code).
        fresh.__dict__.update({k: v for k, v in getattr(backend, "__dict__", {}).items()
                               if getattr(v, "__self__", None) is not backend
                               and not hasattr(v, "_bottle_watchdog_original")})
        yield fresh
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] in tops]:
            del sys.modules[name]
        sys.modules.update(saved)
