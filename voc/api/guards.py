"""The app's guards, as pure ASGI middleware (they see every request, however the app is started:
`voc serve`, `uvicorn app:app`, a test client). From the outside in:

- `HostGuard`: only configured Host names (DNS rebinding), and no foreign Origin;
- `AccessGuard`: /api needs the bearer token when one is set, and is local-only when none is;
- `BodyLimit`: counts the body as it streams in (chunked bodies have no Content-Length);
- `SecurityHeaders`: CSP and friends on every response."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voc.auth import BearerGuard, header, reply_error

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self' blob:; "
            "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI's stylesheet draws its icons as data: images; everything it loads comes from 'self'.
DOCS_CSP = PAGE_CSP.replace("img-src 'self' blob:", "img-src 'self' data:")
API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# Open without the token: the page and its assets (they hold no data) and the API's description.
PUBLIC = ("/", "/docs", "/openapi.json")
NO_TOKEN_OFF_LOOPBACK = "未配置访问令牌：非本机访问 /api 前，请先设置环境变量 VOC_API_TOKEN 并重启服务"


def route_path(scope: Scope) -> str:
    """The path inside the app (without a proxy's root_path): what the routes match."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


def is_public(path: str) -> bool:
    return path in PUBLIC or path.startswith("/static/")


def host_name(authority: str) -> str:
    """`[::1]:8080` → `::1`, `Example.org.:80` → `example.org`."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        name = authority[1:].split("]", 1)[0]
    else:
        name = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    return name.rstrip(".")


def is_loopback(host: str | None) -> bool:
    """A loopback address or name; None (a Unix socket peer) counts as local."""
    if host is None or host.startswith("/"):
        return True
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class HostGuard:
    """Refuse a Host (or a browser Origin) that is not one of the allowed names: 421."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = {host_name(h) for h in allowed}

    def _allows(self, name: str, scope: Scope) -> bool:
        # The address the request arrived on is safe too: rebinding needs the attacker's name, never an IP.
        server = scope.get("server")
        return "*" in self.allowed or name in self.allowed or bool(server and name == host_name(str(server[0])))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = header(scope, b"host")
            if host is None or not self._allows(host_name(host), scope):
                await reply_error(send, 421, f"不允许的 Host：{host!r}（见 VOC_API_ALLOWED_HOSTS）")
                return
            origin = header(scope, b"origin")
            if origin is not None and not self._allows(_origin_host(origin), scope):
                await reply_error(send, 403, f"不允许的来源 Origin：{origin!r}")
                return
        await self.app(scope, receive, send)


def _origin_host(origin: str) -> str:
    try:
        return host_name(urlsplit(origin).netloc)
    except ValueError:  # "http://[oops": no host, so never allowed
        return ""


class AccessGuard:
    """/api (every path but the page's and the docs'): with a token, `Authorization: Bearer <token>` (401
    otherwise, through the guard the MCP HTTP transport uses too); without one, only a request that
    arrives on a loopback address from a loopback client (403 otherwise)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.bearer = BearerGuard(app, token, exempt=lambda scope: is_public(route_path(scope))) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.bearer is not None:
            await self.bearer(scope, receive, send)
            return
        if scope["type"] == "http" and not is_public(route_path(scope)) and not _local(scope):
            await reply_error(send, 403, NO_TOKEN_OFF_LOOPBACK)
            return
        await self.app(scope, receive, send)


def _local(scope: Scope) -> bool:
    server, client = scope.get("server"), scope.get("client")
    return is_loopback(server[0] if server else None) and is_loopback(client[0] if client else None)


class BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit; BodyLimit answers 413."""


class BodyLimit:
    """413 for a declared Content-Length over the limit, up front, and for a body that grows past it
    while streaming in (chunked): whatever the app answers after that is replaced by the 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
        if length is not None and not (length.isascii() and length.strip().isdigit() and int(length) <= self.limit):
            await self._refuse(send)
            return
        seen = {"bytes": 0, "over": False, "started": False}

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.limit:
                    seen["over"] = True
                    raise BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            if not seen["over"]:  # after the refusal the app's own answer (often a 400 or 500) is dropped
                seen["started"] = True
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:  # BodyTooLarge, maybe wrapped (a task group) or turned into another error
            if not seen["over"]:
                raise
        if seen["over"] and not seen["started"]:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await reply_error(send, 413, f"request body over {self.limit} bytes", [(b"connection", b"close")])


class SecurityHeaders:
    """nosniff, no referrer, no framing on every response; the page's CSP on the page, a deny-all CSP on
    the API unless a route set its own (reports) or serves a PDF. /docs (Swagger UI from the app's own
    files, started by a script file) is under the page's policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _secured(list(message.get("headers", [])), path)}
            await send(message)

        await self.app(scope, receive, with_headers)


def _secured(headers: list[Any], path: str) -> list[Any]:
    present = {key.lower() for key, _ in headers}
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    extra = {b"x-content-type-options": b"nosniff", b"referrer-policy": b"no-referrer",
             b"x-frame-options": b"DENY"}
    if path.startswith("/api"):
        if not content_type.startswith(b"application/pdf"):
            extra[b"content-security-policy"] = API_CSP.encode()
    elif path == "/docs":
        extra[b"content-security-policy"] = DOCS_CSP.encode()
    elif path == "/" or path.startswith("/static/"):
        extra[b"content-security-policy"] = PAGE_CSP.encode()
    return headers + [(k, v) for k, v in extra.items() if k not in present]
