"""What each image is made of, and the content-hash tag derived from it.

Why content tags: no registry is reachable (DESIGN §7), so every image is
built locally, and a cold build takes minutes. A tag that is a hash of ALL the
inputs (Dockerfile text, package lists, pinned versions, the bundle's source
and requirements) makes "is this image current?" one `docker image inspect`,
and any change to an input yields a new tag instead of a stale image.

Everything here is pure: it reads files, never runs a command.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # .../bottle_ref
HERE = Path(__file__).resolve().parent

# The Claude Code CLI the agent image installs (npm view @anthropic-ai/claude-code version).
CLAUDE_CODE_VERSION = "2.1.330"
CLAUDE_CODE_PACKAGE = "@anthropic-ai/claude-code"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PYTHON = "3.11"  # bookworm's python3; the bundle's wheels target it
# debootstrap --include: what both images need. nodejs/npm are NOT here:
# npm's node-* dependencies fail to configure under debootstrap, so the agent
# Dockerfile installs them with apt-get afterwards.
ROOTFS_PACKAGES = ("ca-certificates", "curl", "git", "python3", "python3-venv", "util-linux")

# Files the rootfs step writes after debootstrap (part of the base's identity).
ROOTFS_FILES: Mapping[str, str] = {
    "etc/dpkg/dpkg.cfg.d/bottle-slim": (
        "# bottle-ref: keep images small; nothing in a bottle reads these.\n"
        "path-exclude=/usr/share/doc/*\n"
        "path-include=/usr/share/doc/*/copyright\n"
        "path-exclude=/usr/share/man/*\n"
        "path-exclude=/usr/share/info/*\n"
        "path-exclude=/usr/share/locale/*\n"
    ),
    "etc/apt/apt.conf.d/90bottle": (
        'APT::Install-Recommends "false";\n'
        'APT::Install-Suggests "false";\n'
    ),
}
# Trimmed after debootstrap (the dpkg excludes above keep them out of later
# installs): manuals, translations, apt caches; docs but their copyright.
ROOTFS_TRIM_DIRS = ("usr/share/man", "usr/share/info", "usr/share/locale")
ROOTFS_TRIM_FILES = (("var/cache/apt", "*.bin"), ("var/cache/apt/archives", "*.deb"),
                     ("var/lib/apt/lists", "*_*"))
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)

BUNDLE_ROOTS = ("bottle_ref.bundle",)


@dataclass(frozen=True)
class Arch:
    """The engine's CPU architecture in each ecosystem's spelling."""

    docker: str  # amd64 | arm64 (debootstrap uses the same names)
    npm: str  # claude-code native package suffix: linux-x64 | linux-arm64
    wheel: str  # manylinux machine suffix: x86_64 | aarch64

    @classmethod
    def from_docker(cls, name: str) -> "Arch":
        table = {"amd64": ("linux-x64", "x86_64"), "arm64": ("linux-arm64", "aarch64")}
        if name not in table:
            raise ImageError(f"unsupported engine architecture {name!r} (amd64 or arm64)")
        return cls(name, *table[name])


class ImageError(RuntimeError):
    """A build cannot proceed; the message is one line for the user."""


@dataclass(frozen=True)
class ImageInputs:
    """Everything an image is built from, as named byte strings.

    ``repo`` is the tag's repository (``bottle-agent``); ``parts`` maps an
    input name to its exact content. The tag hashes names and contents
    unambiguously (length-prefixed), so reordering or moving bytes between
    parts cannot collide.
    """

    repo: str
    parts: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, repo: str, parts: Mapping[str, bytes | str]) -> "ImageInputs":
        encoded = {k: v.encode() if isinstance(v, str) else bytes(v) for k, v in parts.items()}
        return cls(repo, tuple(sorted(encoded.items())))

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name, data in self.parts:
            key = name.encode()
            h.update(b"%d:%s%d:" % (len(key), key, len(data)))
            h.update(data)
        return h.hexdigest()

    @property
    def tag(self) -> str:
        return f"{self.repo}:{self.digest[:12]}"

    def part(self, name: str) -> bytes:
        return dict(self.parts)[name]


def dockerfile(name: str) -> str:
    return (HERE / f"{name}.Dockerfile").read_text()


def base_inputs(arch: Arch) -> ImageInputs:
    """The debootstrap rootfs: suite, mirror, variant, packages, post-steps."""
    parts: dict[str, bytes | str] = {
        "suite": DEBIAN_SUITE,
        "mirror": DEBIAN_MIRROR,
        "variant": "minbase",
        "packages": ",".join(sorted(ROOTFS_PACKAGES)),
        "arch": arch.docker,
        "import-changes": "\n".join(IMPORT_CHANGES),
        "trim": repr((ROOTFS_TRIM_DIRS, ROOTFS_TRIM_FILES, "usr/share/doc/*/!copyright")),
    }
    for path, text in ROOTFS_FILES.items():
        parts[f"file:{path}"] = text
    return ImageInputs.of("bottle-base", parts)


def agent_inputs(base: ImageInputs, arch: Arch,
                 claude_version: str = CLAUDE_CODE_VERSION) -> ImageInputs:
    return ImageInputs.of("bottle-agent", {
        "base": base.tag,
        "Dockerfile": dockerfile("agent"),
        "claude-code": f"{CLAUDE_CODE_PACKAGE}@{claude_version} {arch.npm}",
    })


def bundle_inputs(base: ImageInputs, arch: Arch, *,
                  package_root: Path = PACKAGE_ROOT,
                  requirements: Path | None = None) -> ImageInputs:
    """The bundle: Dockerfile, pinned requirements, and its source closure."""
    req = requirements or package_root / "bundle" / "requirements.txt"
    if not req.is_file():
        raise ImageError(f"bundle requirements not found: {req}")
    parts: dict[str, bytes | str] = {
        "base": base.tag,
        "Dockerfile": dockerfile("bundle"),
        "requirements.txt": req.read_bytes(),
        "wheel-target": f"cp{DEBIAN_PYTHON.replace('.', '')} {arch.wheel}",
    }
    for rel in bundle_sources(package_root):
        parts[f"src:{rel}"] = (package_root.parent / rel).read_bytes()
    return ImageInputs.of("bottle-bundle", parts)


# -- the bundle's source closure ------------------------------------------

def bundle_sources(package_root: Path = PACKAGE_ROOT,
                   roots: Iterable[str] = BUNDLE_ROOTS) -> list[str]:
    """Files of ``bottle_ref`` the bundle needs, as paths relative to its parent.

    Why a closure and not the whole package: the image (and its tag) should
    change when the bundle's code changes, not when a backend module does.
    Each root subpackage is taken whole (with its data files); from there,
    every ``bottle_ref`` import (absolute or relative, at any depth in the
    file) is followed, with the ``__init__.py`` of every package on the way.
    Imports built from strings (importlib) are not seen: keep those inside a
    root subpackage.
    """
    name = package_root.name
    top = package_root.parent
    found: set[Path] = set()
    queue: list[Path] = []

    def add(path: Path) -> None:
        if path not in found:
            found.add(path)
            if path.suffix == ".py":
                queue.append(path)

    def add_module(dotted: str) -> None:
        parts = dotted.split(".")
        if parts[0] != name:
            return
        for i in range(1, len(parts) + 1):  # every package __init__ on the way
            init = top.joinpath(*parts[:i], "__init__.py")
            if init.is_file():
                add(init)
        mod = top.joinpath(*parts)
        if mod.with_suffix(".py").is_file():
            add(mod.with_suffix(".py"))

    for root in roots:
        root_dir = top.joinpath(*root.split("."))
        if not root_dir.is_dir():
            raise ImageError(f"bundle source package not found: {root_dir}")
        add_module(root)
        for path in sorted(root_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                add(path)

    while queue:
        path = queue.pop()
        # A module's package is its directory (for __init__.py too).
        package = path.relative_to(top).parent.parts
        for dotted in _imports(path, package):
            add_module(dotted)
    return sorted(str(p.relative_to(top)) for p in found)


def _imports(path: Path, package: tuple[str, ...]) -> set[str]:
    """Dotted names a module may import (``from a import b`` yields a and a.b)."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise ImageError(f"cannot parse {path}: {exc.msg} (line {exc.lineno})") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                if node.module:
                    base += node.module.split(".")
            else:
                base = (node.module or "").split(".")
            dotted = ".".join(base)
            names.add(dotted)
            names.update(f"{dotted}.{alias.name}" for alias in node.names if alias.name != "*")
    return names
