"""supervise: the MCP server the agent gets in its user config (PROV-MCP).

Streamable HTTP at ``http://<SUPERVISE_LISTEN>/mcp``, built on the ``mcp``
SDK's FastMCP. Two tools, deliberately small: the contract only needs the
server registered and answering; what a supervisor does with requests is
policy outside this project.

    status()                        the bottle's name and pending approvals
    request_approval(action, reason) records a request as a JSON file in the
                                    queue dir and returns its id (pending)

Environment:
    SUPERVISE_LISTEN      default 0.0.0.0:9100
    SUPERVISE_QUEUE_DIR   default /var/lib/bottle-supervise/queue
    BOTTLE_NAME           reported by ``status`` (default "unknown")

DNS-rebinding protection is off on purpose: agents reach the server under
names the SDK cannot know (``supervise:9100`` on docker, a published
loopback port on smolmachines); the bottle's networks are what isolate it.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bottle_api import conventions
from .hosts import parse_listen
from .logs import setup_logging

NAME = "supervise"
DEFAULT_LISTEN = "0.0.0.0:9100"
QUEUE_ENV = "SUPERVISE_QUEUE_DIR"
DEFAULT_QUEUE = "/var/lib/bottle-supervise/queue"


class ApprovalQueue:
    """One JSON file per request; written atomically (tmp + rename) so a
    reader never sees half a request."""

    def __init__(self, root: Path):
        self.root = root

    def pending(self) -> int:
        return sum(1 for _ in self.root.glob("*.json"))

    def add(self, action: str, reason: str) -> dict[str, Any]:
        ident = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"
        record = {"id": ident, "action": action, "reason": reason, "status": "pending",
                  "requested_at": time.time()}
        tmp = self.root / f".{ident}.tmp"
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(self.root / f"{ident}.json")
        return record


def build_server(*, bottle: str, queue: ApprovalQueue, host: str, port: int):
    from mcp.server.fastmcp import FastMCP
    from mcp.server.transport_security import TransportSecuritySettings

    server = FastMCP(
        conventions.SUPERVISE_SERVER_NAME,
        instructions="Ask the bottle's supervisor for approval before risky actions.",
        host=host, port=port, streamable_http_path=conventions.SUPERVISE_MCP_PATH,
        log_level="WARNING",
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    @server.tool()
    def status() -> dict[str, Any]:
        """The bottle this agent runs in and how many approvals are pending."""
        return {"bottle": bottle, "pending_approvals": queue.pending()}

    @server.tool()
    def request_approval(action: str, reason: str = "") -> dict[str, Any]:
        """Ask the supervisor to approve ``action``; returns the request id.
        The request stays pending until a human decides."""
        record = queue.add(action, reason)
        return {"id": record["id"], "status": record["status"]}

    return server


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    setup_logging(NAME)  # before FastMCP, whose basicConfig then keeps ours
    try:
        host, port = parse_listen(env.get(conventions.SUPERVISE_LISTEN_ENV) or DEFAULT_LISTEN,
                                  what=conventions.SUPERVISE_LISTEN_ENV)
    except ValueError as exc:
        print(f"{NAME}: refusing to start: {exc}", file=sys.stderr, flush=True)
        return 2
    root = Path(env.get(QUEUE_ENV) or DEFAULT_QUEUE)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{NAME}: cannot create queue dir {root}: {exc.strerror}", file=sys.stderr, flush=True)
        return 2
    server = build_server(bottle=env.get("BOTTLE_NAME") or "unknown", queue=ApprovalQueue(root),
                          host=host, port=port)
    print(f"{NAME}: MCP (streamable HTTP) on http://{host}:{port}{conventions.SUPERVISE_MCP_PATH}, "
          f"queue {root}", file=sys.stderr, flush=True)
    server.run(transport="streamable-http")  # uvicorn: SIGTERM shuts it down
    return 0


if __name__ == "__main__":
    sys.exit(main())
