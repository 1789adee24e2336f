"""The agents' only way to data: MCP client sessions to the tickets, knowledge, cases and proposals servers.

Sessions run in process over memory streams: the same tools and contracts an outside assistant
reaches over stdio or HTTP, without a process per server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

from mcp import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session

from voc.config import Settings

T = TypeVar("T")


class ToolCallError(RuntimeError):
    """A tool answered with an error; the message is the tool's own."""


class Toolbox:
    def __init__(self, sessions: dict[str, ClientSession]) -> None:
        self.sessions = sessions
        self.calls: Counter[str] = Counter()

    async def call(self, server: str, tool: str, **arguments: Any) -> dict[str, Any]:
        self.calls[f"{server}.{tool}"] += 1
        result = await self.sessions[server].call_tool(tool, {k: v for k, v in arguments.items() if v is not None})
        if result.isError:
            message = " ".join(getattr(block, "text", "") for block in result.content)
            raise ToolCallError(f"{server}.{tool}: {message}")
        return result.structuredContent or {}

    async def call_batched(self, server: str, tool: str, items: Sequence[T], size: int,
                           arguments: Callable[[Sequence[T]], dict[str, Any]],
                           report: Callable[[int], None] | None = None) -> list[Any]:
        """Call a batch tool over items, `size` at a time; its per-item `results` concatenated in order."""
        results: list[Any] = []
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            results += (await self.call(server, tool, **arguments(batch)))["results"]
            if report:
                report(len(batch))
        return results


@asynccontextmanager
async def open_toolbox(settings: Settings) -> AsyncIterator[Toolbox]:
    from mcp_servers import cases, knowledge, proposals, tickets
    from voc.knowledge_base import KnowledgeBase

    kb = KnowledgeBase(settings)
    servers = {"tickets": tickets.create_server(settings), "knowledge": knowledge.create_server(settings, kb),
               "cases": cases.create_server(settings, kb), "proposals": proposals.create_server(settings)}
    async with AsyncExitStack() as stack:
        sessions = {name: await stack.enter_async_context(create_connected_server_and_client_session(server))
                    for name, server in servers.items()}
        yield Toolbox(sessions)
