"""The review queue (自动初筛 + 人工复核): analysts correct a voice's owner, dimension, tag or
sentiment. Corrections are stored with who and when, override the engine's labels in later runs
and reports, and serve the offline engine as labelled examples."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from voc.contracts import Dimension, Sentiment, VoiceResult
from voc.errors import Invalid, NotFound
from voc.kb_models import ServiceMatrix, Taxonomy
from voc.pii import mask_text
from voc.storage import CorrectionRow, Store, VoiceRow

FIELDS = ("owner_department", "dimension", "tag", "sentiment")


class ReviewError(Invalid):
    """A correction that cannot be stored; the message says why."""


class UnknownVoice(ReviewError, NotFound):
    """No stored voice has this id."""


QUEUE_LABELS = {"owner_department", "owner_confidence", "dimension", "tag", "sentiment", "intensity", "cluster_id"}


class Correction(BaseModel):
    owner_department: str | None = None
    dimension: Dimension | None = None
    tag: str | None = Field(default=None, description="L1>L2>L3 from the taxonomy.")
    sentiment: Sentiment | None = None

    @model_validator(mode="after")
    def _something(self) -> Correction:
        if all(getattr(self, f) is None for f in FIELDS):
            raise ValueError("a correction changes at least one of owner_department, dimension, tag, sentiment")
        return self


class Corrected(Correction):
    voice_id: str
    actor: str
    at: datetime


class QueueItem(BaseModel):
    voice_id: str
    text: str
    channel: str
    business: str | None
    labels: dict[str, Any]
    corrected: Corrected | None = None


class QueuePage(BaseModel):
    """One page of the review queue: uncorrected voices first, the least certain owner first."""

    total: int = Field(description="Voices in the queue (needs review, or asked for).")
    pending: int = Field(description="Of these, the ones nobody has corrected yet.")
    items: list[QueueItem]
    next_cursor: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


QueueKey = tuple[int, float, str]  # (corrected, owner confidence, voice id): the queue's order


def _cursor(key: QueueKey) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def teaching_value(results: list[VoiceResult]) -> dict[str, float]:
    """How much an analyst's correction of each voice would teach: the engine's uncertainty about
    it (1 − owner confidence) times how many voices it stands for (its problem's size, or its tag's
    count among unclustered voices, on a log scale). A correction counts at once for the learned
    layer, so an hour of review goes first to the uncertain voices that resemble many others."""
    groups = Counter(_group(r) for r in results)
    return {r.id: round((1.0 - r.owner_confidence) * math.log1p(groups[_group(r)]), 6) for r in results}


def _group(result: VoiceResult) -> str:
    return f"cluster:{result.cluster_id}" if result.cluster_id else f"tag:{result.owner_department}|{result.tag}"


def _after(cursor: str) -> QueueKey:
    """The key a cursor holds. It holds the whole key, not a voice id: a voice corrected between two
    pages moves to the end of the queue, and the next page still starts where the last one ended."""
    try:
        corrected, confidence, voice_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(corrected), float(confidence), str(voice_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ReviewError(f"not a cursor of the review queue: {cursor!r}") from exc


class ReviewDesk:
    def __init__(self, store: Store, matrix: ServiceMatrix | None = None, taxonomy: Taxonomy | None = None) -> None:
        """Reading needs only the store; checking a new correction needs the matrix and taxonomy."""
        self.store, self.matrix, self.taxonomy = store, matrix, taxonomy

    def correct(self, voice_id: str, correction: Correction, actor: str, note: str = "",
                at: datetime | None = None) -> Corrected:
        fixed = self._checked(correction)
        if not actor.strip():
            raise ReviewError("who made the correction is required")
        with self.store.session() as session:
            if session.get(VoiceRow, voice_id) is None:
                raise UnknownVoice(f"no voice {voice_id!r}")
            session.add(CorrectionRow(voice_id=voice_id, actor=actor, at=at or datetime.now(UTC), note=note,
                                      **fixed.model_dump()))
        return self.latest([voice_id])[voice_id]

    def _checked(self, correction: Correction) -> Correction:
        assert self.matrix is not None and self.taxonomy is not None, "checking needs the matrix and taxonomy"
        departments = self.matrix.department_names()
        if correction.owner_department is not None and correction.owner_department not in departments:
            raise ReviewError(f"{correction.owner_department!r} is not a department of the service matrix")
        if correction.tag is None:
            return correction
        tag = next((t for t in self.taxonomy.tags if t.path == correction.tag), None)
        if tag is None:
            raise ReviewError(f"{correction.tag!r} is not a tag of the taxonomy")
        if correction.dimension not in (None, tag.dimension):
            raise ReviewError(f"tag {tag.path} belongs to dimension {tag.dimension}, not {correction.dimension}")
        return correction.model_copy(update={"dimension": tag.dimension})

    def latest(self, voice_ids: Iterable[str] | None = None) -> dict[str, Corrected]:
        """Each corrected voice's current labels: for every field, its most recent correction."""
        statement = select(CorrectionRow).order_by(CorrectionRow.id)
        if voice_ids is not None:
            statement = statement.where(CorrectionRow.voice_id.in_(list(voice_ids)))
        merged: dict[str, dict[str, Any]] = {}
        with self.store.session() as session:
            for row in session.scalars(statement):
                current = merged.setdefault(row.voice_id, {"voice_id": row.voice_id})
                current |= {f: getattr(row, f) for f in FIELDS if getattr(row, f) is not None}
                current |= {"actor": row.actor, "at": row.at}
        return {i: Corrected.model_validate(v) for i, v in merged.items()}

    def page(self, results: list[VoiceResult], include: Iterable[str] = (), limit: int = 50,
             after: str | None = None) -> QueuePage:
        """One page of the queue, in its order: uncorrected first, then the voices whose correction
        would teach the learned layer most (see `teaching_value`), then id; `after` is the previous
        page's next_cursor. Only the page's texts are read from the store."""
        asked = set(include)
        wanted = [r for r in results if r.needs_review or r.id in asked]
        corrected = self.latest([r.id for r in wanted])
        value = teaching_value(results)
        ordered = sorted((((int(r.id in corrected), -value[r.id], r.id), r) for r in wanted),
                         key=lambda pair: pair[0])
        start = _after(after) if after else None
        rest = [pair for pair in ordered if pair[0] > start] if start else ordered
        chosen = rest[:limit]
        return QueuePage(total=len(wanted), pending=sum(r.id not in corrected for r in wanted),
                         items=self._items([r for _, r in chosen], corrected),
                         next_cursor=_cursor(chosen[-1][0]) if len(rest) > limit else None)

    def _items(self, wanted: list[VoiceResult], corrected: dict[str, Corrected]) -> list[QueueItem]:
        with self.store.session() as session:
            ids = [r.id for r in wanted]
            rows = {v.id: v for v in session.scalars(select(VoiceRow).where(VoiceRow.id.in_(ids)))}
        return [QueueItem(voice_id=r.id, text=mask_text(rows[r.id].text), channel=rows[r.id].channel,
                          business=rows[r.id].business, corrected=corrected.get(r.id),
                          labels=r.model_dump(mode="json", include=QUEUE_LABELS))
                for r in wanted if r.id in rows]

    def examples(self) -> list[tuple[str, Corrected]]:
        """Masked texts of corrected voices with their corrected labels: the offline engine's
        labelled examples."""
        latest = self.latest()
        with self.store.session() as session:
            found = session.execute(select(VoiceRow.id, VoiceRow.text).where(VoiceRow.id.in_(list(latest))))
            texts: dict[str, str] = {i: t for i, t in found}
        return [(mask_text(texts[i]), c) for i, c in sorted(latest.items()) if i in texts]
