"""Queries over stored voices: the domain logic behind the tickets MCP server."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, computed_field
from sqlalchemy import Boolean, ColumnElement, Select, String, and_, bindparam, func, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from voc.contracts import (
    VOICES_FILE,
    Dimension,
    Priority,
    Sentiment,
    VoiceResult,
    latest_run_dir,
    read_clusters,
    read_voices,
)
from voc.errors import Invalid
from voc.models import Business, Channel, FunnelTier, Segment, SourceType, Voice
from voc.periods import Period
from voc.storage import Store, VoiceRow
from voc.text_search import query_terms

SAMPLE_POOL = 3000


class QueryError(Invalid):
    """A query that cannot be answered as asked; the message is for the person who asked."""


class GroupBy(StrEnum):
    CHANNEL = "channel"
    BUSINESS = "business"
    DAY = "day"
    WEEK = "week"
    SEGMENT = "segment"
    FUNNEL_TIER = "funnel_tier"
    SOURCE_TYPE = "source_type"


_GROUP_COLUMNS = {
    GroupBy.CHANNEL: VoiceRow.channel,
    GroupBy.BUSINESS: VoiceRow.business,
    GroupBy.DAY: VoiceRow.local_date,
    GroupBy.WEEK: VoiceRow.iso_week,
    GroupBy.SEGMENT: VoiceRow.customer_segment,
    GroupBy.FUNNEL_TIER: VoiceRow.funnel_tier,
    GroupBy.SOURCE_TYPE: VoiceRow.source_type,
}


class VoiceFilter(BaseModel):
    """Which voices: a local-date range plus optional attribute filters. Linked duplicates are
    left out unless asked for, so one customer repeating a complaint counts once."""

    date_from: date | None = None
    date_to: date | None = None
    channel: Channel | None = None
    business: Business | None = None
    segment: Segment | None = None
    funnel_tier: FunnelTier | None = None
    source_type: SourceType | None = None
    query: str | None = Field(default=None, max_length=200,
                              description="Words (cut by jieba) that must all appear, in any order.")
    include_duplicates: bool = False
    voice_ids: frozenset[str] | None = Field(default=None, exclude=True,
                                             description="Only these voices (e.g. chosen by a run's labels).")

    @classmethod
    def for_period(cls, period: Period, **filters: Any) -> VoiceFilter:
        return cls(date_from=period.start, date_to=period.end, **filters)

    def apply(self, statement: Select) -> Select:
        conditions = []
        if self.date_from:
            conditions.append(VoiceRow.local_date >= self.date_from)
        if self.date_to:
            conditions.append(VoiceRow.local_date <= self.date_to)
        for column, value in ((VoiceRow.channel, self.channel), (VoiceRow.business, self.business),
                              (VoiceRow.customer_segment, self.segment), (VoiceRow.source_type, self.source_type)):
            if value is not None:
                conditions.append(column == value.value)
        if self.funnel_tier is not None:
            conditions.append(VoiceRow.funnel_tier == int(self.funnel_tier))
        for term in query_terms(self.query or ""):
            conditions.append(VoiceRow.text.icontains(term, autoescape=True))
        if not self.include_duplicates:
            conditions.append(VoiceRow.duplicate_of.is_(None))
        if self.voice_ids is not None:
            conditions.append(AmongIds(VoiceRow.id, self.voice_ids))
        return statement.where(and_(*conditions)) if conditions else statement


class AmongIds(ColumnElement[bool]):
    """`column IN (the ids)` with the ids as one JSON array parameter, so that a run's 100,000
    negative voices filter as cheaply as ten, within SQLite's and PostgreSQL's parameter limits."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, column: Any, ids: frozenset[str]) -> None:
        self.column = column
        self.ids = bindparam(None, json.dumps(sorted(ids), ensure_ascii=False), type_=String(), unique=True)


@compiles(AmongIds)
def _among_ids(element: AmongIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(AmongIds, "postgresql")
def _among_ids_postgresql(element: AmongIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT json_array_elements_text(CAST({ids} AS json)))"


class LabelFilter(BaseModel):
    """Which voices by the labels of the period's latest weekly run (voices.jsonl, clusters.json)."""

    sentiment: Sentiment | None = None
    owner_department: str | None = None
    dimension: Dimension | None = None
    tag: str | None = Field(default=None, description="A taxonomy path; an L1 or L1>L2 prefix takes all below.")
    cluster_id: str | None = None
    priority: Priority | None = None

    def active(self) -> bool:
        return any(value is not None for value in self.model_dump().values())

    def admits(self, labels: VoiceResult, priority: Priority | None) -> bool:
        tag = labels.tag
        return ((self.sentiment is None or labels.sentiment is self.sentiment)
                and (self.owner_department is None or labels.owner_department == self.owner_department)
                and (self.dimension is None or labels.dimension is self.dimension)
                and (self.tag is None or tag == self.tag or tag.startswith(self.tag.rstrip(">") + ">"))
                and (self.cluster_id is None or labels.cluster_id == self.cluster_id)
                and (self.priority is None or priority is self.priority))


class LabelledVoices(BaseModel):
    run_id: str
    voice_ids: frozenset[str]


def labelled_voices(runs_dir: Path, period: Period, labels: LabelFilter) -> LabelledVoices:
    """The ids of the period's voices that carry these labels in its latest complete run."""
    run_dir = latest_run_dir(runs_dir, period.label, None)
    if run_dir is None:
        raise QueryError(f"{period.label} has no weekly run yet, and sentiment, owner, dimension, tag, cluster "
                         f"and priority come from one (run `voc run --week …` first); "
                         f"本期尚无周度运行结果，无法按标签筛选")
    voices, priorities = _run_labels(run_dir, (run_dir / VOICES_FILE).stat().st_mtime_ns)
    chosen = frozenset(v.id for v in voices if labels.admits(v, priorities.get(v.cluster_id or "")))
    return LabelledVoices(run_id=run_dir.name, voice_ids=chosen)


@lru_cache(maxsize=8)
def _run_labels(run_dir: Path, _mtime: int) -> tuple[list[VoiceResult], dict[str, Priority]]:
    """A run's voice labels and cluster priorities, read once per run (the mtime keys the cache)."""
    return read_voices(run_dir), {c.cluster_id: c.priority for c in read_clusters(run_dir)}


class VoiceRecord(Voice):
    duplicate_of: str | None = None


class VoicePage(BaseModel):
    total: int = Field(description="Voices matching the filters, over all pages.")
    offset: int
    limit: int
    items: list[VoiceRecord]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to read the next page; null on "
                                    "the last page.")
    run_id: str | None = Field(default=None, description="The weekly run whose labels filtered the voices.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def next_offset(self) -> int | None:
        """The offset of the next page when paging by offset, or null on the last page."""
        return self.offset + self.limit if self.offset + self.limit < self.total else None


class CountRow(BaseModel):
    key: str
    count: int
    customers: int = Field(description="Distinct (pseudonymous) customers.")


class Counts(BaseModel):
    group_by: GroupBy
    total: int
    rows: list[CountRow]
    run_id: str | None = Field(default=None, description="The weekly run whose labels filtered the voices.")


class ComparisonRow(BaseModel):
    key: str
    current: int
    previous: int
    change: int
    growth: float | None = Field(description="current/previous − 1; null when previous is 0.")
    z: float = Field(description="Poisson rate-difference z score; |z| ≥ 1.96 is significant at 5%.")
    significant: bool


class Comparison(BaseModel):
    group_by: GroupBy
    current_period: Period
    previous_period: Period
    current_total: int
    previous_total: int
    rows: list[ComparisonRow]


def _record(row: VoiceRow) -> VoiceRecord:
    voice = row.to_voice()
    return VoiceRecord(**voice.model_dump(exclude={"funnel_tier", "metadata"}), metadata=flat_metadata(voice.metadata),
                       duplicate_of=row.duplicate_of)


def flat_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata one level deep: voices stored before ingestion mapped a `metadata` column onto the
    metadata hold it nested (`metadata.metadata`); its fields are lifted, the voice's own win, and a
    value that is not an object is kept as 附加字段."""
    nested = metadata.get("metadata")
    if nested is None:
        return metadata
    flat = {k: v for k, v in metadata.items() if k != "metadata"}
    if isinstance(nested, dict):
        return flat_metadata(nested) | flat
    flat.setdefault("附加字段", nested)
    return flat


PAGE_ORDER = (VoiceRow.local_date, VoiceRow.created_at, VoiceRow.id)


def search_voices(store: Store, where: VoiceFilter, offset: int = 0, limit: int = 50,
                  after: str | None = None) -> VoicePage:
    """A page of voices in time order. `after` (a page's next_cursor) continues where that page ended
    without rescanning the rows before it, which offset paging does on every page."""
    statement = where.apply(select(VoiceRow)).order_by(*PAGE_ORDER)
    if after is not None:
        statement = statement.where(tuple_(*PAGE_ORDER) > decode_cursor(after))
    with store.session() as session:
        total = session.scalar(where.apply(select(func.count()).select_from(VoiceRow))) or 0
        rows = session.scalars(statement.offset(offset).limit(limit)).all()
    cursor = encode_cursor(rows[-1]) if len(rows) == limit else None
    return VoicePage(total=total, offset=offset, limit=limit, items=[_record(r) for r in rows], next_cursor=cursor)


def encode_cursor(row: VoiceRow) -> str:
    return f"{row.local_date.isoformat()}|{row.created_at.astimezone(UTC).isoformat()}|{row.id}"


def decode_cursor(cursor: str) -> tuple[date, datetime, str]:
    try:
        day, moment, voice_id = cursor.split("|", 2)
        return date.fromisoformat(day), datetime.fromisoformat(moment), voice_id
    except ValueError as error:
        raise QueryError(f"not a page cursor: {cursor[:80]!r} (pass a page's next_cursor unchanged)") from error


def get_voice(store: Store, voice_id: str) -> VoiceRecord | None:
    with store.session() as session:
        row = session.get(VoiceRow, voice_id)
        return _record(row) if row else None


def count_voices(store: Store, group_by: GroupBy, where: VoiceFilter) -> Counts:
    column = _GROUP_COLUMNS[group_by]
    statement = where.apply(select(column, func.count(), func.count(func.distinct(VoiceRow.customer_id)))
                            .select_from(VoiceRow)).group_by(column).order_by(column)
    with store.session() as session:
        result = session.execute(statement).all()
    rows = [CountRow(key=_key(value), count=count, customers=customers) for value, count, customers in result]
    rows.sort(key=lambda r: (-r.count, r.key) if group_by not in (GroupBy.DAY, GroupBy.WEEK) else (r.key,))
    return Counts(group_by=group_by, total=sum(r.count for r in rows), rows=rows)


def _key(value: object) -> str:
    if value is None:
        return "未填写"
    return value.isoformat() if isinstance(value, date) else str(value)


def poisson_z(current: int, previous: int) -> float:
    """z of the difference of two Poisson counts over equal exposure."""
    return 0.0 if current + previous == 0 else (current - previous) / math.sqrt(current + previous)


def compare_periods(store: Store, group_by: GroupBy, current: Period, previous: Period | None = None,
                    where: VoiceFilter | None = None) -> Comparison:
    previous = previous or current.previous()
    base = where or VoiceFilter()
    now = count_voices(store, group_by, base.model_copy(update={"date_from": current.start, "date_to": current.end}))
    before = count_voices(store, group_by,
                          base.model_copy(update={"date_from": previous.start, "date_to": previous.end}))
    # Scale the previous count when the two periods differ in length.
    scale = current.days / previous.days
    old = {r.key: r.count for r in before.rows}
    new = {r.key: r.count for r in now.rows}
    rows = []
    for key in sorted(set(old) | set(new)):
        cur, prev = new.get(key, 0), old.get(key, 0)
        z = poisson_z(cur, round(prev * scale))
        rows.append(ComparisonRow(key=key, current=cur, previous=prev, change=cur - prev,
                                  growth=round(cur / (prev * scale) - 1, 4) if prev else None,
                                  z=round(z, 3), significant=abs(z) >= 1.96))
    rows.sort(key=lambda r: (-r.z, r.key))
    return Comparison(group_by=group_by, current_period=current, previous_period=previous,
                      current_total=now.total, previous_total=before.total, rows=rows)


def sample_voices(store: Store, where: VoiceFilter, n: int = 5) -> list[VoiceRecord]:
    """Representative voices: close to the centre of the selection yet different from each other
    (maximal marginal relevance over character n-gram TF-IDF). Deterministic for the same data."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    with store.session() as session:
        rows = session.scalars(where.apply(select(VoiceRow)).order_by(VoiceRow.id).limit(SAMPLE_POOL)).all()
        records = [_record(r) for r in rows]
    if len(records) <= n:
        return records
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), min_df=1).fit_transform(
        [r.text for r in records])
    centre = np.asarray(matrix.mean(axis=0)).ravel()
    relevance = matrix @ centre / (np.linalg.norm(centre) or 1.0)
    chosen: list[int] = []
    while len(chosen) < n:
        redundancy = (matrix @ matrix[chosen].T).max(axis=1).toarray().ravel() if chosen else 0
        score = 0.7 * relevance - 0.3 * redundancy
        if chosen:
            score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return [records[i] for i in chosen]
