"""The base image with no registry: debootstrap a rootfs, then `docker import`.

Why debootstrap: no image registry is reachable, so there is no
``FROM debian``; Debian's mirror is. The rootfs is cached under
``<cache>/rootfs-<hash12>`` so a base that was pruned from the engine is
re-imported without re-bootstrapping.

A rootfs is built in ``rootfs-<hash12>.partial`` and renamed when complete;
a half-built one is deleted, after unmounting anything debootstrap left
mounted inside it (deleting through a live /proc or /sys mount would reach
the host's). The completion marker ``rootfs-<hash12>.complete`` is written
LAST and records the sha256 of every `ROOTFS_REQUIRED` file (links
followed inside the rootfs); a rootfs is used only with its marker and when
`damage` finds each of those files present, non-empty and unchanged,
otherwise it is deleted and rebuilt with a message.
The caller holds the cache lock (`build.CacheLock`), so two builds never
race on one ``.partial``.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path

from bottle_api.runner import CommandError, Runner

from .fetch import sha256_file
from .inputs import (
    DEBIAN_MIRROR,
    DEBIAN_SUITE,
    IMPORT_CHANGES,
    ROOTFS_FILES,
    ROOTFS_PACKAGES,
    ROOTFS_REQUIRED,
    ROOTFS_TRIM_DIRS,
    ROOTFS_TRIM_FILES,
    Arch,
    ImageError,
    ImageInputs,
)

def rootfs_dir(cache: Path, base: ImageInputs) -> Path:
    return cache / f"rootfs-{base.digest[:12]}"


def marker_path(rootfs: Path) -> Path:
    return rootfs.with_name(rootfs.name + ".complete")


def damage(rootfs: Path) -> str | None:
    """Why the cached ``rootfs`` must not be used, or None if it is sound:
    no completion marker (a build died or an older layout), or a required
    file missing (a truncated or tampered tree)."""
    marker = marker_path(rootfs)
    if not marker.is_file():
        return "no completion marker"
    lines = marker.read_text().splitlines()
    if not lines or lines[0].strip() != rootfs.name:
        return "completion marker is for another rootfs"
    recorded = {}
    for line in lines[1:]:
        digest, _, rel = line.partition("  ")
        recorded[rel] = digest
    return damage_files(rootfs, recorded or None)


def usable(cache: Path, base: ImageInputs, say=None) -> bool:
    """Is there a sound cached rootfs for ``base``? A damaged one is
    deleted here (with a message), so the caller rebuilds it."""
    final = rootfs_dir(cache, base)
    if not final.exists() and not marker_path(final).exists():
        return False
    why = damage(final) if final.is_dir() else "not a directory"
    if why is None:
        return True
    if say is not None:
        say(f"images: cached rootfs {final.name} is damaged ({why}); rebuilding it")
    marker_path(final).unlink(missing_ok=True)
    return False


def debootstrap_argv(target: Path, arch: Arch) -> list[str]:
    return [
        "debootstrap", "--variant=minbase", f"--arch={arch.docker}",
        "--include=" + ",".join(sorted(ROOTFS_PACKAGES)),
        DEBIAN_SUITE, str(target), DEBIAN_MIRROR,
    ]


def import_argv(rootfs: Path, tag: str) -> list[str]:
    """``tar | docker import`` as one argv; paths travel as positional args."""
    changes: list[str] = []
    for change in IMPORT_CHANGES:
        changes += ["--change", change]
    script = 'set -o pipefail; tar --numeric-owner -C "$1" -c . | docker import "${@:3}" - "$2"'
    return ["bash", "-c", script, "bottle-import", str(rootfs), tag, *changes]


def bootstrap(runner: Runner, cache: Path, base: ImageInputs, arch: Arch,
              *, euid: int, log: Path) -> Path:
    """The cached rootfs for ``base``, debootstrapping it when absent."""
    final = rootfs_dir(cache, base)
    if usable(cache, base):
        return final
    if euid != 0:
        raise ImageError(f"building the base rootfs needs root (debootstrap); {base.tag} is absent")
    partial = final.with_name(final.name + ".partial")
    remove_tree(runner, partial)  # a leftover from an interrupted run
    partial.mkdir(parents=True)
    try:
        result = runner.run(debootstrap_argv(partial, arch), timeout=1800, check=False)
        log.write_text(result.stdout + result.stderr)
        if result.returncode == 127:
            raise ImageError("debootstrap not found (apt-get install debootstrap, or run scripts/engine.sh)")
        if not result.ok:
            raise CommandError(result)
        _finish(partial)
        why = damage_files(partial)
        if why:
            raise ImageError(f"debootstrap finished but the rootfs is incomplete ({why}); "
                             f"see {log}")
        marker_path(final).unlink(missing_ok=True)
        remove_tree(runner, final)  # a damaged one `usable` refused
        partial.rename(final)
        _write_marker(final)  # last: only now is the rootfs complete
    except BaseException:
        remove_tree(runner, partial)
        raise
    return final


def damage_files(rootfs: Path, recorded: dict[str, str] | None = None) -> str | None:
    """Why the required files of ``rootfs`` are not sound: missing, a link
    leading nowhere inside the rootfs, empty (a 0-byte python3.11 behind
    the python3 link), or, with the hashes ``recorded`` at build, changed."""
    for rel in ROOTFS_REQUIRED:
        path = rootfs / rel
        if not (path.is_file() or path.is_symlink()):
            return f"{rel} is missing"
        target = _inside(rootfs, path)
        if target is None or not target.is_file():
            return f"{rel} is a link to nothing in the rootfs"
        if target.stat().st_size == 0:
            return f"{rel} is empty ({target.relative_to(rootfs)})"
        if recorded is not None and recorded.get(rel) != sha256_file(target):
            return f"{rel} changed since the rootfs was built"
    return None


def _inside(rootfs: Path, path: Path, hops: int = 16) -> Path | None:
    """``path`` with its symlinks followed as the image would (absolute
    targets are rooted at ``rootfs``); None past ``hops`` links."""
    for _ in range(hops):
        if not path.is_symlink():
            return path
        target = Path(os.readlink(path))
        path = (rootfs / target.relative_to("/")) if target.is_absolute() else path.parent / target
    return None


def _write_marker(rootfs: Path) -> None:
    """The completion marker: the rootfs's name, then the hash of each
    required file (checked at every use by `damage`)."""
    marker = marker_path(rootfs)
    tmp = marker.with_name(marker.name + ".tmp")
    hashes = []
    for rel in ROOTFS_REQUIRED:
        target = _inside(rootfs, rootfs / rel)
        if target is not None and target.is_file():
            hashes.append(f"{sha256_file(target)}  {rel}\n")
    tmp.write_text(rootfs.name + "\n" + "".join(hashes))
    os.replace(tmp, marker)


def _finish(rootfs: Path) -> None:
    """Post-debootstrap steps; their text is part of the base's hash."""
    for rel, text in ROOTFS_FILES.items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel in ROOTFS_TRIM_DIRS:
        for child in _children(rootfs, rel):
            _unlink(child)
    for doc in _children(rootfs, "usr/share/doc"):
        for child in _children(rootfs, f"usr/share/doc/{doc.name}"):
            if child.name != "copyright":
                _unlink(child)
    for rel, pattern in ROOTFS_TRIM_FILES:
        for child in _children(rootfs, rel):
            if fnmatch.fnmatch(child.name, pattern) and not child.is_dir():
                _unlink(child)


def _children(rootfs: Path, rel: str) -> list[Path]:
    """Entries of ``rootfs/rel``, or none if any step of the way is a symlink.

    A rootfs may hold absolute symlinks; following one from the host would
    reach (and delete) the host's own files.
    """
    path = rootfs
    for part in Path(rel).parts:
        path = path / part
        if path.is_symlink() or not path.is_dir():
            return []
    return sorted(path.iterdir())


def _unlink(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # rmtree never follows symlinks
    else:
        path.unlink(missing_ok=True)


# -- safe removal -------------------------------------------------------------

def mounts_under(path: Path, mounts_file: Path = Path("/proc/self/mounts")) -> list[str]:
    """Mount points at or below ``path`` (deepest first)."""
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return []
    root = str(path.resolve()) if path.exists() else str(path)
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        point = _unescape(fields[1])
        if point == root or point.startswith(root.rstrip("/") + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(runner: Runner, path: Path,
                mounts_file: Path = Path("/proc/self/mounts")) -> None:
    """Delete a (possibly half-built) rootfs, never through a live mount."""
    if not path.exists() and not path.is_symlink():
        return
    for point in mounts_under(path, mounts_file):
        runner.run(["umount", "--lazy", point], check=False)
    still = mounts_under(path, mounts_file)
    if still:
        raise ImageError(f"refusing to delete {path}: still mounted at {still[0]}")
    shutil.rmtree(path)


def _unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
