"""Build the agent and bundle images with no registry, skipping unchanged ones.

    python -m bottle_ref.images [agent|bundle|all] [--print-env]

Why: the live tier needs both images and no registry is reachable
(DESIGN §7). The chain is: debootstrap rootfs -> ``docker import`` as
``bottle-base:<hash>`` -> ``docker build`` FROM it. Every tag is a hash of
its inputs (`inputs.py`), so a warm run is a few ``docker image inspect``
calls and an unchanged image is never rebuilt.

``--print-env`` prints ``CLAUDE_BOTTLE_IMAGE=...`` / ``BOTTLE_BUNDLE_IMAGE=...``
on stdout for nox/CI to export. Progress goes to stderr, one line per slow
step, and never contains ``=`` (nox reads stdout and stderr merged).
Full command output of slow steps lands in ``<cache>/logs/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bottle_api.runner import CommandError, Runner, SubprocessRunner

from . import fetch, rootfs
from .inputs import (
    CLAUDE_CODE_VERSION,
    Arch,
    ImageError,
    ImageInputs,
    agent_inputs,
    base_inputs,
    bundle_inputs,
    dockerfile,
)

ROLES = ("agent", "bundle")
ENV_NAMES = {"agent": "CLAUDE_BOTTLE_IMAGE", "bundle": "BOTTLE_BUNDLE_IMAGE"}


def default_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "bottle-ref"


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

    # -- what the images are ------------------------------------------------
    def engine_arch(self) -> Arch:
        result = self.runner.run(["docker", "version", "--format", "{{.Server.Arch}}"],
                                 timeout=30, check=False)
        if not result.ok or not result.stdout.strip():
            raise ImageError("docker engine not reachable"
                             " (on Debian as root: bash scripts/engine.sh)")
        return Arch.from_docker(result.stdout.strip())

    def plan(self, arch: Arch, roles: Sequence[str]) -> dict[str, ImageInputs]:
        """Inputs per role (plus ``base``), computed without running anything."""
        base = base_inputs(arch)
        plan = {"base": base}
        if "agent" in roles:
            plan["agent"] = agent_inputs(base, arch, self.claude_version)
        if "bundle" in roles:
            kw = {"source_root": self.source_root} if self.source_root else {}
            plan["bundle"] = bundle_inputs(base, arch, **kw)
        return plan

    # -- doing it -----------------------------------------------------------
    def present(self, tag: str) -> bool:
        return self.runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                               timeout=30, check=False).ok

    def ensure(self, roles: Sequence[str]) -> dict[str, str]:
        """Tag per role, building whatever is missing (base first, on demand)."""
        arch = self.engine_arch()
        plan = self.plan(arch, roles)
        missing = [r for r in roles if not self.present(plan[r].tag)]
        for role in roles:
            if role not in missing:
                self.say(f"images: {plan[role].tag} up to date")
        if missing:
            self.ensure_base(plan["base"], arch)
            for role in missing:
                self.build(role, plan[role], plan["base"], arch)
        return {role: plan[role].tag for role in roles}

    def ensure_base(self, base: ImageInputs, arch: Arch) -> None:
        if self.present(base.tag):
            return
        logs = self._logs()
        if not rootfs.rootfs_dir(self.cache, base).is_dir():
            with self.step(f"debootstrap {base.tag} rootfs (bookworm minbase)"):
                rootfs.bootstrap(self.runner, self.cache, base, arch, euid=self.euid,
                                 log=logs / f"rootfs-{base.digest[:12]}.log")
        with self.step(f"import {base.tag}"):
            self.runner.run(rootfs.import_argv(rootfs.rootfs_dir(self.cache, base), base.tag),
                            timeout=900)

    def build(self, role: str, inputs: ImageInputs, base: ImageInputs, arch: Arch) -> None:
        ctx = self.cache / f"context-{role}-{os.getpid()}"
        if ctx.exists():
            shutil.rmtree(ctx)
        ctx.mkdir(parents=True)
        try:
            (ctx / "Dockerfile").write_bytes(inputs.part("Dockerfile"))
            if role == "agent":
                tarballs = fetch.claude_code_dir(self.cache, self.claude_version, arch)
                if not tarballs.is_dir():
                    with self.step(f"fetch Claude Code {self.claude_version} (npm pack)"):
                        fetch.claude_code_tarballs(self.runner, self.cache,
                                                   self.claude_version, arch)
                _link_tree(tarballs, ctx / "npm")
            else:
                self._bundle_context(ctx, inputs, arch)
            log = self._logs() / f"{inputs.repo}-{inputs.digest[:12]}.log"
            with self.step(f"build {inputs.tag}"):
                result = self.runner.run(
                    ["docker", "build", "--build-arg", f"BASE={base.tag}",
                     "--label", f"bottle-ref.inputs={inputs.digest}",
                     "--tag", inputs.tag, str(ctx)],
                    timeout=3600, check=False,
                )
                log.write_text(result.stdout + result.stderr)
                if not result.ok:
                    raise ImageError(f"docker build of {inputs.tag} failed:"
                                     f" {_tail(result)} (full log: {log})")
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    def _bundle_context(self, ctx: Path, inputs: ImageInputs, arch: Arch) -> None:
        req = ctx / "requirements.txt"
        req.write_bytes(inputs.part("requirements.txt"))
        wheels = fetch.wheels_dir(self.cache, req, arch)
        if not wheels.is_dir():
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
        """One progress line per slow step, with its elapsed seconds."""
        start = self.runner.monotonic()
        try:
            yield
        except BaseException:
            self.say(f"images: {what}: failed after {self.runner.monotonic() - start:.1f}s")
            raise
        self.say(f"images: {what}: done in {self.runner.monotonic() - start:.1f}s")

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
    args = parser.parse_args(argv)
    roles = ROLES if args.which == "all" else (args.which,)
    builder = builder or Builder(SubprocessRunner())
    # CI cancels with SIGTERM: turn it into KeyboardInterrupt so a half-built
    # rootfs or build context is cleaned up (and the child killed) on the way out.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        tags = builder.ensure(roles)
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


__all__ = ["Builder", "ENV_NAMES", "ROLES", "default_cache", "dockerfile", "main"]
