"""归因 Attribution: the responsible owner department of each voice, from the service matrix."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from agents.context import RunContext, chunks, context_of, llm_stats, tools_for
from agents.schemas import OwnerScore, VoiceAttribution, VoiceInput
from agents.state import RunState
from agents.toolbox import Toolbox

# When no matrix entry has any evidence, the voice goes to the centre that receives every voice,
# flagged for review: an owner outside the matrix is impossible by construction.
INTAKE_OWNER = "远程银行中心"


def offline_attribution(voice: VoiceInput, candidates: list[dict[str, Any]], departments: list[str],
                        review_threshold: float) -> VoiceAttribution:
    valid = [c for c in candidates if c["owner"] in departments]
    if not valid:
        owner = INTAKE_OWNER if INTAKE_OWNER in departments else departments[0]
        return VoiceAttribution(voice_id=voice.id, owner_department=owner, owner_confidence=0.0, needs_review=True,
                                reason="服务矩阵无匹配场景，转客服中心初筛")
    top = valid[0]
    return VoiceAttribution(
        voice_id=voice.id, owner_department=top["owner"], owner_confidence=round(float(top["confidence"]), 4),
        needs_review=float(top["confidence"]) < review_threshold,
        candidates=[OwnerScore(owner=c["owner"], score=c["score"]) for c in valid],
        reason="；".join(top["reasons"])[:200])


async def candidate_lists(toolbox: Toolbox, voices: list[VoiceInput], batch_size: int,
                          report: Any = None) -> list[list[dict[str, Any]]]:
    results: list[list[dict[str, Any]]] = []
    for batch in chunks(voices, batch_size):
        queries = [{"text": v.text, "channel": v.channel, "business": v.business} for v in batch]
        answer = await toolbox.call("knowledge", "candidate_owners_batch", queries=queries, top_k=3)
        results += answer["results"]
        if report:
            report(len(batch))
    return results


async def attribute(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    context = context_of(runtime)
    started = time.perf_counter()
    voices = [VoiceInput.model_validate(v) for v in state.get("voices", [])]
    context.report("归因", 0, len(voices))
    async with tools_for(context) as toolbox:
        matrix = await toolbox.call("knowledge", "get_service_matrix")
        departments = [d["name"] for d in matrix["departments"]]
        candidates = await candidate_lists(toolbox, voices, context.config.batch_size,
                                           lambda n: context.report("归因", n))
    results = [offline_attribution(v, c, departments, context.settings.review_threshold)
               for v, c in zip(voices, candidates, strict=True)]
    if context.llm is not None:
        results = _refine_with_llm(context, voices, results, departments)
    return {"attributions": [r.model_dump(mode="json") for r in results],
            "timings": {"attribution": round(time.perf_counter() - started, 3)}, "llm": llm_stats(context)}


def _refine_with_llm(context: RunContext, voices: list[VoiceInput], offline: list[VoiceAttribution],
                     departments: list[str]) -> list[VoiceAttribution]:
    assert context.llm is not None
    hints = {a.voice_id: a.candidates for a in offline}
    answers = context.llm.attribute(voices, hints, departments)
    return [answer if answer is not None and answer.owner_department in departments
            else fallback.model_copy(update={"engine": "fallback"})
            for answer, fallback in zip(answers, offline, strict=True)]
