"""Path, query and body value types shared by the routers: an ISO week and a run id, checked before
they reach the file system (a bad value is a 422, never a 500 or a path outside the data directory)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from voc.periods import parse_week

WEEK_PATTERN = r"^[0-9]{4}-W[0-9]{2}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$"


def _real_week(value: str) -> str:
    parse_week(value)  # 2026-W99 matches the pattern but is no week: ValueError → 422
    return value


def _no_parent(value: str) -> str:
    if ".." in value:
        raise ValueError("a run id never contains '..'")
    return value


IsoWeek = Annotated[str, StringConstraints(pattern=WEEK_PATTERN), AfterValidator(_real_week)]
"""An ISO week such as 2026-W47 that exists in the calendar."""

RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN), AfterValidator(_no_parent)]
"""A run id such as 2026-W47-offline-20261201T101500-1a2b3c: letters, digits, `_.-`, no leading dot, no `..`."""
