"""The expected failures of the product, by kind. Every interface maps a kind once: the API to an
HTTP status (voc/api/application.py), the MCP servers to a plain tool error, the CLI to one line."""

from __future__ import annotations


class VocError(ValueError):
    """An expected condition; the message says what happened and what to do."""


class NotFound(VocError):
    """The thing asked for does not exist (HTTP 404)."""


class Conflict(VocError):
    """The request is well formed but clashes with the current state (HTTP 409)."""


class Invalid(VocError):
    """The request itself is wrong: a value outside the matrix, taxonomy or contract (HTTP 422)."""
