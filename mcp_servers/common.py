"""What the three MCP servers share: tool annotations, period arguments, and the runner."""

from __future__ import annotations

import hmac
import logging
import sys
from datetime import date
from typing import Literal

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from starlette.types import ASGIApp, Receive, Scope, Send

from voc.periods import Period, period_of

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
WRITES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)

Transport = Literal["stdio", "http"]


def resolve_period(week: str | None, date_from: date | None, date_to: date | None) -> Period:
    try:
        return period_of(week, date_from, date_to)
    except ValueError as exc:
        raise ToolError(str(exc)) from exc


def check_limit(limit: int, cap: int, name: str = "limit") -> None:
    if not 1 <= limit <= cap:
        raise ToolError(f"{name} must be between 1 and {cap}, got {limit}")


class BearerAuth:
    """Rejects HTTP requests without the configured bearer token (constant-time comparison)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers", [])).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b'{"error":"missing or wrong bearer token"}'})
                return
        await self.app(scope, receive, send)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def security_for(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection on loopback; any Host when deliberately bound elsewhere."""
    if host in LOOPBACK:
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def run(server: FastMCP, transport: Transport, host: str, port: int, token: str | None) -> None:
    # Over stdio the protocol owns stdout: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    if transport == "stdio":
        server.run(transport="stdio")
        return
    import uvicorn

    if host not in LOOPBACK and not token:
        # The writing tools (register_run, update_proposal, record_case, …) must never be reachable
        # from the network without a token: refused here too, not only by `voc mcp`.
        raise ValueError("binding beyond loopback needs a bearer token (--token or VOC_MCP_TOKEN)")
    server.settings.host, server.settings.port = host, port
    server.settings.transport_security = security_for(host)
    app: ASGIApp = server.streamable_http_app()
    if token:
        app = BearerAuth(app, token)
    uvicorn.run(app, host=host, port=port, log_level="warning")
