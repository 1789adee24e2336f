"""What a run hands every node besides the state: settings, configuration, tools, engines, progress."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph.runtime import Runtime

from agents.configuration import Configuration
from agents.toolbox import Toolbox, open_toolbox
from voc.config import Settings, get_settings

if TYPE_CHECKING:
    from agents.llm_client import LLMClient
    from agents.state import RunState

Progress = Callable[[str, int, int | None], None]


@dataclass
class RunContext:
    settings: Settings
    config: Configuration
    toolbox: Toolbox | None = None
    llm: LLMClient | None = None
    progress: Progress | None = None

    def report(self, agent: str, advance: int, total: int | None = None) -> None:
        if self.progress:
            self.progress(agent, advance, total)


def context_of(runtime: Runtime[RunContext] | None) -> RunContext:
    """The deployed graph (langgraph.json) may run without a context: fall back to the settings."""
    if runtime is not None and runtime.context is not None:
        return runtime.context
    return RunContext(settings=get_settings(), config=Configuration())


@asynccontextmanager
async def tools_for(context: RunContext) -> AsyncIterator[Toolbox]:
    if context.toolbox is not None:
        yield context.toolbox
        return
    async with open_toolbox(context.settings) as toolbox:
        yield toolbox


def llm_stats(context: RunContext, state: RunState) -> dict[str, Any]:
    """The run state's `llm` entry: the usage counters so far and the version of every prompt template
    used. The state merges entries shallowly, so the templates reported before a resume are kept."""
    if context.llm is None:
        return {}
    usage = context.llm.usage()
    return usage | {"prompts": {**state.get("llm", {}).get("prompts", {}), **usage["prompts"]}}
