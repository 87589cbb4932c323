"""What each image is made of, and the content-hash tag derived from it.

Why content tags: no registry is reachable (DESIGN §7), so every image is
built locally, and a cold build takes minutes. A tag that is a hash of ALL the
inputs (Dockerfile text, package lists, pinned versions, the bundle's source
and requirements) makes "is this image current?" one `docker image inspect`,
and any change to an input yields a new tag instead of a stale image.

Everything here is pure: it reads files, never runs a command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Where the project's packages sit side by side (the repo, or site-packages).
SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(__file__).resolve().parent

# The Claude Code CLI the agent image installs (npm view @anthropic-ai/claude-code version).
CLAUDE_CODE_VERSION = "2.1.330"
CLAUDE_CODE_PACKAGE = "@anthropic-ai/claude-code"
# The Codex CLI (npm view @openai/codex version). Its wrapper's
# optionalDependencies alias the platform build as
# npm:@openai/codex@<version>-<platform> (a static musl binary in vendor/).
CODEX_VERSION = "0.169.0"
CODEX_PACKAGE = "@openai/codex"

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

# The registry route (no root or no debootstrap: macOS with Docker Desktop, a
# rootless Linux): the base is FROM this image plus the same packages, files
# and settings as the debootstrap rootfs. Overridable: --base / this env var.
DEFAULT_REGISTRY_BASE = "debian:bookworm-slim"
BASE_IMAGE_ENV = "BOTTLE_BASE_IMAGE"

# A rootfs is used only if these exist in it (a quick integrity check on top
# of the completion marker): the damaged rootfs lacked the first.
ROOTFS_REQUIRED = ("etc/debian_version", "usr/bin/python3", "usr/bin/git", "usr/bin/dpkg",
                   "usr/bin/bash", "etc/ssl/certs/ca-certificates.crt")

# The bundle image holds exactly these packages (see `bundle_sources`).
BUNDLE_PACKAGES = ("bottle_bundle", "bottle_api")


@dataclass(frozen=True)
class Arch:
    """The engine's CPU architecture in each ecosystem's spelling."""

    docker: str  # amd64 | arm64 (debootstrap uses the same names)
    npm: str  # claude-code / codex native package suffix: linux-x64 | linux-arm64
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


def registry_base_dockerfile() -> str:
    """The registry route's base: the debootstrap rootfs's packages, files
    and trims, applied FROM a registry image. Generated from the same
    constants, so the two routes cannot drift apart."""
    trims = " ".join(f"/{d}/*" for d in ROOTFS_TRIM_DIRS)
    return "\n".join([
        "# bottle-ref registry-route base (generated; see inputs.registry_base_dockerfile)",
        "ARG FROM",
        "FROM ${FROM}",
        "ENV DEBIAN_FRONTEND=noninteractive",
        "COPY files/ /",
        "RUN apt-get update -qq \\",
        " && apt-get install -y -qq --no-install-recommends "
        + " ".join(sorted(ROOTFS_PACKAGES)) + " >/dev/null \\",
        " && apt-get clean \\",
        f" && rm -rf /var/lib/apt/lists/* {trims} \\",
        " && find /usr/share/doc -mindepth 2 ! -name copyright ! -type d -delete",
        *IMPORT_CHANGES,
        "",
    ])


def registry_base_inputs(arch: Arch, ref: str, image_id: str) -> ImageInputs:
    """The registry route's base: keyed by the FROM reference AND the pulled
    image's ID (a moved tag gives a new base), the Dockerfile and files."""
    parts: dict[str, bytes | str] = {
        "route": "registry",
        "from": ref,
        "from-id": image_id,
        "arch": arch.docker,
        "Dockerfile": registry_base_dockerfile(),
    }
    for path, text in ROOTFS_FILES.items():
        parts[f"file:{path}"] = text
    return ImageInputs.of("bottle-base", parts)


def agent_inputs(base: ImageInputs, arch: Arch,
                 claude_version: str = CLAUDE_CODE_VERSION,
                 codex_version: str = CODEX_VERSION) -> ImageInputs:
    return ImageInputs.of("bottle-agent", {
        "base": base.tag,
        "Dockerfile": dockerfile("agent"),
        "claude-code": f"{CLAUDE_CODE_PACKAGE}@{claude_version} {arch.npm}",
        "codex": f"{CODEX_PACKAGE}@{codex_version} {arch.npm}",
    })


def bundle_inputs(base: ImageInputs, arch: Arch, *,
                  source_root: Path = SOURCE_ROOT,
                  requirements: Path | None = None) -> ImageInputs:
    """The bundle: Dockerfile, pinned requirements, and its packages' files."""
    req = requirements or source_root / "bottle_bundle" / "requirements.txt"
    if not req.is_file():
        raise ImageError(f"bundle requirements not found: {req}")
    parts: dict[str, bytes | str] = {
        "base": base.tag,
        "Dockerfile": dockerfile("bundle"),
        "requirements.txt": req.read_bytes(),
        "wheel-target": f"cp{DEBIAN_PYTHON.replace('.', '')} {arch.wheel}",
    }
    for rel in bundle_sources(source_root):
        parts[f"src:{rel}"] = (source_root / rel).read_bytes()
    return ImageInputs.of("bottle-bundle", parts)


def bundle_sources(source_root: Path = SOURCE_ROOT,
                   packages: Iterable[str] = BUNDLE_PACKAGES) -> list[str]:
    """Every file of the bundle's packages, as paths relative to ``source_root``.

    The daemons (`bottle_bundle`) import only the seam package (`bottle_api`,
    for the shared conventions), and the layering is enforced by
    import-linter, so the image is exactly these two packages: a backend
    edit never changes the bundle's tag.
    """
    found: list[str] = []
    for package in packages:
        root = source_root / package
        if not (root / "__init__.py").is_file():
            raise ImageError(f"bundle source package not found: {root}")
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.append(str(path.relative_to(source_root)))
    return sorted(found)
