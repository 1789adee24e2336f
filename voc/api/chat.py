"""POST /api/chat: a question in, Server-Sent Events out (each step and tool call, then the answer)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field

from agents.chat import ChatContext
from voc.api.deps import ServicesDep
from voc.api.services import Services
from voc.contracts import Engine, RunEngine
from voc.errors import Invalid, NotFound

router = APIRouter(prefix="/api/chat", tags=["chat"])
SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
log = logging.getLogger(__name__)


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=2000, description="The analyst's question, in Chinese.")
    session_id: str | None = Field(default=None, pattern=SESSION.pattern,
                                   description="Continue a conversation; a new one is started when omitted.")
    engine: RunEngine = Field(default=Engine.OFFLINE, description="llm needs VOC_LLM_BASE_URL/MODEL.")


class ChatMessage(BaseModel):
    role: str
    content: str
    voice_ids: list[str] = []
    proposal_ids: list[str] = []


def _sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False, default=str)}\n\n"


async def stream_answer(services: Services, session_id: str, message: str, engine: str) -> AsyncIterator[str]:
    yield _sse({"type": "session", "session_id": session_id})
    config: RunnableConfig = {"configurable": {"thread_id": f"chat-{session_id}"}}
    question = {"messages": [{"role": "user", "content": message}], "engine": engine}
    try:
        async for event in services.chat.astream(question, config, stream_mode="custom",
                                                 context=ChatContext(services.toolbox, services.chat_llm)):
            yield _sse(event)
    except Exception:  # the stream is already open: an error event, the trace only in the log
        log.exception("chat session %s failed", session_id)
        yield _sse({"type": "error", "message": "内部错误"})
    yield _sse({"type": "done"})


@router.post("", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": "SSE `data:` events"}})
async def chat(body: ChatRequest, services: ServicesDep) -> StreamingResponse:
    """Ask a question. Events: `session`, then `step` / `tool` as they happen, then `answer` (text,
    voice_ids, proposal_ids), then `done`."""
    if body.engine == Engine.LLM and services.chat_llm is None:
        raise Invalid("the LLM engine is not configured: set VOC_LLM_BASE_URL and VOC_LLM_MODEL")
    session_id = body.session_id or uuid.uuid4().hex
    return StreamingResponse(stream_answer(services, session_id, body.message, body.engine),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{session_id}")
async def history(session_id: str, services: ServicesDep) -> list[ChatMessage]:
    """The messages of a conversation so far."""
    if not SESSION.match(session_id):
        raise Invalid("not a session id")
    snapshot = await services.chat.aget_state({"configurable": {"thread_id": f"chat-{session_id}"}})
    if not snapshot.values:
        raise NotFound(f"no conversation {session_id!r}")
    return [ChatMessage.model_validate(m) for m in snapshot.values.get("messages", [])]
