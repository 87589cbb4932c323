"""Build the agent and bundle images, skipping unchanged ones.

    python -m bottle_ref.images [agent|bundle|all] [--base REF] [--print-env]

Why: the live tier needs both images. Two routes to the base image
``bottle-base:<hash>``, then ``docker build`` FROM it:

- debootstrap (Linux, root, ``debootstrap`` on PATH, no ``--base``): no
  registry needed (DESIGN §7); a rootfs -> ``docker import``;
- registry (otherwise: macOS with Docker Desktop, a rootless Linux, or
  ``--base REF`` / ``BOTTLE_BASE_IMAGE``): ``FROM`` a registry image,
  default ``debian:bookworm-slim``, plus the same packages and files.

Every tag is a hash of its inputs (`inputs.py`), so a warm run is a few
``docker image inspect`` calls and an unchanged image is never rebuilt. The
cache is locked (`CacheLock`) while anything is built, so concurrent builds
wait for each other and then find their images present.

``--print-env`` prints ``CLAUDE_BOTTLE_IMAGE=...`` / ``BOTTLE_BUNDLE_IMAGE=...``
on stdout for nox/CI to export. Progress goes to stderr: a line when a slow
step starts, an elapsed-time line at least every 15 s while it runs (a
ticker thread), one when it ends; never a ``=`` (nox reads stdout and
stderr merged).
Full command output of slow steps lands in ``<cache>/logs/``; a failed
``docker build`` is one line naming the line of its output that says why.
Fetched tarballs and wheels are used only while their recorded hashes
match (`fetch.usable`); builds run with ``--force-rm`` and remove the
dangling images of their own inputs.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bottle_api.runner import CommandError, Runner, SubprocessRunner

from . import fetch, rootfs
from .inputs import (
    BASE_IMAGE_ENV,
    CLAUDE_CODE_VERSION,
    CODEX_VERSION,
    DEFAULT_REGISTRY_BASE,
    ROOTFS_FILES,
    Arch,
    ImageError,
    ImageInputs,
    agent_inputs,
    base_inputs,
    bundle_inputs,
    dockerfile,
    registry_base_inputs,
)

ROLES = ("agent", "bundle")
ENV_NAMES = {"agent": "CLAUDE_BOTTLE_IMAGE", "bundle": "BOTTLE_BUNDLE_IMAGE"}


TICK = 15.0  # seconds between "still running" lines on a slow step
LOCK_NAME = ".lock"


def default_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "bottle-ref"


class CacheLock:
    """An exclusive ``flock`` on ``<cache>/.lock`` for the whole build.

    Why hand-written rather than the ``filelock`` library: a dozen lines of
    stdlib ``fcntl.flock`` do all we need (Linux and macOS, released by the
    kernel when the holder dies, so no stale-lock cleanup); filelock's extra
    value (Windows, soft locks) does not apply, and it would be one more
    dependency in every install. The holder's pid is written in the file
    for the waiting message only.
    """

    def __init__(self, cache: Path, *, say: Callable[[str], None], tick: float = TICK):
        self.path = cache / LOCK_NAME
        self.say, self.tick = say, tick
        self._fd: int | None = None

    def __enter__(self) -> "CacheLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            with ticker(self.say, f"waiting for another build (pid {holder}) to release "
                                  f"the cache lock {self.path}", self.tick):
                fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


@contextmanager
def ticker(say: Callable[[str], None], what: str, tick: float = TICK) -> Iterator[None]:
    """Say ``what`` now, then its elapsed time every ``tick`` seconds until
    the block ends (a daemon thread; the block itself runs undisturbed)."""
    start = time.monotonic()
    say(f"images: {what} ...")
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(tick):
            say(f"images: {what}: {time.monotonic() - start:.0f}s so far")

    thread = threading.Thread(target=beat, name="images-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def registry_route_reason(euid: int, debootstrap: bool, base_ref: str | None,
                          platform: str = sys.platform) -> str | None:
    """Why the base comes from a registry, or None for the debootstrap route."""
    if base_ref:
        return f"--base/{BASE_IMAGE_ENV} given"
    if not platform.startswith("linux"):
        return f"no debootstrap route on {platform}"
    if euid != 0:
        return "not root (debootstrap needs root)"
    if not debootstrap:
        return "debootstrap not installed"
    return None


@dataclass(frozen=True)
class Builder:
    """Ensures images exist; every command goes through ``runner``.

    ``euid`` and ``source_root`` are injectable so a recorded cold build
    runs anywhere (tests never need root or an engine).
    """

    runner: Runner
    cache: Path = field(default_factory=default_cache)
    say: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))
    euid: int = field(default_factory=os.geteuid)
    source_root: Path | None = None
    claude_version: str = CLAUDE_CODE_VERSION
    codex_version: str = CODEX_VERSION
    # The registry route's FROM image (None: debootstrap where possible).
    base_ref: str | None = None
    debootstrap: bool = field(default_factory=lambda: shutil.which("debootstrap") is not None)
    platform: str = sys.platform
    tick: float = TICK

    # -- what the images are ------------------------------------------------
    def engine_arch(self) -> Arch:
        result = self.runner.run(["docker", "version", "--format", "{{.Server.Arch}}"],
                                 timeout=30, check=False)
        if not result.ok or not result.stdout.strip():
            raise ImageError("docker engine not reachable"
                             " (on Debian as root: bash scripts/engine.sh)")
        return Arch.from_docker(result.stdout.strip())

    def route(self) -> tuple[str, str | None]:
        """``("debootstrap", None)`` or ``("registry", REF)``."""
        if registry_route_reason(self.euid, self.debootstrap, self.base_ref,
                                 self.platform) is None:
            return "debootstrap", None
        return "registry", self.base_ref or DEFAULT_REGISTRY_BASE

    def resolve_base(self, arch: Arch) -> ImageInputs:
        """The base's inputs. The registry route needs the FROM image's ID
        (pulled if the engine lacks it), so a moved tag makes a new base."""
        route, ref = self.route()
        if route == "debootstrap":
            return base_inputs(arch)
        image_id = self._image_id(ref)
        if image_id is None:
            with self.step(f"pull {ref} (registry route: "
                           f"{registry_route_reason(self.euid, self.debootstrap, self.base_ref, self.platform)})"):
                result = self.runner.run(["docker", "pull", "--quiet", ref], timeout=1800,
                                         check=False)
                if not result.ok:
                    raise ImageError(f"cannot pull base image {ref}: {_tail(result)} (set "
                                     f"--base or {BASE_IMAGE_ENV} to an image the engine can get)")
            image_id = self._image_id(ref)
            if image_id is None:
                raise ImageError(f"pulled {ref} but the engine does not show it")
        return registry_base_inputs(arch, ref, image_id)

    def _image_id(self, ref: str) -> str | None:
        result = self.runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                                 timeout=30, check=False)
        return result.stdout.strip() or None if result.ok else None

    def plan(self, arch: Arch, roles: Sequence[str],
             base: ImageInputs | None = None) -> dict[str, ImageInputs]:
        """Inputs per role (plus ``base``); pure given ``base`` (default: the
        debootstrap base)."""
        base = base or base_inputs(arch)
        plan = {"base": base}
        if "agent" in roles:
            plan["agent"] = agent_inputs(base, arch, self.claude_version, self.codex_version)
        if "bundle" in roles:
            kw = {"source_root": self.source_root} if self.source_root else {}
            plan["bundle"] = bundle_inputs(base, arch, **kw)
        return plan

    # -- doing it -----------------------------------------------------------
    def present(self, tag: str) -> bool:
        return self.runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                               timeout=30, check=False).ok

    def ensure(self, roles: Sequence[str]) -> dict[str, str]:
        """Tag per role, building whatever is missing (base first, on demand).
        Building happens under the cache lock; a build that waited for it
        re-checks and usually finds its images made by the other one."""
        arch = self.engine_arch()
        plan = self.plan(arch, roles, self.resolve_base(arch))
        missing = [r for r in roles if not self.present(plan[r].tag)]
        if missing:
            with CacheLock(self.cache, say=self.say, tick=self.tick):
                missing = [r for r in roles if not self.present(plan[r].tag)]
                if missing:
                    self.ensure_base(plan["base"], arch)
                    for role in missing:
                        self.build(role, plan[role], plan["base"], arch)
        for role in roles:
            if role not in missing:
                self.say(f"images: {plan[role].tag} up to date")
        return {role: plan[role].tag for role in roles}

    def ensure_base(self, base: ImageInputs, arch: Arch) -> None:
        if self.present(base.tag):
            return
        if dict(base.parts).get("route") == b"registry":
            self._registry_base(base)
            return
        logs = self._logs()
        if not rootfs.usable(self.cache, base, say=self.say):
            with self.step(f"debootstrap {base.tag} rootfs (bookworm minbase)"):
                rootfs.bootstrap(self.runner, self.cache, base, arch, euid=self.euid,
                                 log=logs / f"rootfs-{base.digest[:12]}.log")
        with self.step(f"import {base.tag}"):
            self.runner.run(rootfs.import_argv(rootfs.rootfs_dir(self.cache, base), base.tag),
                            timeout=900)

    def _registry_base(self, base: ImageInputs) -> None:
        """``docker build`` the base FROM the registry image (registry route)."""
        ref = base.part("from").decode()
        ctx = self.cache / f"context-base-{os.getpid()}"
        shutil.rmtree(ctx, ignore_errors=True)
        ctx.mkdir(parents=True)
        try:
            (ctx / "Dockerfile").write_bytes(base.part("Dockerfile"))
            for rel, text in ROOTFS_FILES.items():
                dest = ctx / "files" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text)
            self._docker_build(base, ctx, {"FROM": ref}, f"build {base.tag} FROM {ref}")
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    def build(self, role: str, inputs: ImageInputs, base: ImageInputs, arch: Arch) -> None:
        ctx = self.cache / f"context-{role}-{os.getpid()}"
        if ctx.exists():
            shutil.rmtree(ctx)
        ctx.mkdir(parents=True)
        try:
            (ctx / "Dockerfile").write_bytes(inputs.part("Dockerfile"))
            if role == "agent":
                tarballs = fetch.claude_code_dir(self.cache, self.claude_version, arch)
                if not fetch.usable(tarballs, self.say):
                    with self.step(f"fetch Claude Code {self.claude_version} (npm pack)"):
                        fetch.claude_code_tarballs(self.runner, self.cache,
                                                   self.claude_version, arch)
                _link_tree(tarballs, ctx / "npm")
                codex = fetch.codex_dir(self.cache, self.codex_version, arch)
                if not fetch.usable(codex, self.say):
                    with self.step(f"fetch Codex {self.codex_version} (npm pack)"):
                        fetch.codex_tarballs(self.runner, self.cache, self.codex_version, arch)
                _link_tree(codex, ctx / "codex")
            else:
                self._bundle_context(ctx, inputs, arch)
            self._docker_build(inputs, ctx, {"BASE": base.tag}, f"build {inputs.tag}")
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    def _docker_build(self, inputs: ImageInputs, ctx: Path, build_args: dict[str, str],
                      what: str) -> None:
        log = self._logs() / f"{inputs.repo}-{inputs.digest[:12]}.log"
        argv = ["docker", "build"]
        for key, value in build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        # --force-rm: a failed step's intermediate container goes too.
        argv += ["--force-rm", "--label", f"bottle-ref.inputs={inputs.digest}",
                 "--tag", inputs.tag, str(ctx)]
        with self.step(what):
            result = self.runner.run(argv, timeout=3600, check=False)
            log.write_text(result.stdout + result.stderr)
            self._remove_dangling(inputs)
            if not result.ok:
                raise ImageError(f"docker build of {inputs.tag} failed:"
                                 f" {_cause(result)} (full log: {log})")

    def _remove_dangling(self, inputs: ImageInputs) -> None:
        """Untagged images of these very inputs (an earlier build of this tag
        that lost it); best effort, an image still in use stays."""
        found = self.runner.run(["docker", "image", "ls", "-q", "--filter", "dangling=true",
                                 "--filter", f"label=bottle-ref.inputs={inputs.digest}"],
                                timeout=60, check=False)
        ids = sorted(set(found.stdout.split())) if found.ok else []
        if ids:
            self.runner.run(["docker", "image", "rm", *ids], timeout=120, check=False)

    def _bundle_context(self, ctx: Path, inputs: ImageInputs, arch: Arch) -> None:
        req = ctx / "requirements.txt"
        req.write_bytes(inputs.part("requirements.txt"))
        wheels = fetch.wheels_dir(self.cache, req, arch)
        if not fetch.usable(wheels, self.say):
            with self.step("fetch bundle wheels (pip download)"):
                fetch.bundle_wheels(self.runner, self.cache, req, arch)
        _link_tree(wheels, ctx / "wheels")
        for name, data in inputs.parts:
            if name.startswith("src:"):
                dest = ctx / "src" / name[4:]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """A slow step: a line at its start, its elapsed time every ``tick``
        seconds while it runs, and one line with the total at its end."""
        start = self.runner.monotonic()
        try:
            with ticker(self.say, what, self.tick):
                yield
        except BaseException:
            self.say(f"images: {what}: failed after {self.runner.monotonic() - start:.1f}s")
            raise
        self.say(f"images: {what}: done in {self.runner.monotonic() - start:.1f}s")

    # -- handing the images to an author's engine ---------------------------
    def export(self, tags: Mapping[str, str], dest: Path) -> list[Path]:
        """``docker save`` each image to ``dest/<repo>-<tag>.tar`` (an
        archive ``podman load -i``, ``nerdctl load -i`` or smolvm's ``-I``
        takes); an archive already there for that content-hash tag is kept."""
        out = []
        for role in sorted(tags):
            tag = tags[role]
            path = dest / (tag.replace("/", "_").replace(":", "-") + ".tar")
            if not path.is_file():
                tmp = path.with_name(f".{path.name}.partial")
                with self.step(f"docker save {tag} -> {path}"):
                    result = self.runner.run(["docker", "save", "-o", str(tmp), tag],
                                             timeout=3600, check=False)
                    if not result.ok:
                        raise ImageError(f"docker save {tag} failed: {_tail(result)}")
                    os.replace(tmp, path)
            out.append(path)
        return out

    def load_into(self, tags: Mapping[str, str], engine: str) -> None:
        """Load the images into another engine's store (``podman load -i``):
        through archives in the cache, so nothing is piped through a shell."""
        archives = self.export(tags, self._exports())
        for path in archives:
            with self.step(f"{engine} load -i {path.name}"):
                result = self.runner.run([engine, "load", "-i", str(path)], timeout=3600,
                                         check=False)
                if not result.ok:
                    raise ImageError(f"{engine} load -i {path} failed: {_tail(result)}")

    def _exports(self) -> Path:
        d = self.cache / "exports"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _logs(self) -> Path:
        logs = self.cache / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs


def _link_tree(src: Path, dest: Path) -> None:
    """Put ``src``'s files in a build context: hard links, copies across filesystems."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        if path.is_file():
            try:
                os.link(path, dest / path.name)
            except OSError:
                shutil.copy2(path, dest / path.name)


# docker build's own narration, never the cause of a failure.
_BUILD_NOISE = re.compile(r"^(Step \d+/\d+|\s*---> |Removing intermediate container|"
                          r"Sending build context|The command .* returned a non-zero code|"
                          r"#\d+ (DONE|CACHED|\[)|Successfully )")
_CAUSE = re.compile(r"\b(ERROR|Error|error|E:|fatal|FATAL|No such|not found|failed|invalid|"
                    r"denied|No space)\b")


def _cause(result) -> str:
    """The line of a failed ``docker build`` that says why (pip's, apt's,
    npm's error), not docker's closing "returned a non-zero code"; one line."""
    lines = [ln.strip() for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    own = [ln for ln in lines if not _BUILD_NOISE.match(ln)]
    causes = [ln for ln in own if _CAUSE.search(ln)]
    line = (causes or own or lines or [f"exit {result.returncode}"])[-1]
    return " ".join(line.split())[:400]


def _tail(result) -> str:
    lines = [ln for ln in (result.stdout + result.stderr).strip().splitlines() if ln.strip()]
    return "; ".join(lines[-2:]) if lines else f"exit {result.returncode}"


def main(argv: Sequence[str] | None = None, *, builder: Builder | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bottle_ref.images",
        description="Build the bottle agent/bundle images with no registry (content-hash tags).",
    )
    parser.add_argument("which", nargs="?", default="all", choices=("agent", "bundle", "all"))
    parser.add_argument("--print-env", action="store_true",
                        help="print CLAUDE_BOTTLE_IMAGE/BOTTLE_BUNDLE_IMAGE lines on stdout")
    parser.add_argument("--base", metavar="REF", default=os.environ.get(BASE_IMAGE_ENV) or None,
                        help=f"build the base FROM this registry image (default: debootstrap "
                             f"as root on Linux, else {DEFAULT_REGISTRY_BASE}; env "
                             f"{BASE_IMAGE_ENV})")
    parser.add_argument("--export", metavar="DIR", type=Path, default=None,
                        help="also write each image as a `docker save` archive into DIR "
                             "(an existing directory), for `podman load -i` and the like")
    parser.add_argument("--engine", metavar="CLI", default=None,
                        help="also load the images into this engine (e.g. podman), through "
                             "`docker save` archives and `CLI load -i`")
    args = parser.parse_args(argv)
    if args.export is not None and not args.export.is_dir():
        print(f"images: error: --export {args.export}: not an existing directory", file=sys.stderr)
        return 2
    if args.engine is not None and (not args.engine.strip() or args.engine == "docker"):
        print(f"images: error: --engine {args.engine!r}: name another engine's CLI (the images "
              "are built with docker already)", file=sys.stderr)
        return 2
    roles = ROLES if args.which == "all" else (args.which,)
    builder = builder or Builder(SubprocessRunner(), base_ref=args.base)
    # CI cancels with SIGTERM: turn it into KeyboardInterrupt so a half-built
    # rootfs or build context is cleaned up (and the child killed) on the way out.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        tags = builder.ensure(roles)
        if args.export is not None:
            for path in builder.export(tags, args.export):
                print(f"images: archive {path}", file=sys.stderr)
        if args.engine is not None:
            builder.load_into(tags, args.engine)
    except (ImageError, CommandError, OSError) as exc:
        print(f"images: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("images: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.print_env:
        for role in roles:
            print(f"{ENV_NAMES[role]}={tags[role]}")
    return 0


__all__ = ["Builder", "CacheLock", "ENV_NAMES", "ROLES", "default_cache", "dockerfile",
           "main", "registry_route_reason", "ticker"]
