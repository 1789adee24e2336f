"""溯源 Tracing: sentiment and intensity, root-cause dimension (人机物法环), taxonomy tag, cause phrase."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

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
from voc.lexicon import SentimentResult, analyse, negative_intensity
from voc.pii import mask_text

OFFLINE_SHARE_OF = 3  # the rules' tag confidence: the top tag's share of this many suggestions
TAG_CANDIDATES = 5  # the offline top tags the LLM engine's answer is chosen among
Candidates = dict[str, list[str]]  # voice id → its offline top tags, best first


def offline_trace(voice: VoiceInput, suggestions: list[dict[str, Any]], judged: dict[str, Any] | None = None
                  ) -> VoiceTrace:
    """Tag from the suggestions (the learned layer's when trained); sentiment from the learned layer
    when it has one, the lexicon otherwise. The lexicon always gives the signals and the intensity."""
    feeling = analyse(voice.text, voice.channel)
    sentiment = Sentiment(judged["sentiment"]) if judged and judged.get("sentiment") else feeling.sentiment
    top = suggestions[0]
    total = sum(s["score"] for s in suggestions[:OFFLINE_SHARE_OF]) or 1.0
    leaf = top["tag"].split(">")[-1]
    hits = [h for h in top["keyword_hits"] if h != leaf][:2]
    confidence = top.get("confidence")
    return VoiceTrace(voice_id=voice.id, sentiment=sentiment,
                      intensity=intensity_of(sentiment, feeling, voice), dimension=top["dimension"], tag=top["tag"],
                      root_cause=(f"{leaf}：{'、'.join(hits)}" if hits else leaf)[:80], signals=feeling.signals,
                      tag_confidence=round(confidence if confidence is not None else top["score"] / total, 4))


def intensity_of(sentiment: Sentiment, feeling: SentimentResult, voice: VoiceInput) -> int:
    """The lexicon's intensity where it agrees. Where the learned layer overrules it, a negative
    voice's intensity is read from its cues as the lexicon would for a negative voice (at least 2);
    any other voice's is 1."""
    if sentiment == feeling.sentiment:
        return feeling.intensity
    return negative_intensity(voice.text, feeling) if sentiment == Sentiment.NEGATIVE else 1


REVIEWED_FIELDS = {"dimension": "dimension", "tag": "tag", "sentiment": "sentiment"}


async def trace_offline(toolbox: Toolbox, voices: list[VoiceInput], batch_size: int,
                        report: Callable[[int], None] | None = None) -> tuple[list[VoiceTrace], Candidates]:
    """The offline traces, and each voice's candidate tags for the LLM engine."""
    suggestions = await toolbox.call_batched(
        "knowledge", "suggest_tags_batch", voices, batch_size,
        lambda batch: {"texts": [v.text for v in batch], "limit": TAG_CANDIDATES}, report)
    judged = await toolbox.call_batched(
        "knowledge", "judge_sentiment_batch", voices, batch_size,
        lambda batch: {"queries": [{"text": v.text, "channel": v.channel, "business": v.business} for v in batch]})
    traces = [offline_trace(v, s, j) for v, s, j in zip(voices, suggestions, judged, strict=True)]
    return traces, {v.id: [t["tag"] for t in s[:TAG_CANDIDATES]] for v, s in zip(voices, suggestions, strict=True)}


async def trace(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    context = context_of(runtime)
    started = time.perf_counter()
    voices = [VoiceInput.model_validate(v) for v in state.get("voices", [])]
    previous = [VoiceInput.model_validate(v) for v in state.get("previous_voices", [])]
    context.report("溯源", 0, len(voices) + len(previous))
    async with tools_for(context) as toolbox:
        current, candidates = await trace_offline(toolbox, voices, context.config.batch_size,
                                                  lambda n: context.report("溯源", n))
        # The previous period is always traced offline: spike detection compares like with like.
        before, _ = await trace_offline(toolbox, previous, context.config.batch_size,
                                        lambda n: context.report("溯源", n))
        if context.llm is not None:
            taxonomy = await toolbox.call("knowledge", "get_taxonomy")
            tags = {t["path"]: TagChoice(t["dimension"], t["definition"]) for t in taxonomy["tags"]}
            current = await refine_with_llm(context.llm, voices, current, candidates, tags)
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


class TagChoice(NamedTuple):
    """A taxonomy tag as a candidate in a prompt: its dimension and its one-line definition."""

    dimension: str
    definition: str


async def refine_with_llm(llm: LLMClient, voices: list[VoiceInput], offline: list[VoiceTrace],
                          candidates: Candidates, tags: dict[str, TagChoice]) -> list[VoiceTrace]:
    """The cascade: only the voices whose offline tag is unsure go to the model, which picks among their
    offline candidates. Where it gives no valid answer the offline trace stays, flagged fallback; every
    other voice keeps its offline trace, sentiment included (engine offline)."""
    # Voices of the same likely tags side by side: a batch's prompt lists fewer tags.
    sent = sorted((i for i, t in enumerate(offline) if t.tag_confidence < llm.settings.llm_tag_threshold),
                  key=lambda i: candidates.get(offline[i].voice_id, []))
    answers = await llm_trace(llm, [voices[i] for i in sent], candidates, tags)
    results = list(offline)
    for i, answer in zip(sent, answers, strict=True):
        results[i] = answer or offline[i].model_copy(update={"engine": Engine.FALLBACK})
    return results


async def llm_trace(llm: LLMClient, voices: list[VoiceInput], candidates: Candidates,
                    tags: dict[str, TagChoice]) -> list[VoiceTrace | None]:
    """The model's trace of each voice, its tag one of the voice's candidates (`tags`: the taxonomy's
    path → dimension and definition); None where it gave no valid answer."""
    allowed = {voice_id: [t for t in paths if t in tags] for voice_id, paths in candidates.items()}

    def row(voice: VoiceInput) -> dict[str, Any]:
        return voice_row(voice) | {"candidate_tags": allowed.get(voice.id, [])}

    def prompt(batch: list[VoiceInput]) -> tuple[str, dict[str, Any]]:
        union = list(dict.fromkeys(t for v in batch for t in allowed.get(v.id, [])))
        system = llm.system_prompt("tracing", tags={t: tags[t] for t in union})
        return system, response_schema(Items[TraceAnswer], {"tag": union})

    def build(answer: TraceAnswer) -> VoiceTrace | None:
        if answer.tag not in allowed.get(answer.voice_id, []) or tags[answer.tag].dimension != answer.dimension:
            log.warning("voice %s: tag %r with dimension %r is not one of its candidates", answer.voice_id,
                        answer.tag, answer.dimension)
            return None
        return VoiceTrace(voice_id=answer.voice_id, sentiment=answer.sentiment, intensity=answer.intensity,
                          dimension=answer.dimension, tag=answer.tag,
                          root_cause=mask_text(answer.root_cause)[:MAX_ROOT_CAUSE_CHARS], signals=answer.signals,
                          tag_confidence=clip_unit(answer.tag_confidence), engine=Engine.LLM)

    return await llm.ask_per_voice(voices, name="trace", task="请为每条客户声音做溯源分析", row=row,
                                   model=TraceAnswer, build=build, prompt=prompt)
