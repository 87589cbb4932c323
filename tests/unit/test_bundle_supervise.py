"""supervise answers MCP over streamable HTTP at /mcp (PROV-MCP's server side)."""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest

# Found, not imported: every xdist worker collects this module, and importing
# the MCP SDK (~0.5 s CPU) is only worth it on the worker that runs the test.
if importlib.util.find_spec("mcp") is None:  # pragma: no cover
    pytest.skip("the supervise daemon needs the mcp SDK (bundle requirements.txt)",
                allow_module_level=True)

from bundle_harness import LOOPBACK, free_port, running  # noqa: E402


async def session_roundtrip(url: str, host_header: str) -> dict:
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    client = httpx.AsyncClient(headers={"Host": host_header}, trust_env=False, timeout=10)
    async with client, streamable_http_client(url, http_client=client) as (read, write, _):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            status = await session.call_tool("status", {})
            approval = await session.call_tool("request_approval",
                                               {"action": "git push", "reason": "ship it"})
            return {"server": init.serverInfo.name,
                    "tools": sorted(t.name for t in tools.tools),
                    "status": status.structuredContent,
                    "approval": approval.structuredContent}


def test_initialize_list_tools_and_call(tmp_path):
    port, queue = free_port(), tmp_path / "queue"
    env = {"SUPERVISE_LISTEN": f"{LOOPBACK}:{port}", "SUPERVISE_QUEUE_DIR": str(queue),
           "BOTTLE_NAME": "demo"}
    with running("supervise", env, tmp_path / "log", ports=(port,)):
        # The agent's Host is a name the SDK cannot know (supervise:9100 on
        # docker); the SDK's DNS-rebinding guard would refuse it on loopback.
        result = asyncio.run(asyncio.wait_for(
            session_roundtrip(f"http://{LOOPBACK}:{port}/mcp", "supervise:9100"), timeout=20))
    assert result["server"] == "supervise"
    assert result["tools"] == ["request_approval", "status"]
    assert result["status"] == {"bottle": "demo", "pending_approvals": 0}
    assert result["approval"]["status"] == "pending"
    (record,) = queue.glob("*.json")
    data = json.loads(record.read_text())
    assert data["id"] == result["approval"]["id"]
    assert data["action"] == "git push" and data["reason"] == "ship it"
