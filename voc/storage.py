"""The voice store: SQLAlchemy 2 on SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from voc.models import LOCAL_TZ, Business, Channel, Segment, SourceType, Voice


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and returns them aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)
        utc = aware.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class VoiceRow(Base):
    __tablename__ = "voices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Local (Asia/Shanghai) calendar fields, computed once at ingestion so that period, day and
    # week queries are plain indexed comparisons on every database.
    local_date: Mapped[date] = mapped_column(Date)
    iso_week: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    funnel_tier: Mapped[int] = mapped_column(Integer)
    source_type: Mapped[str] = mapped_column(String(8))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    customer_segment: Mapped[str] = mapped_column(String(8))
    business: Mapped[str | None] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    text_key: Mapped[str] = mapped_column(String(32), doc="Hash of the normalised text, for duplicates.")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    duplicate_of: Mapped[str | None] = mapped_column(ForeignKey("voices.id"))
    source_file: Mapped[str | None] = mapped_column(String(512))
    source_row: Mapped[int | None] = mapped_column(Integer)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Serves period filters and keyset paging in (date, time, id) order alike.
        Index("ix_voices_date_time_id", "local_date", "created_at", "id"),
        Index("ix_voices_week", "iso_week"),
        Index("ix_voices_channel_date", "channel", "local_date"),
        Index("ix_voices_business_date", "business", "local_date"),
        Index("ix_voices_segment_date", "customer_segment", "local_date"),
        Index("ix_voices_tier_date", "funnel_tier", "local_date"),
        Index("ix_voices_customer_time", "customer_id", "created_at"),
        Index("ix_voices_text_key", "text_key"),
    )

    def to_voice(self) -> Voice:
        return Voice(
            id=self.id,
            created_at=self.created_at.astimezone(LOCAL_TZ),
            channel=Channel(self.channel),
            source_type=SourceType(self.source_type),
            customer_id=self.customer_id,
            customer_segment=Segment(self.customer_segment),
            business=Business(self.business) if self.business else None,
            text=self.text,
            metadata=dict(self.meta or {}),
        )


class RecordedCase(Base):
    """Cases recorded through the closed loop; the YAML library is the rest of the case store."""

    __tablename__ = "recorded_cases"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProposalRow(Base):
    """A proposal as the closed loop tracks it across weeks (问题—责任—时效—验收)."""

    __tablename__ = "proposals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(8), index=True)
    owner_department: Mapped[str] = mapped_column(String(32), index=True)
    tag: Mapped[str] = mapped_column(String(128))
    priority: Mapped[str] = mapped_column(String(2))
    first_week: Mapped[str] = mapped_column(String(16))
    last_seen_week: Mapped[str] = mapped_column(String(16))
    due_date: Mapped[date] = mapped_column(Date)
    completed_on: Mapped[date | None] = mapped_column(Date)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, doc="The proposal as first written (proposals.json).")
    effect: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="The figures of the last verification.")
    case_id: Mapped[str | None] = mapped_column(String(64))


class ProposalEventRow(Base):
    """One change of a proposal: who, when, what and why."""

    __tablename__ = "proposal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), doc="创建 / 状态变更 / 复发 / 验证 / 沉淀案例")
    from_status: Mapped[str | None] = mapped_column(String(8))
    to_status: Mapped[str | None] = mapped_column(String(8))
    week: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ProblemVolumeRow(Base):
    """Negative voices per week, owner and tag as a run measured them: the series that effect
    evaluation compares before and after a fix."""

    __tablename__ = "problem_volumes"

    week: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner_department: Mapped[str] = mapped_column(String(32), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)
    negatives: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(128))


class ProblemRow(Base):
    """A problem as it is known from week to week (PB-0001…): the weekly runs give a recurring problem
    its id again; an analyst may rename it or merge it into another (voc/problems.py)."""

    __tablename__ = "problems"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner_department: Mapped[str] = mapped_column(String(32), index=True)
    tag: Mapped[str] = mapped_column(String(128), doc="As first seen: with owner and keywords, what a week matches.")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    label: Mapped[str] = mapped_column(String(200), doc="The run's own name for it, as the latest week gave it.")
    analyst_label: Mapped[str | None] = mapped_column(String(200), doc="The analyst's name; shown when set.")
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("problems.id"))
    first_week: Mapped[str] = mapped_column(String(32))
    last_week: Mapped[str] = mapped_column(String(32))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, doc="Renames and merges: who, when.")


class ProblemWeekRow(Base):
    """Which problem each of a week's clusters was, in the run's order: the problem's weekly series,
    and what makes assigning a week again give the same ids."""

    __tablename__ = "problem_weeks"

    week: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id"), index=True)
    created: Mapped[bool] = mapped_column(doc="The problem was new in this week's assignment.")


class CorrectionRow(Base):
    """An analyst's correction of a voice's labels (人工复核); the latest value of each field wins."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    voice_id: Mapped[str] = mapped_column(ForeignKey("voices.id"), index=True)
    owner_department: Mapped[str | None] = mapped_column(String(32))
    dimension: Mapped[str | None] = mapped_column(String(2))
    tag: Mapped[str | None] = mapped_column(String(128))
    sentiment: Mapped[str | None] = mapped_column(String(4))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")


class LabelledHistoryRow(Base):
    """A labelled voice of a bank's own history (`voc learn history.csv`): its masked text and its
    labels mapped onto the service matrix and the taxonomy. Training examples of the learned layer,
    never a voice of a week: runs, reports and the MCP tools do not read this table."""

    __tablename__ = "labelled_history"

    id: Mapped[str] = mapped_column(String(64), primary_key=True,
                                    doc="Hash of the masked text and the labels: importing a file again adds nothing.")
    text: Mapped[str] = mapped_column(Text, doc="Masked (voc.pii.mask_text) before it is stored.")
    channel: Mapped[str | None] = mapped_column(String(16))
    business: Mapped[str | None] = mapped_column(String(8))
    owner: Mapped[str | None] = mapped_column(String(32))
    tag: Mapped[str | None] = mapped_column(String(128))
    sentiment: Mapped[str | None] = mapped_column(String(4))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source_file: Mapped[str] = mapped_column(String(512), doc="The file's name, masked.")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


class Store:
    """Opens sessions on one database; every reader and writer of voices goes through it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def get_voice(self, voice_id: str) -> Voice | None:
        with self.session() as session:
            row = session.get(VoiceRow, voice_id)
            return row.to_voice() if row else None
