"""The MCP servers: tickets (voices), knowledge (matrix, taxonomy, documents), cases, proposals."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.fastmcp import FastMCP

from mcp_servers import cases, knowledge, proposals, tickets
from voc.config import Settings

SERVERS: dict[str, Callable[[Settings], FastMCP]] = {
    "tickets": tickets.create_server,
    "knowledge": knowledge.create_server,
    "cases": cases.create_server,
    "proposals": proposals.create_server,
}
