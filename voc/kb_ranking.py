"""How the knowledge base ranks owners and tags for a voice: the rule scores' shapes and the
learned layer's ranking with the rules' evidence attached."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from voc.kb_models import MatrixEntry, Taxonomy
from voc.learning.layer import Judgement
from voc.models import Business, Channel

TAG_KEYWORD_WEIGHT = 0.2


class OwnerCandidate(BaseModel):
    owner: str
    score: float
    confidence: float = Field(ge=0, le=1)
    calibrated: bool = Field(default=False, description="confidence is the learned layer's calibrated "
                             "probability that this owner is right (the first candidate only)")
    role: str
    matched_entries: list[str]
    reasons: list[str]


class OwnerQuery(BaseModel):
    text: str = Field(min_length=1, max_length=5000)
    channel: Channel | None = None
    business: Business | None = None


class TagSuggestion(BaseModel):
    tag: str
    dimension: str
    score: float
    keyword_hits: list[str]
    neighbour_similarity: float
    confidence: float | None = Field(default=None, description="The learned layer's calibrated probability "
                                     "that this tag is right (the first suggestion only).")


def relative_top(row: np.ndarray, pool: int) -> dict[int, float]:
    """Scale the best `pool` similarities to 0..1 within the pool: e5 similarities sit in a narrow
    band, so only the position relative to the best and worst neighbour carries information."""
    if row.size == 0:
        return {}
    top = np.argsort(-row, kind="stable")[:pool]
    high, low = float(row[top[0]]), float(row[top[-1]])
    span = high - low
    return {int(i): 1.0 if span == 0 else (float(row[i]) - low) / span for i in top}


def learned_owners(judgement: Judgement,
                    scored: list[tuple[MatrixEntry, float, list[str]]]) -> list[OwnerCandidate]:
    """The learned ranking, each owner shown with its best matrix entry and that entry's evidence."""
    assert judgement.owner is not None
    candidates = []
    for rank, (owner, probability) in enumerate(judgement.owner.ranked):
        own = sorted((s for s in scored if s[0].owner == owner), key=lambda s: (-s[1], s[0].id))
        entry, _, reasons = own[0]
        candidates.append(OwnerCandidate(
            owner=owner, score=probability, confidence=judgement.owner.confidence if rank == 0 else probability,
            calibrated=rank == 0, role=entry.role, matched_entries=[e.id for e, _, _ in own[:3]],
            reasons=[*reasons, f"学习模型判定概率{probability:.0%}"]))
    return candidates


def learned_tags(judgement: Judgement, rules: list[TagSuggestion], taxonomy: Taxonomy) -> list[TagSuggestion]:
    assert judgement.tag is not None
    evidence = {s.tag: s for s in rules}
    dimension = {t.path: t.dimension for t in taxonomy.tags}
    return [TagSuggestion(tag=tag, dimension=dimension[tag], score=probability,
                          keyword_hits=evidence[tag].keyword_hits if tag in evidence else [],
                          neighbour_similarity=evidence[tag].neighbour_similarity if tag in evidence else 0.0,
                          confidence=judgement.tag.confidence if rank == 0 else None)
            for rank, (tag, probability) in enumerate(judgement.tag.ranked)]


def with_review(item: tuple[MatrixEntry, float, list[str]], owner: str,
                 hint: tuple[str, float, str]) -> tuple[MatrixEntry, float, list[str]]:
    entry, score, reasons = item
    if owner != hint[0]:
        return item
    return entry, score + hint[1], [*reasons, f"与人工复核样本{hint[2]}相近"]


def keyword_weight(keyword: str) -> float:
    # Longer keywords are more specific: "验证码收不到" says more than "卡".
    return TAG_KEYWORD_WEIGHT * (1.5 if len(keyword) >= 4 else 1.0 if len(keyword) >= 2 else 0.5)


def rank_owners(scored: list[tuple[MatrixEntry, float, list[str]]], top_k: int) -> list[OwnerCandidate]:
    best: dict[str, tuple[MatrixEntry, float, list[str], list[str]]] = {}
    for entry, score, reasons in sorted(scored, key=lambda s: (-s[1], s[0].id)):
        if score <= 0:
            continue
        if entry.owner not in best:
            best[entry.owner] = (entry, score, list(reasons), [entry.id])
        elif len(best[entry.owner][3]) < 3:
            best[entry.owner][3].append(entry.id)
    ranked = sorted(best.values(), key=lambda b: (-b[1], b[0].owner))[:top_k]
    total = sum(score for _, score, _, _ in ranked) or 1.0
    return [OwnerCandidate(owner=entry.owner, score=round(score, 4), confidence=round(score / total, 4),
                           role=entry.role, matched_entries=ids, reasons=reasons)
            for entry, score, reasons, ids in ranked]


def rule_shares(scored: list[tuple[MatrixEntry, float, list[str]]], owners: list[str]) -> np.ndarray:
    """The rules' owner ranking as probabilities: each owner's best entry score (above zero), as a
    share of the owners' total; uniform when no entry has any evidence."""
    best = dict.fromkeys(owners, 0.0)
    for entry, score, _ in scored:
        best[entry.owner] = max(best[entry.owner], score)
    row = np.array([best[o] for o in owners])
    return row / row.sum() if row.sum() > 0 else np.full(len(owners), 1 / len(owners))
