"""Review corrections: validated, merged per field, and used by the offline engine as labelled examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import kb_with_voices
from voc.contracts import VoiceResult
from voc.knowledge_base import KnowledgeBase
from voc.reviews import Correction, ReviewDesk, ReviewError

REVIEWED = "信用卡年费被重复扣收了两次，请尽快退回给我"
PARAPHRASE = "信用卡年费又被重复扣了两次，赶紧退回给我"
OTHER = "网点排队两个小时都没办完业务"


@pytest.fixture()
def kb(loaded_kb: KnowledgeBase, tmp_path: Path) -> KnowledgeBase:
    rows: list[dict[str, object]] = [
        {"id": f"r{i}", "created_at": f"2026-11-1{i}T10:00:00", "channel": "电话客服", "business": "信用卡",
         "customer_id": f"c{i}", "text": text} for i, text in enumerate((REVIEWED, PARAPHRASE, OTHER))]
    return KnowledgeBase(kb_with_voices(loaded_kb, tmp_path, rows))


def test_corrections_are_checked_and_merged_per_field(kb: KnowledgeBase) -> None:
    desk = ReviewDesk(kb.store, kb.matrix, kb.taxonomy)
    tag = kb.taxonomy.tags[0]
    with pytest.raises(ReviewError, match="service matrix"):
        desk.correct("r0", Correction(owner_department="市场部"), "李四")
    with pytest.raises(ReviewError, match="not a tag"):
        desk.correct("r0", Correction(tag="无>此>标签"), "李四")
    wrong_dimension = next(d for d in "人机物法环" if d != tag.dimension)
    with pytest.raises(ReviewError, match="belongs to dimension"):
        desk.correct("r0", Correction(tag=tag.path, dimension=wrong_dimension), "李四")  # type: ignore[arg-type]
    with pytest.raises(ReviewError, match="no voice"):
        desk.correct("nope", Correction(sentiment="负面"), "李四")
    with pytest.raises(ValidationError, match="at least one"):
        Correction()
    desk.correct("r0", Correction(tag=tag.path), "李四")
    latest = desk.correct("r0", Correction(sentiment="负面"), "王五")
    assert (latest.tag, latest.dimension, latest.sentiment, latest.actor) == (tag.path, tag.dimension, "负面", "王五")
    results = [VoiceResult.model_validate(
        {"id": voice_id, "needs_review": review, "owner_department": "x", "owner_confidence": confidence,
         "dimension": "人", "tag": "t", "sentiment": "中性", "intensity": 1, "cluster_id": None, "engine": "offline"})
        for voice_id, review, confidence in (("r0", False, 0.9), ("r2", True, 0.3))]
    assert [item.voice_id for item in desk.page(results).items] == ["r2"]


def test_a_corrected_voice_teaches_the_offline_engine(kb: KnowledgeBase) -> None:
    before = kb.candidate_owners(PARAPHRASE)[0].owner
    target = next(d for d in kb.matrix.department_names() if d != before)
    tag = next(t for t in kb.taxonomy.tags if t.path != kb.suggest_tags_many([PARAPHRASE])[0][0].tag)
    ReviewDesk(kb.store, kb.matrix, kb.taxonomy).correct(
        "r0", Correction(owner_department=target, tag=tag.path), "李四")
    learned = KnowledgeBase(kb.settings)  # a new run reads the corrections afresh
    top = learned.candidate_owners(PARAPHRASE)[0]
    assert top.owner == target and any("人工复核样本r0" in r for r in top.reasons)
    assert learned.suggest_tags_many([PARAPHRASE])[0][0].tag == tag.path
    assert learned.candidate_owners(OTHER)[0].owner == kb.candidate_owners(OTHER)[0].owner  # unrelated: unchanged


def test_the_queue_pages_by_cursor_and_a_correction_between_pages_skips_nothing(kb: KnowledgeBase) -> None:
    desk = ReviewDesk(kb.store, kb.matrix, kb.taxonomy)
    results = [VoiceResult.model_validate(
        {"id": f"r{i}", "needs_review": True, "owner_department": "x", "owner_confidence": c, "dimension": "人",
         "tag": "t", "sentiment": "中性", "intensity": 1, "cluster_id": None, "engine": "offline"})
        for i, c in enumerate((0.5, 0.1, 0.3))]
    first = desk.page(results, limit=2)
    assert [i.voice_id for i in first.items] == ["r1", "r2"] and (first.total, first.pending) == (3, 3)
    assert first.next_cursor
    desk.correct("r2", Correction(sentiment="负面"), "李四")  # r2 now sorts last (corrected)
    second = desk.page(results, limit=2, after=first.next_cursor)
    assert [i.voice_id for i in second.items] == ["r0", "r2"] and second.pending == 2
    assert second.items[1].corrected is not None and second.items[1].corrected.actor == "李四"
    assert second.next_cursor is None
    with pytest.raises(ReviewError, match="cursor"):
        desk.page(results, after="bm90IGpzb24")
