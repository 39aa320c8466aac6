"""A third-party MCP server for the tests, built with the official Python SDK (`mcp` from
PyPI): AWOOOI calls its tools as `mcp:ops/<tool>` actions over stdio.

    mcp_tools_server.py LOG_FILE

`restart_service` appends what it was asked to LOG_FILE, so a test can see the real values
the tool received; `fail` always reports an error.
"""
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

LOG = sys.argv[1]
server = MCPServer("ops-tools")


@server.tool()
def restart_service(name: str, host: str) -> str:
    """Restart a service on a host."""
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(f"restart {name} on {host}\n")
    return f"restarted {name} on {host}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ToolError(f"refused: {reason}")


server.run("stdio")
