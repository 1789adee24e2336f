"""The chat's LLM engine: a tool-calling agent over the same read-only MCP tools, for any
OpenAI-compatible endpoint (through the agents' LLM client: same retries, usage and JSON extraction).
Each tool call is streamed like the offline engine's; the final answer is validated (JSON shape, and
every cited id must have appeared in a tool result) or the offline engine answers instead."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from agents.llm_client import InvalidAnswer, LLMClient, LLMStats, validated
from agents.toolbox import Toolbox, ToolCallError
from voc.config import Settings
from voc.pii import mask_text

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionToolUnionParam

log = logging.getLogger(__name__)
MAX_STEPS = 6
MAX_RESULT_CHARS = 6000
SEPARATOR = "__"  # server__tool: OpenAI function names allow letters, digits, _ and -


class LLMAnswer(BaseModel):
    text: str
    voice_ids: list[str] = []
    proposal_ids: list[str] = []


class ChatLLM:
    def __init__(self, settings: Settings, client: openai.AsyncOpenAI | None = None) -> None:
        if not settings.llm_base_url or not settings.llm_model:
            raise ValueError("VOC_LLM_BASE_URL and VOC_LLM_MODEL must both be set for the LLM chat engine")
        self.llm = LLMClient(settings, client)
        self.model = self.llm.model

    @property
    def stats(self) -> LLMStats:
        return self.llm.stats

    async def tools(self, toolbox: Toolbox) -> list[ChatCompletionFunctionToolParam]:
        """The read-only tools of every server, as OpenAI function tools (writes are never offered)."""
        specs: list[ChatCompletionFunctionToolParam] = []
        for server, session in toolbox.sessions.items():
            for tool in (await session.list_tools()).tools:
                if tool.annotations is not None and tool.annotations.readOnlyHint:
                    specs.append({"type": "function", "function": {
                        "name": f"{server}{SEPARATOR}{tool.name}", "description": tool.description or "",
                        "parameters": tool.inputSchema}})
        return specs

    async def answer(self, toolbox: Toolbox, history: list[dict[str, Any]], emit: Any) -> LLMAnswer | None:
        messages: list[Any] = [{"role": "system", "content": self.llm.system_prompt("chat")}]
        messages += [{"role": m["role"], "content": m["content"]} for m in history]
        tools, seen = await self.tools(toolbox), ""
        for _ in range(MAX_STEPS):
            message = await self._complete(messages, tools)
            if message is None:
                return None
            if not message.tool_calls:
                return self._validated(message.content, seen)
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                result = await self._run_tool(toolbox, call.function.name, call.function.arguments, emit)
                seen += result
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        log.warning("chat: no answer after %d steps", MAX_STEPS)
        return None

    async def _complete(self, messages: list[Any], tools: list[ChatCompletionFunctionToolParam]) -> Any:
        offered: list[ChatCompletionToolUnionParam] = list(tools)
        return await self.llm.complete(messages, offered)

    async def _run_tool(self, toolbox: Toolbox, name: str, arguments: str, emit: Any) -> str:
        server, _, tool = name.partition(SEPARATOR)
        try:
            parsed = json.loads(arguments or "{}")
            if server not in toolbox.sessions or not isinstance(parsed, dict):
                raise ValueError(f"unknown tool {name!r}")
            emit({"type": "tool", "server": server, "tool": tool, "arguments": parsed})
            result = json.dumps(await toolbox.call(server, tool, **parsed), ensure_ascii=False, default=str)
        except (ValueError, ToolCallError) as error:
            result = json.dumps({"error": str(error)}, ensure_ascii=False)
        return mask_text(result)[:MAX_RESULT_CHARS]

    def _validated(self, content: str | None, seen: str) -> LLMAnswer | None:
        try:
            answer = validated(content, LLMAnswer)
        except (InvalidAnswer, ValidationError) as error:
            log.warning("chat: the final answer is not the expected JSON: %s", error)
            self.stats.failures += 1
            return None
        # Ids the tools never returned are invented: they are dropped, not shown as evidence.
        return answer.model_copy(update={"text": mask_text(answer.text),
                                         "voice_ids": [i for i in answer.voice_ids if i in seen],
                                         "proposal_ids": [i for i in answer.proposal_ids if i in seen]})
