"""The bearer-token guard shared by the app and the MCP HTTP transport."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

NO_TOKEN = "missing or wrong bearer token"


def bearer_matches(authorization: bytes | str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`: the scheme in any case (RFC 7235), the token compared in
    constant time."""
    value = authorization.decode("latin-1") if isinstance(authorization, bytes) else (authorization or "")
    scheme, _, given = value.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def reply_error(send: Send, status: int, error: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A JSON `{"error": …}` answer, as the app's exception handlers give (guards run outside them)."""
    body = json.dumps({"error": error}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def _nothing_exempt(_scope: Scope) -> bool:
    return False


class BearerGuard:
    """Pure ASGI middleware: every HTTP request needs the bearer token (401 otherwise), except the
    ones `exempt` lets through (the app's page and docs)."""

    def __init__(self, app: ASGIApp, token: str, exempt: Callable[[Scope], bool] = _nothing_exempt) -> None:
        self.app, self.token, self.exempt = app, token, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and not self.exempt(scope)
                and not bearer_matches(header(scope, b"authorization"), self.token)):
            await reply_error(send, 401, NO_TOKEN, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)
