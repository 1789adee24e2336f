"""溯源 Tracing: sentiment and intensity, root-cause dimension (人机物法环), taxonomy tag, cause phrase."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime
from pydantic import ConfigDict, Field, field_validator

from agents.context import RunContext, context_of, llm_stats, tools_for
from agents.llm_client import Items, LLMClient, VoiceItem, clip_unit, response_schema
from agents.prompts import voice_row
from agents.reviewed import corrected, corrections_for
from agents.schemas import VoiceInput, VoiceTrace
from agents.state import RunState
from agents.toolbox import Toolbox
from voc.contracts import Dimension, Engine, Sentiment, Signal
from voc.lexicon import SentimentResult, analyse
from voc.pii import mask_text


def offline_trace(voice: VoiceInput, suggestions: list[dict[str, Any]], judged: dict[str, Any] | None = None
                  ) -> VoiceTrace:
    """Tag from the suggestions (the learned layer's when trained); sentiment from the learned layer
    when it has one, the lexicon otherwise. The lexicon always gives the signals and the intensity."""
    feeling = analyse(voice.text, voice.channel)
    sentiment = Sentiment(judged["sentiment"]) if judged and judged.get("sentiment") else feeling.sentiment
    top = suggestions[0]
    total = sum(s["score"] for s in suggestions) or 1.0
    leaf = top["tag"].split(">")[-1]
    hits = [h for h in top["keyword_hits"] if h != leaf][:2]
    confidence = top.get("confidence")
    return VoiceTrace(voice_id=voice.id, sentiment=sentiment,
                      intensity=intensity_of(sentiment, feeling), dimension=top["dimension"], tag=top["tag"],
                      root_cause=(f"{leaf}：{'、'.join(hits)}" if hits else leaf)[:80], signals=feeling.signals,
                      tag_confidence=round(confidence if confidence is not None else top["score"] / total, 4))


def intensity_of(sentiment: Sentiment, feeling: SentimentResult) -> int:
    """The lexicon's intensity where it agrees; where the learned layer overrules it, the mildest
    intensity of the learned sentiment (a negative voice is at least 2, a neutral one 1)."""
    if sentiment == feeling.sentiment:
        return feeling.intensity
    return 2 if sentiment == Sentiment.NEGATIVE else 1


REVIEWED_FIELDS = {"dimension": "dimension", "tag": "tag", "sentiment": "sentiment"}


async def trace_offline(toolbox: Toolbox, voices: list[VoiceInput], batch_size: int,
                        report: Callable[[int], None] | None = None) -> list[VoiceTrace]:
    suggestions = await toolbox.call_batched("knowledge", "suggest_tags_batch", voices, batch_size,
                                             lambda batch: {"texts": [v.text for v in batch], "limit": 3}, report)
    judged = await toolbox.call_batched(
        "knowledge", "judge_sentiment_batch", voices, batch_size,
        lambda batch: {"queries": [{"text": v.text, "channel": v.channel, "business": v.business} for v in batch]})
    return [offline_trace(v, s, j) for v, s, j in zip(voices, suggestions, judged, strict=True)]


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
            current = await _refine_with_llm(context.llm, voices, current, tags)
        reviewed = await corrections_for(toolbox, [v.id for v in voices + previous])
    current, before = ([corrected(t, reviewed.get(t.voice_id), REVIEWED_FIELDS) for t in traces]
                       for traces in (current, before))
    return {"traces": [t.model_dump(mode="json") for t in current],
            "previous_traces": [t.model_dump(mode="json") for t in before],
            "timings": {"tracing": round(time.perf_counter() - started, 3)}, "llm": llm_stats(context, state)}


# ------------------------------------------------------------------ the LLM engine's 溯源

log = logging.getLogger(__name__)
MAX_ROOT_CAUSE_CHARS = 80  # VoiceTrace.root_cause's max_length
_SIGNALS = frozenset(s.value for s in Signal)


class TraceAnswer(VoiceItem):
    """What the model writes for one voice; the schema narrows tag to the taxonomy."""

    model_config = ConfigDict(str_strip_whitespace=True)
    sentiment: Sentiment
    intensity: int = Field(ge=1, le=5)
    dimension: Dimension
    tag: str
    root_cause: str = Field(min_length=1)
    signals: list[Signal] = Field(default_factory=list)
    tag_confidence: float = 0.0

    @field_validator("signals", mode="before")
    @classmethod
    def _known_signals(cls, value: Any) -> Any:
        """An invented signal is dropped, not the voice's answer: the analysis counts only known ones."""
        if not isinstance(value, list):
            return value
        return list(dict.fromkeys(s for s in value if isinstance(s, str) and s in _SIGNALS))


async def _refine_with_llm(llm: LLMClient, voices: list[VoiceInput], offline: list[VoiceTrace],
                           tags: dict[str, str]) -> list[VoiceTrace]:
    """The model's trace where it gave a valid one; otherwise the offline trace, flagged fallback."""
    hints = {t.voice_id: [t.tag] for t in offline}
    answers = await llm_trace(llm, voices, hints, tags)
    return [answer if answer is not None and tags.get(answer.tag) == answer.dimension
            else fallback.model_copy(update={"engine": Engine.FALLBACK})
            for answer, fallback in zip(answers, offline, strict=True)]


async def llm_trace(llm: LLMClient, voices: list[VoiceInput], tag_candidates: dict[str, list[str]],
                    tags: dict[str, str]) -> list[VoiceTrace | None]:
    """The model's trace of each voice, its tag one of the taxonomy's paths (`tags`: path → dimension)."""

    def row(voice: VoiceInput) -> dict[str, Any]:
        return voice_row(voice) | {"tag_hints": [t for t in tag_candidates.get(voice.id, []) if t in tags]}

    def build(answer: TraceAnswer) -> VoiceTrace | None:
        if tags.get(answer.tag) != answer.dimension:
            log.warning("voice %s: tag %r with dimension %r is not in the taxonomy", answer.voice_id, answer.tag,
                        answer.dimension)
            return None
        return VoiceTrace(voice_id=answer.voice_id, sentiment=answer.sentiment, intensity=answer.intensity,
                          dimension=answer.dimension, tag=answer.tag,
                          root_cause=mask_text(answer.root_cause)[:MAX_ROOT_CAUSE_CHARS], signals=answer.signals,
                          tag_confidence=clip_unit(answer.tag_confidence), engine=Engine.LLM)

    return await llm.ask_per_voice(
        voices, name="trace", system=llm.system_prompt("tracing", tags=tags),
        task="请为每条客户声音做溯源分析", row=row, model=TraceAnswer, build=build,
        schema=response_schema(Items[TraceAnswer], {"tag": list(tags)}))
