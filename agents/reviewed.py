"""Analysts' corrections override the engine's labels in every later run (read through MCP)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from agents.toolbox import Toolbox

T = TypeVar("T", bound=BaseModel)
BATCH = 500


async def corrections_for(toolbox: Toolbox, voice_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(voice_ids), BATCH):
        page = await toolbox.call("tickets", "get_corrections", voice_ids=voice_ids[start : start + BATCH])
        found |= {item["voice_id"]: item for item in page["items"]}
    return found


def corrected(item: T, correction: dict[str, Any] | None, fields: dict[str, str], **also: Any) -> T:
    """`item` with the corrected values of `fields` (correction field → item field) where set."""
    if correction is None:
        return item
    update = {target: correction[source] for source, target in fields.items() if correction.get(source) is not None}
    # Validated, not model_copy'd: the correction's values arrive as plain strings from MCP, and the
    # item's fields are the contract's enums.
    return type(item).model_validate(item.model_dump() | update | also) if update else item
