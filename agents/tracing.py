"""溯源 Tracing: sentiment and intensity, root-cause dimension (人机物法环), taxonomy tag, cause phrase."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime

from agents.context import RunContext, context_of, llm_stats, tools_for
from agents.reviewed import corrected, corrections_for
from agents.schemas import VoiceInput, VoiceTrace
from agents.sentiment import analyse
from agents.state import RunState
from agents.toolbox import Toolbox


def offline_trace(voice: VoiceInput, suggestions: list[dict[str, Any]]) -> VoiceTrace:
    feeling = analyse(voice.text, voice.channel)
    top = suggestions[0]
    total = sum(s["score"] for s in suggestions) or 1.0
    leaf = top["tag"].split(">")[-1]
    hits = [h for h in top["keyword_hits"] if h != leaf][:2]
    return VoiceTrace(voice_id=voice.id, sentiment=feeling.sentiment,
                      intensity=feeling.intensity, dimension=top["dimension"], tag=top["tag"],
                      root_cause=(f"{leaf}：{'、'.join(hits)}" if hits else leaf)[:80], signals=feeling.signals,
                      tag_confidence=round(top["score"] / total, 4))


REVIEWED_FIELDS = {"dimension": "dimension", "tag": "tag", "sentiment": "sentiment"}


async def trace_offline(toolbox: Toolbox, voices: list[VoiceInput], batch_size: int,
                        report: Callable[[int], None] | None = None) -> list[VoiceTrace]:
    suggestions = await toolbox.call_batched("knowledge", "suggest_tags_batch", voices, batch_size,
                                             lambda batch: {"texts": [v.text for v in batch], "limit": 3}, report)
    return [offline_trace(v, s) for v, s in zip(voices, suggestions, strict=True)]


async def trace(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    context = context_of(runtime)
    started = time.perf_counter()
    voices = [VoiceInput.model_validate(v) for v in state.get("voices", [])]
    previous = [VoiceInput.model_validate(v) for v in state.get("previous_voices", [])]
    context.report("溯源", 0, len(voices) + len(previous))
    async with tools_for(context) as toolbox:
        current = await trace_offline(toolbox, voices, context.config.batch_size, lambda n: context.report("溯源", n))
        # The previous period is always traced offline: spike detection compares like with like.
        before = await trace_offline(toolbox, previous, context.config.batch_size, lambda n: context.report("溯源", n))
        if context.llm is not None:
            taxonomy = await toolbox.call("knowledge", "get_taxonomy")
            tags = {t["path"]: t["dimension"] for t in taxonomy["tags"]}
            current = await asyncio.to_thread(_refine_with_llm, context, voices, current, tags)
        reviewed = await corrections_for(toolbox, [v.id for v in voices + previous])
    current, before = ([corrected(t, reviewed.get(t.voice_id), REVIEWED_FIELDS) for t in traces]
                       for traces in (current, before))
    return {"traces": [t.model_dump(mode="json") for t in current],
            "previous_traces": [t.model_dump(mode="json") for t in before],
            "timings": {"tracing": round(time.perf_counter() - started, 3)}, "llm": llm_stats(context)}


def _refine_with_llm(context: RunContext, voices: list[VoiceInput], offline: list[VoiceTrace],
                     tags: dict[str, str]) -> list[VoiceTrace]:
    assert context.llm is not None
    hints = {t.voice_id: [t.tag] for t in offline}
    answers = context.llm.trace(voices, hints, tags)
    return [answer if answer is not None and tags.get(answer.tag) == answer.dimension
            else fallback.model_copy(update={"engine": "fallback"})
            for answer, fallback in zip(answers, offline, strict=True)]
