"""归因 Attribution: the responsible owner department of each voice, from the service matrix."""

from __future__ import annotations

import logging
import time
from typing import Any

from langgraph.runtime import Runtime

from agents.context import RunContext, context_of, llm_stats, tools_for
from agents.llm_client import Items, LLMClient, VoiceItem, clip_unit, response_schema
from agents.prompts import voice_row
from agents.reviewed import corrected, corrections_for
from agents.schemas import OwnerScore, VoiceAttribution, VoiceInput
from agents.state import RunState
from voc.contracts import Engine
from voc.pii import mask_text

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
    # The learned layer's confidence is a calibrated probability; the rules' is a share of scores.
    confidence = float(top["confidence"]) if top.get("calibrated") else owner_confidence(valid)
    return VoiceAttribution(
        voice_id=voice.id, owner_department=top["owner"], owner_confidence=confidence,
        needs_review=confidence < review_threshold,
        candidates=[OwnerScore(owner=c["owner"], score=c["score"]) for c in valid],
        reason="；".join(top["reasons"])[:200])


def owner_confidence(candidates: list[dict[str, Any]]) -> float:
    """How clearly the best owner beats the runner-up: 1.0 alone, 0.5 on a tie."""
    top = float(candidates[0]["score"])
    second = float(candidates[1]["score"]) if len(candidates) > 1 else 0.0
    return round(top / (top + second), 4) if top + second > 0 else 0.0


async def attribute(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    context = context_of(runtime)
    started = time.perf_counter()
    voices = [VoiceInput.model_validate(v) for v in state.get("voices", [])]
    context.report("归因", 0, len(voices))
    async with tools_for(context) as toolbox:
        matrix = await toolbox.call("knowledge", "get_service_matrix")
        departments = [d["name"] for d in matrix["departments"]]
        candidates = await toolbox.call_batched(
            "knowledge", "candidate_owners_batch", voices, context.config.batch_size,
            lambda batch: {"queries": [{"text": v.text, "channel": v.channel, "business": v.business} for v in batch],
                           "limit": 3},
            lambda n: context.report("归因", n))
        reviewed = await corrections_for(toolbox, [v.id for v in voices])
    results = [offline_attribution(v, c, departments, context.settings.review_threshold)
               for v, c in zip(voices, candidates, strict=True)]
    if context.llm is not None:
        scopes = {d["name"]: d["scope"] for d in matrix["departments"]}
        results = await refine_with_llm(context.llm, voices, results, scopes)
    # An analyst's correction is the answer: it overrides either engine and needs no more review.
    results = [corrected(r, reviewed.get(r.voice_id), {"owner_department": "owner_department"},
                         owner_confidence=1.0, needs_review=False, reason="人工复核") for r in results]
    return {"attributions": [r.model_dump(mode="json") for r in results],
            "timings": {"attribution": round(time.perf_counter() - started, 3)}, "llm": llm_stats(context, state)}


# ------------------------------------------------------------------ the LLM engine's 归因: a cascade

log = logging.getLogger(__name__)
MAX_REASON_CHARS = 200
OWNER_CANDIDATES = 3  # the offline top owners a voice's answer is chosen among


class OwnerAnswer(VoiceItem):
    """What the model writes for one voice; the schema narrows owner_department to the batch's candidates."""

    owner_department: str
    confidence: float
    reason: str = ""


def unsure(attribution: VoiceAttribution) -> bool:
    """Sent to the model: the offline owner needs review and there are candidates to choose among."""
    return attribution.needs_review and bool(attribution.candidates)


async def refine_with_llm(llm: LLMClient, voices: list[VoiceInput], offline: list[VoiceAttribution],
                          scopes: dict[str, str]) -> list[VoiceAttribution]:
    """The cascade: only the voices the offline engine is unsure of go to the model, which picks among
    their offline candidates. Where it gives no valid answer the offline owner stays, flagged fallback;
    every other voice keeps its offline owner (engine offline)."""
    # Voices of the same likely owners side by side: a batch's prompt lists fewer departments.
    sent = sorted((i for i, a in enumerate(offline) if unsure(a)),
                  key=lambda i: [c.owner for c in offline[i].candidates[:OWNER_CANDIDATES]])
    candidates = {offline[i].voice_id: offline[i].candidates[:OWNER_CANDIDATES] for i in sent}
    answers = await llm_attribute(llm, [voices[i] for i in sent], candidates, scopes)
    results = list(offline)
    for i, answer in zip(sent, answers, strict=True):
        results[i] = answer or offline[i].model_copy(update={"engine": Engine.FALLBACK})
    return results


async def llm_attribute(llm: LLMClient, voices: list[VoiceInput], candidates: dict[str, list[OwnerScore]],
                        scopes: dict[str, str]) -> list[VoiceAttribution | None]:
    """The model's owner of each voice, one of its candidates (`scopes`: the matrix's department →
    scope); None where it gave no valid answer."""
    owners = {voice_id: [c.owner for c in scored if c.owner in scopes] for voice_id, scored in candidates.items()}

    def row(voice: VoiceInput) -> dict[str, Any]:
        return voice_row(voice) | {"candidate_owners": [{"owner": c.owner, "score": round(c.score, 2)}
                                                        for c in candidates.get(voice.id, []) if c.owner in scopes]}

    def prompt(batch: list[VoiceInput]) -> tuple[str, dict[str, Any]]:
        allowed = list(dict.fromkeys(o for v in batch for o in owners.get(v.id, [])))
        system = llm.system_prompt("attribution", departments={d: scopes[d] for d in allowed})
        return system, response_schema(Items[OwnerAnswer], {"owner_department": allowed})

    def build(answer: OwnerAnswer) -> VoiceAttribution | None:
        # Enforced here too: json_object mode sends no schema, and a schema is only a request.
        if answer.owner_department not in owners.get(answer.voice_id, []):
            log.warning("voice %s: owner %r is not one of its candidates", answer.voice_id, answer.owner_department)
            return None
        confidence = clip_unit(answer.confidence)
        return VoiceAttribution(voice_id=answer.voice_id, owner_department=answer.owner_department,
                                owner_confidence=confidence, needs_review=confidence < llm.settings.review_threshold,
                                candidates=candidates.get(answer.voice_id, []),
                                reason=mask_text(answer.reason.strip())[:MAX_REASON_CHARS], engine=Engine.LLM)

    return await llm.ask_per_voice(voices, name="attribution", task="请为每条客户声音判定责任属主部门", row=row,
                                   model=OwnerAnswer, build=build, prompt=prompt)
