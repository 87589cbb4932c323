"""supervise: the MCP server registered in the agent's *user* config.

Registration must run as ``node`` with ``HOME=/home/node`` (seed MCP fix: as
root it lands in /root/.claude.json and the agent sees no server). The
framing is the backend's job; this module only says what to run.

Claude Code: ``claude mcp add --scope user --transport http`` writes
``mcpServers.NAME`` into ``~/.claude.json``. Codex: ``codex mcp add NAME
--url URL`` writes ``[mcp_servers.NAME]`` with ``url = URL`` (a streamable
HTTP server) into ``$CODEX_HOME/config.toml`` (codex-rs cli/src/mcp_cmd.rs
``run_add`` with ``AddMcpStreamableHttpArgs``; run offline with the pinned
0.169.0, ``codex mcp list --json`` then shows ``transport.type
streamable_http`` and the url).
"""

from __future__ import annotations

from bottle_api import conventions

SERVER_NAME = conventions.SUPERVISE_SERVER_NAME
PORT = conventions.PORTS[conventions.SUPERVISE]
MCP_PATH = conventions.SUPERVISE_MCP_PATH
LISTEN_ENV = conventions.SUPERVISE_LISTEN_ENV


def mcp_url(host: str, port: int = PORT) -> str:
    """The agent-facing MCP endpoint, e.g. ``http://supervise:9100/mcp``."""
    return f"http://{host}:{port}{MCP_PATH}"


def mcp_add_argv(url: str, name: str = SERVER_NAME) -> list[str]:
    """``claude mcp add`` at user scope over streamable HTTP."""
    return ["claude", "mcp", "add", "--scope", "user", "--transport", "http", name, url]


def codex_mcp_add_argv(url: str, name: str = SERVER_NAME) -> list[str]:
    """``codex mcp add NAME --url URL``: a global (user) streamable HTTP entry."""
    return ["codex", "mcp", "add", name, "--url", url]


def mcp_add_argv_for(agent: str, url: str, name: str = SERVER_NAME) -> list[str]:
    """The registration command of ``agent``'s own CLI."""
    return codex_mcp_add_argv(url, name) if agent == "codex" else mcp_add_argv(url, name)
