"""Daemon log lines: ``<daemon>: message`` on stderr, no tracebacks.

Several daemons share one container log in the smolmachines bundle, hence
the prefix. Library errors (mitmproxy, the MCP SDK, uvicorn) are shown as one
line with the exception's repr: a traceback is noise to a bottle user and
can carry request data.
"""

from __future__ import annotations

import logging
import sys


class OneLineFormatter(logging.Formatter):
    def formatException(self, ei) -> str:  # noqa: N802 - logging API
        return f"  ({ei[1]!r})" if ei and ei[1] is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\n", " ")

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging API
        return ""


def setup_logging(name: str) -> logging.Logger:
    """Root at WARNING (libraries), the daemon's own logger at INFO."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(f"{name}: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logger = logging.getLogger(f"bottle_bundle.{name}")
    logger.setLevel(logging.INFO)
    return logger


def fail(name: str, message: str, code: int = 2) -> int:
    """Print a startup failure for the user and return the exit code."""
    print(f"{name}: {message}", file=sys.stderr, flush=True)
    return code
