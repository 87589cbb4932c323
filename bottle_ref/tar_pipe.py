"""Stream a host directory, as a tar archive, into the stdin of a command.

Usage: ``python /abs/path/tar_pipe.py SRC_DIR -- CMD...``

WHY: ``smolvm machine cp`` copies one regular file (smolvm 1.9.3
``src/cli/machine.rs`` ``CpCmd::run`` opens SRC with ``File::open`` and
streams it; there is no directory copy), so a directory (a skill, the
cwd's ``.git``) travels as a tar stream into ``smolvm machine exec -i ...
-- sh -c 'tar -x ...'``; ``-i`` keeps stdin open and smolvm sends EOF when
ours ends (1.9.3 ``src/agent/client.rs`` ``interactive_session_io``).
The runner speaks text; a tar stream is bytes, hence this wrapper, which
also keeps the whole smolvm argv visible on the recorded argv.

Run by absolute path like ``pty_resize.py``; standard library only.
Members are the directory's contents relative to ``.``; symlinks stay
links (never followed out of SRC_DIR); owners are not carried (the guest
side extracts with ``--no-same-owner`` and provisioning chowns after).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Sequence

USAGE = "usage: tar_pipe.py SRC_DIR -- CMD [ARG...]"


class UsageError(ValueError):
    """Bad command line; the message is the one line the user sees."""


def parse_args(argv: Sequence[str]) -> tuple[str, list[str]]:
    argv = list(argv)
    if len(argv) < 3 or argv[1] != "--":
        raise UsageError(USAGE)
    src, cmd = argv[0], argv[2:]
    if not os.path.isdir(src):
        raise UsageError(f"tar_pipe.py: {src}: not a directory")
    return src, cmd


def _reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # The host's uid/names mean nothing in the guest.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def stream(src: str, out) -> None:
    """Write SRC's contents as an uncompressed tar stream to ``out``."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(src)):
            tar.add(os.path.join(src, name), arcname=f"./{name}", recursive=True,
                    filter=_reset_owner)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        src, cmd = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        child = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    except OSError as exc:
        print(f"tar_pipe.py: cannot run {cmd[0]}: {exc}", file=sys.stderr)
        return 127
    try:
        stream(src, child.stdin)
    except BrokenPipeError:
        pass  # the command stopped reading; its exit status says why
    except OSError as exc:
        print(f"tar_pipe.py: reading {src}: {exc}", file=sys.stderr)
        child.kill()
    finally:
        try:
            child.stdin.close()
        except BrokenPipeError:
            pass
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
