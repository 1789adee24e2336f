"""The run's state: JSON-plain dicts and lists, so every checkpoint can be restored in a new process."""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import TypedDict


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class RunState(TypedDict, total=False):
    run_id: str
    engine: str
    period: dict[str, str]
    previous_period: dict[str, str]
    voices: list[dict[str, Any]]
    previous_voices: list[dict[str, Any]]
    attributions: list[dict[str, Any]]
    traces: list[dict[str, Any]]
    previous_traces: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    outlier_ids: list[str]
    incidents: list[dict[str, Any]]
    proposals: list[dict[str, Any]]
    unproposed: list[dict[str, Any]]
    timings: Annotated[dict[str, float], merge]
    llm: Annotated[dict[str, Any], merge]
    tool_calls: dict[str, int]  # MCP calls per tool, added after the graph finished (run.json)
