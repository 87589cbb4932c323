"""Images for the live stack (DESIGN §7).

``python -m bottle_ref.images [agent|bundle|all] [--base REF] [--print-env]``
builds ``bottle-agent:<hash12>`` and ``bottle-bundle:<hash12>`` FROM a base
(``bottle-base:<hash12>``): debootstrap as root on Linux (no registry),
otherwise FROM a registry image (default ``debian:bookworm-slim``). Each is
tagged by a hash of all its inputs so an unchanged image is never rebuilt. See `build` for the steps, `inputs` for
what is hashed, `fetch` for the host-side registry downloads, `rootfs` for
debootstrap and import.
"""

from .build import ENV_NAMES, ROLES, Builder, main
from .inputs import CLAUDE_CODE_VERSION, Arch, ImageError, ImageInputs

__all__ = ["Arch", "Builder", "CLAUDE_CODE_VERSION", "ENV_NAMES", "ImageError",
           "ImageInputs", "ROLES", "main"]
