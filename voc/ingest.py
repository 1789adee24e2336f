"""Ingestion: read CSV / JSONL / XLSX, map a bank's columns, mask personal data, link duplicates.

Every input row ends in exactly one bucket: stored, duplicate (linked to its original, or already
in the store) or rejected (written to a rejects file with file, row number, reason and the masked
raw row). A bad row never costs its file: the rejects file is written as rows are rejected, a
batch the database refuses is retried row by row, and anything unexpected rejects that one row.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import insert, select
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from voc.config import Settings
from voc.ingest_readers import IngestError, ReadNotes, RowError, decode_bytes, read_rows
from voc.ingest_rows import (
    ColumnMap,
    RowNotes,
    key_of_normalized,
    normalize_text,
    parse_datetime,
    text_key,
    to_voice,
)
from voc.models import LOCAL_TZ, Voice, funnel_tier
from voc.periods import week_label
from voc.pii import mask_text
from voc.pii_metadata import mask_value
from voc.storage import Store, VoiceRow

__all__ = ["ColumnMap", "FileReport", "IngestError", "Ingestor", "RowError", "decode_bytes", "parse_datetime",
           "text_key", "to_voice"]
log = logging.getLogger(__name__)


def bigram_similarity(a: str, b: str) -> float:
    grams_a = {a[i : i + 2] for i in range(len(a) - 1)} or {a}
    grams_b = {b[i : i + 2] for i in range(len(b) - 1)} or {b}
    return len(grams_a & grams_b) / len(grams_a | grams_b)


# ---------------------------------------------------------------- the ingestion run

@dataclass
class FileReport:
    path: str
    rows: int = 0
    stored: int = 0
    duplicate: int = 0
    linked: int = 0
    already_stored: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # the file could not be read (or stopped being readable) at all

    @property
    def balanced(self) -> bool:
        return self.stored + self.duplicate + self.rejected == self.rows


@dataclass
class _Candidate:
    id: str
    customer_id: str | None
    channel: str
    created_at: datetime
    norm: str
    key: str
    root: str


@dataclass
class _CandidateIndex:
    """Earlier voices a new one may repeat, indexed by customer and by exact text."""

    by_customer: dict[str, list[_Candidate]] = field(default_factory=dict)
    by_key: dict[str, list[_Candidate]] = field(default_factory=dict)

    def add(self, candidate: _Candidate) -> None:
        if candidate.customer_id:
            self.by_customer.setdefault(candidate.customer_id, []).append(candidate)
        else:
            self.by_key.setdefault(candidate.key, []).append(candidate)

    def original_of(self, voice: Voice, norm: str, key: str, window: timedelta, similarity: float) -> str | None:
        if voice.customer_id:
            for other in self.by_customer.get(voice.customer_id, []):
                if abs(other.created_at - voice.created_at) <= window and (
                    other.key == key or bigram_similarity(norm, other.norm) >= similarity
                ):
                    return other.root
            return None
        # Without a customer, only a true copy of the record counts: many different people
        # type the same short question into the robot.
        for other in self.by_key.get(key, []):
            if other.channel == voice.channel.value and other.created_at == voice.created_at:
                return other.root
        return None


class _Rejects:
    """The rejects file of one input, written as rows are rejected (a crash keeps what came before)."""

    def __init__(self, settings: Settings, path: Path) -> None:
        self.settings, self.path = settings, path
        self.handle: IO[str] | None = None
        self.target: Path | None = None

    def write(self, number: int, reason: str, raw: Any) -> None:
        if self.handle is None:
            self.settings.rejects_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%dT%H%M%S%f")
            # The file name is the export's own: it may hold a name or a number (张三_139….csv).
            self.target = self.settings.rejects_dir / f"{stamp}-{_safe_name(self.path.stem)}.jsonl"
            self.handle = self.target.open("w", encoding="utf-8")
        item = {"file": mask_text(str(self.path)), "row": number, "reason": reason, "raw": mask_value(raw)}
        self.handle.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        self.handle.flush()

    def close(self) -> str | None:
        if self.handle is not None:
            self.handle.close()
        return str(self.target) if self.target else None


def _safe_name(stem: str) -> str:
    return re.sub(r"[^\w.-]+", "_", mask_text(stem))[:80]


@dataclass
class _Pending:
    number: int
    voice: Voice
    raw: Any


class Ingestor:
    """Ingests files into one store with the settings' masking and duplicate rules."""

    def __init__(self, store: Store, settings: Settings, column_map: ColumnMap | None = None) -> None:
        self.store = store
        self.settings = settings
        self.column_map = column_map or ColumnMap.load(settings.column_map)
        settings.pseudonym_key()  # a missing or broken key stops here, not once per row
        self.window = timedelta(hours=settings.duplicate_window_hours)

    def ingest_file(self, path: Path, progress: Callable[[int], None] | None = None) -> FileReport:
        """Ingest one file. Raises IngestError only when nothing of it can be read (missing,
        unsupported type, binary); a file that breaks part-way keeps what was ingested, reports
        the rest as rejected or in `error`, and never raises."""
        report = FileReport(path=str(path))
        rejects = _Rejects(self.settings, path)
        notes = ReadNotes()
        batch: list[_Pending] = []
        rows = read_rows(path, notes)
        try:
            for number, row in rows:
                report.rows += 1
                self._accept(number, row, report, rejects, batch)
                if len(batch) >= self.settings.ingest_batch_size:
                    self._flush(batch, path, report, rejects, progress)
            self._flush(batch, path, report, rejects, progress)
        except IngestError:
            if report.rows == 0:
                rejects.close()
                raise
            report.error = "文件读到一半无法继续读取"
        except (OSError, ValueError, UnicodeError) as exc:
            log.exception("reading %s stopped", path)
            self._flush(batch, path, report, rejects, progress)
            report.error = f"第 {report.rows} 行之后无法继续读取：{type(exc).__name__}"
        finally:
            report.rejects_path = rejects.close()
        for warning in notes.warnings:
            report.warnings[warning] = report.warnings.get(warning, 0) + 1
        return report

    def _accept(self, number: int, row: dict[str, Any] | RowError, report: FileReport, rejects: _Rejects,
                batch: list[_Pending]) -> None:
        try:
            if isinstance(row, RowError):
                raise row
            row_notes = RowNotes()
            voice = to_voice(self.column_map.apply(row), self.settings, self.column_map, row_notes)
            batch.append(_Pending(number, voice, row))
            for warning in row_notes.warnings:
                key = warning.split("“")[0]
                report.warnings[key] = report.warnings.get(key, 0) + 1
        except RowError as exc:
            self._reject(report, rejects, number, str(exc), row if isinstance(row, dict) else exc.raw)
        except Exception as exc:  # one row must never cost its file
            log.exception("row %s of %s", number, report.path)
            self._reject(report, rejects, number, f"无法处理该行（{type(exc).__name__}）", row)

    def _reject(self, report: FileReport, rejects: _Rejects, number: int, reason: str, raw: Any) -> None:
        reason = mask_text(reason)  # a reason may quote the row (a shifted column can hold a phone number)
        report.rejected += 1
        kind = reason.split("：")[0].split(":")[0][:40]
        report.reasons[kind] = report.reasons.get(kind, 0) + 1
        rejects.write(number, reason, raw)

    def _flush(self, batch: list[_Pending], path: Path, report: FileReport, rejects: _Rejects,
               progress: Callable[[int], None] | None) -> None:
        if not batch:
            return
        try:
            self._write_batch(batch, path, report, rejects)
        except (OperationalError, InterfaceError):
            raise  # the store itself (read-only, full, unreachable): no row is to blame
        except SQLAlchemyError:
            log.warning("a batch of %s was refused by the database; retrying row by row", path, exc_info=True)
            for pending in batch:
                self._write_one(pending, path, report, rejects)
        if progress:
            progress(len(batch))
        batch.clear()

    def _write_one(self, pending: _Pending, path: Path, report: FileReport, rejects: _Rejects) -> None:
        try:
            self._write_batch([pending], path, report, rejects)  # counts only once committed
        except (OperationalError, InterfaceError):
            raise
        except SQLAlchemyError as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            self._reject(report, rejects, pending.number, f"数据库拒绝写入该行（{cause}）", pending.raw)

    def _write_batch(self, batch: list[_Pending], path: Path, report: FileReport, rejects: _Rejects) -> None:
        voices = [p.voice for p in batch]
        norms = [normalize_text(v.text) for v in voices]  # once per row: keys and similarity use it
        keys = [key_of_normalized(n) for n in norms]
        existing = self._existing(voices)
        candidates = self._candidates(voices, keys)
        rows: list[dict[str, Any]] = []
        seen_ids: dict[str, str] = {}
        now = datetime.now(UTC)
        counts = {"stored": 0, "linked": 0, "already": 0}
        conflicts: list[_Pending] = []
        for pending, norm, key in zip(batch, norms, keys, strict=True):
            voice = pending.voice
            known_key = existing.get(voice.id) or seen_ids.get(voice.id)
            if known_key is not None:
                if known_key == key:
                    counts["already"] += 1
                else:
                    conflicts.append(pending)
                continue
            original = candidates.original_of(voice, norm, key, self.window,
                                              self.settings.near_duplicate_similarity)
            rows.append(self._row(voice, key, original, path, pending.number, now))
            seen_ids[voice.id] = key
            candidates.add(_Candidate(voice.id, voice.customer_id, voice.channel.value, voice.created_at,
                                      norm, key, original or voice.id))
            counts["linked" if original else "stored"] += 1
        if rows:
            with self.store.session() as session:
                # render_nulls keeps one statement per batch: without it SQLAlchemy splits the batch
                # wherever an optional column switches between NULL and a value.
                session.execute(insert(VoiceRow).execution_options(render_nulls=True), rows)
        # Counted only once the batch is committed: a refused batch is retried row by row.
        report.stored += counts["stored"]
        report.linked += counts["linked"]
        report.already_stored += counts["already"]
        report.duplicate += counts["linked"] + counts["already"]
        for pending in conflicts:
            self._reject(report, rejects, pending.number,
                         f"编号冲突：{pending.voice.id} 已被另一条内容不同的声音使用", pending.raw)

    def _row(self, voice: Voice, key: str, original: str | None, path: Path, number: int,
             now: datetime) -> dict[str, Any]:
        local_day = voice.local_time.date()
        return {
            "id": voice.id, "created_at": voice.created_at, "local_date": local_day,
            "iso_week": week_label(local_day), "channel": voice.channel.value,
            "funnel_tier": int(funnel_tier(voice.channel)), "source_type": voice.source_type.value,
            "customer_id": voice.customer_id, "customer_segment": voice.customer_segment.value,
            "business": voice.business.value if voice.business else None, "text": voice.text,
            "text_key": key, "meta": voice.metadata, "duplicate_of": original,
            "source_file": mask_text(path.name), "source_row": number, "ingested_at": now,
        }

    def _existing(self, voices: list[Voice]) -> dict[str, str]:
        with self.store.session() as session:
            result = session.execute(select(VoiceRow.id, VoiceRow.text_key)
                                     .where(VoiceRow.id.in_([v.id for v in voices])))
            return {row.id: row.text_key for row in result}

    def _candidates(self, voices: list[Voice], voice_keys: list[str]) -> _CandidateIndex:
        """Stored voices that a voice of this batch could repeat."""
        index = _CandidateIndex()
        customers = {v.customer_id for v in voices if v.customer_id}
        keys = {k for v, k in zip(voices, voice_keys, strict=True) if not v.customer_id}
        start = min(v.created_at for v in voices) - self.window
        end = max(v.created_at for v in voices) + self.window
        columns = (VoiceRow.id, VoiceRow.customer_id, VoiceRow.channel, VoiceRow.created_at,
                   VoiceRow.text, VoiceRow.text_key, VoiceRow.duplicate_of)
        found: list[Any] = []
        with self.store.session() as session:
            if customers:
                found += session.execute(select(*columns).where(
                    VoiceRow.customer_id.in_(customers), VoiceRow.created_at.between(start, end))).all()
            if keys:
                found += session.execute(select(*columns).where(
                    VoiceRow.text_key.in_(keys), VoiceRow.customer_id.is_(None))).all()
        for r in found:
            index.add(_Candidate(r.id, r.customer_id, r.channel, r.created_at, normalize_text(r.text),
                                 r.text_key, r.duplicate_of or r.id))
        return index
