"""The bundle image's sidecar daemons, run as ``bottle-bundle <daemon>[,...]``.

Each daemon is a module with ``main(argv=None) -> int`` that reads its config
only from the mounted files and the environment named in the team brief
("Bundle image interface"), so every backend can run the same image. The
supervisor (`supervisor`, also ``python -m bottle_bundle``) starts them as
child processes and dies as soon as one does, so a broken daemon is visible
instead of silently missing.

Third-party needs (mitmproxy, mcp) are imported only by the daemons that use
them; the pinned set is ``requirements.txt`` next to this file.
"""

from __future__ import annotations

from collections.abc import Mapping

# daemon name (as on the bundle's command line) -> module run as ``python -m``
DAEMONS: Mapping[str, str] = {
    "pipelock": "bottle_bundle.pipelock_proxy",
    "egress": "bottle_bundle.egress_proxy",
    "git-gate": "bottle_bundle.git_gate",
    "supervise": "bottle_bundle.supervise_server",
    "upstream": "bottle_bundle.upstream",  # tests only: the "allowed internet"
}
