"""The bearer-token check shared by the app and the MCP HTTP transport."""

from __future__ import annotations

import hmac


def bearer_matches(authorization: bytes | str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`: the scheme in any case (RFC 7235), the token compared in
    constant time."""
    value = authorization.decode("latin-1") if isinstance(authorization, bytes) else (authorization or "")
    scheme, _, given = value.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
