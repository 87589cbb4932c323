"""Fetch registry artifacts on the host, for builds that need no network.

Why on the host: build containers reach the Debian mirror (plain http) but
not PyPI or npm in a usable way. Behind a TLS-intercepting proxy the host
trusts a CA the fresh rootfs does not, and we will not bake a host's CA into
an image. So the host's own clients (`npm pack`, `pip download`), with the
host's trust and configuration, fetch into a cache; the Dockerfiles install
from the build context offline.

Each fetch lands in ``<dir>.tmp`` and is renamed into place only when
complete, so an interrupted fetch is never mistaken for a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bottle_api.runner import CommandError, Runner

from .inputs import CLAUDE_CODE_PACKAGE, CODEX_PACKAGE, DEBIAN_PYTHON, Arch, ImageError

NATIVE_TGZ = "claude-code-native.tgz"
WRAPPER_TGZ = "claude-code.tgz"
CODEX_NATIVE_TGZ = "codex-native.tgz"
CODEX_WRAPPER_TGZ = "codex.tgz"
# bookworm has glibc 2.36; manylinux2014 (= 2.17) expands to 2010/1 in pip.
GLIBC_MINORS = range(36, 16, -1)
NO_DIST = re.compile(r"No matching distribution found for (\S+)")


def claude_code_tarballs(runner: Runner, cache: Path, version: str, arch: Arch) -> Path:
    """A directory holding the wrapper and native claude-code tarballs.

    The wrapper package's postinstall copies the platform package's binary
    over its ``bin/claude.exe``; both come from the npm registry via
    ``npm pack`` (which checks the registry's integrity hash).
    """
    dest = claude_code_dir(cache, version, arch)
    if usable(dest):
        return dest
    with _staged(dest) as tmp:
        _npm_pack(runner, tmp, version, arch)
    return dest


def claude_code_dir(cache: Path, version: str, arch: Arch) -> Path:
    return cache / "npm" / f"claude-code-{version}-{arch.npm}"


def codex_tarballs(runner: Runner, cache: Path, version: str, arch: Arch) -> Path:
    """A directory holding the Codex wrapper and its platform tarball.

    The wrapper (`bin/codex.js`) finds the binary in its optional dependency
    ``@openai/codex-<platform>``, published as the version
    ``<version>-<platform>`` of ``@openai/codex`` itself (the wrapper's
    ``optionalDependencies`` alias it so), and falls back to its own
    ``vendor/`` directory; the image puts the platform package's
    ``vendor/`` there.
    """
    dest = codex_dir(cache, version, arch)
    if usable(dest):
        return dest
    with _staged(dest) as tmp:
        _npm_pack_each(runner, tmp, (
            (f"{CODEX_PACKAGE}@{version}-{arch.npm}", CODEX_NATIVE_TGZ),
            (f"{CODEX_PACKAGE}@{version}", CODEX_WRAPPER_TGZ),
        ))
    return dest


def codex_dir(cache: Path, version: str, arch: Arch) -> Path:
    return cache / "npm" / f"codex-{version}-{arch.npm}"


def _npm_pack(runner: Runner, tmp: Path, version: str, arch: Arch) -> None:
    _npm_pack_each(runner, tmp, (
        (f"{CLAUDE_CODE_PACKAGE}-{arch.npm}@{version}", NATIVE_TGZ),
        (f"{CLAUDE_CODE_PACKAGE}@{version}", WRAPPER_TGZ),
    ))


def _npm_pack_each(runner: Runner, tmp: Path, specs) -> None:
    for spec, name in specs:
        result = runner.run(
            ["npm", "pack", "--silent", "--pack-destination", str(tmp), spec],
            timeout=900, check=False,
        )
        if result.returncode == 127:
            raise ImageError(
                "npm not found on the host: it fetches the Claude Code and Codex CLIs for"
                " the agent image (install nodejs and npm)"
            )
        if not result.ok:
            raise CommandError(result)
        lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip().endswith(".tgz")]
        if not lines or not (tmp / lines[-1]).is_file():
            raise ImageError(f"npm pack {spec} produced no tarball in {tmp}")
        (tmp / lines[-1]).rename(tmp / name)


def wheel_target_flags(arch: Arch) -> list[str]:
    """pip flags selecting wheels for bookworm's CPython on ``arch``."""
    flags = [f"--platform=manylinux_2_{m}_{arch.wheel}" for m in GLIBC_MINORS]
    flags += [f"--platform=manylinux2014_{arch.wheel}"]
    flags += [f"--python-version={DEBIAN_PYTHON}", "--implementation=cp",
              f"--abi=cp{DEBIAN_PYTHON.replace('.', '')}", "--only-binary=:all:"]
    return flags


def bundle_wheels(runner: Runner, cache: Path, requirements: Path, arch: Arch,
                  *, python: str = sys.executable, max_sdists: int = 8) -> Path:
    """A directory of wheels satisfying ``requirements`` for the image's Python.

    ``pip download`` with target-platform flags accepts wheels only. A
    dependency published only as an sdist (mitmproxy pins pyperclip 1.9.0,
    for one) is built into a wheel on the host with ``pip wheel --no-deps``
    and offered back through ``--find-links``; that only helps when the
    result is pure Python, and a compiled-only sdist fails with pip's error.
    """
    dest = wheels_dir(cache, requirements, arch)
    if usable(dest):
        return dest
    with _staged(dest) as tmp:
        _pip_download(runner, tmp, requirements, arch, python, max_sdists)
    return dest


def wheels_dir(cache: Path, requirements: Path, arch: Arch) -> Path:
    """Keyed by the requirements' text and the wheel target, nothing else."""
    text = requirements.read_bytes()
    key = hashlib.sha256(text + " ".join(wheel_target_flags(arch)).encode()).hexdigest()[:12]
    return cache / "wheels" / key


def _pip_download(runner: Runner, tmp: Path, requirements: Path, arch: Arch,
                  python: str, max_sdists: int) -> None:
    pip = [python, "-m", "pip"]
    download = [*pip, "download", "--quiet", "--disable-pip-version-check",
                "--dest", str(tmp), "--find-links", str(tmp),
                *wheel_target_flags(arch), "-r", str(requirements)]
    built: set[str] = set()
    while True:
        result = runner.run(download, timeout=900, check=False)
        if result.ok:
            break
        if "No module named pip" in result.stderr:
            raise ImageError(f"{python} has no pip: it fetches the bundle's wheels")
        missing = NO_DIST.search(result.stderr + result.stdout)
        if not missing or missing.group(1) in built or len(built) >= max_sdists:
            raise CommandError(result)
        built.add(missing.group(1))
        runner.run([*pip, "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--wheel-dir", str(tmp), missing.group(1)], timeout=900)


@contextmanager
def _staged(dest: Path) -> Iterator[Path]:
    """Fill an empty ``<dest>.tmp``; rename it to ``dest`` only on success,
    then record every file's hash (`write_manifest`)."""
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest_path(dest).unlink(missing_ok=True)
    tmp.rename(dest)
    write_manifest(dest)


# -- content verification (issue 17) -------------------------------------------------
# A fetched directory (npm tarballs, wheels) is used only when every file
# still has the hash recorded when it was fetched: a truncated wheel made
# every later build fail with a generic docker error.

def manifest_path(d: Path) -> Path:
    return d.with_name(d.name + ".sha256")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(d: Path) -> None:
    """Record ``sha256  name`` of every file in ``d`` beside it."""
    lines = [f"{sha256_file(p)}  {p.name}\n" for p in sorted(d.iterdir()) if p.is_file()]
    tmp = manifest_path(d).with_suffix(".tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, manifest_path(d))


def _structure(path: Path) -> str | None:
    """Why an archive cannot be read to its end (older caches have no hashes)."""
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            return f"{path.name}: corrupt member {bad}" if bad else None
        if path.suffix in (".tgz", ".gz"):
            with gzip.open(path, "rb") as g:
                while g.read(1 << 20):
                    pass
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        return f"{path.name} is damaged ({type(exc).__name__}: {exc})"
    return None


def damage(d: Path) -> str | None:
    """Why the fetched directory ``d`` must not be used, or None."""
    if not d.is_dir():
        return "missing"
    files = {p.name: p for p in d.iterdir() if p.is_file()}
    manifest = manifest_path(d)
    if not manifest.is_file():  # fetched by an older version: check structure, then record
        if not files:
            return "empty"
        for p in files.values():
            why = _structure(p)
            if why:
                return why
        write_manifest(d)
        return None
    recorded: dict[str, str] = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        recorded[name] = digest
    if set(recorded) != set(files):
        return (f"files differ from those fetched "
                f"({', '.join(sorted(set(recorded) ^ set(files)))})")
    for name, path in files.items():
        if path.stat().st_size == 0 or sha256_file(path) != recorded[name]:
            return f"{name} changed since it was fetched (truncated or replaced)"
    return None


def usable(d: Path, say=None) -> bool:
    """Is the fetched ``d`` sound? A damaged one is deleted here (with a
    message naming why), so the caller fetches it again."""
    if not d.exists() and not manifest_path(d).exists():
        return False
    why = damage(d)
    if why is None:
        return True
    if say is not None:
        say(f"images: cached {d.name} is damaged ({why}); fetching it again")
    shutil.rmtree(d, ignore_errors=True)
    manifest_path(d).unlink(missing_ok=True)
    return False
