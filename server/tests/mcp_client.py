"""A real MCP client (the official Python SDK, `mcp` from PyPI) driving AWOOOI's MCP server.

    mcp_client.py http  URL/mcp TOKEN INCIDENT_ID
    mcp_client.py stdio AWOOOI_BIN SERVER_URL TOKEN INCIDENT_ID

Prints one JSON object: the tool names and, per call, whether it failed and its text.
"""
import asyncio
import json
import os
import sys

import httpx2
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


async def exercise(session, incident, target):
    await session.initialize()
    out = {"tools": sorted(t.name for t in (await session.list_tools()).tools)}

    async def call(name, args):
        result = await session.call_tool(name, arguments=args)
        text = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
        return {"error": bool(result.is_error), "text": text}

    out["list"] = await call("list_incidents", {})
    out["blast"] = await call("blast_radius", {"service": "postgres-db"})
    out["propose"] = await call(
        "propose_action",
        {"incident_id": incident, "kind": "restart_deployment", "target": target,
         "rationale": "proposed by an agent"},
    )
    if not out["propose"]["error"]:
        approval = json.loads(out["propose"]["text"])["id"]
        out["status"] = await call("approval_status", {"approval_id": approval})
    out["ack"] = await call("acknowledge_incident", {"incident_id": incident})
    out["assign"] = await call("assign_incident", {"incident_id": incident, "assignee": "agent"})
    out["comment"] = await call(
        "comment_on_incident",
        {"incident_id": incident, "body": f"checked from {target}; host 10.9.8.7 looks fine"},
    )
    out["finops"] = await call("finops_report", {})
    out["missing_argument"] = await call("get_incident", {})
    out["unknown_service"] = await call("root_causes", {"service": "no-such-service"})
    return out


async def main():
    mode = sys.argv[1]
    # Each transport proposes its own action: a second pending twin would be refused.
    target = "order-api" if mode == "http" else "product-api"
    if mode == "http":
        url, token, incident = sys.argv[2:5]
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with client, streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                out = await exercise(session, incident, target)
    else:
        binary, url, token, incident = sys.argv[2:6]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWOOOI_TOKEN": token,
               "AWOOOI_URL": url, "RUST_LOG": "warn"}
        params = StdioServerParameters(command=binary, args=["mcp"], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                out = await exercise(session, incident, target)
    print(json.dumps(out))


asyncio.run(main())
