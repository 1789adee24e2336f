"""A bank's labelled history (`voc learn history.csv`): read, masked, stored, and given back as
training examples of the learned layer.

The file is read like an export for `voc ingest` (CSV, XLSX, JSONL; the same column map finds the
text, channel, business and time) and its labels through the history mapping. Every row is
accounted for: learned (new, or already stored by an earlier import) or skipped with its reason; a
bad row never costs its file. The text is masked before it is stored, and each row is keyed by a
hash of its masked text and labels, so importing a file again adds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from voc.contracts import Sentiment
from voc.ingest_readers import IngestError, ReadNotes, RowError, read_rows
from voc.ingest_rows import MAX_TEXT_CHARS, ColumnMap, clean_value, normalize_text, parse_datetime
from voc.kb_models import ServiceMatrix, Taxonomy
from voc.learning.examples import WEIGHT_HISTORY, LabelledVoice
from voc.learning.history_mapping import HistoryError, HistoryMapping, Labels, Unmapped, header_key
from voc.models import Business, Channel
from voc.pii import mask_text
from voc.storage import LabelledHistoryRow, Store

HISTORY_SOURCE = "history"
ROWS_SHOWN = 5  # row numbers kept per skip reason, so the bank can find them
_E = TypeVar("_E", bound=Enum)
log = logging.getLogger(__name__)


@dataclass
class HistoryReport:
    path: str
    rows: int = 0
    new: int = 0
    known: int = 0  # already stored: by an earlier import, or an identical earlier row of this file
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_rows: dict[str, list[int]] = field(default_factory=dict)
    unmapped: dict[str, Counter[str]] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=lambda: {"owner": 0, "tag": 0, "sentiment": 0})
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # the file stopped being readable part-way

    @property
    def learned(self) -> int:
        return self.new + self.known

    @property
    def balanced(self) -> bool:
        return self.learned + sum(self.skipped.values()) == self.rows

    def skip(self, number: int, reason: str) -> None:
        kind = mask_text(reason).split("：")[0].split(":")[0][:40]
        self.skipped[kind] = self.skipped.get(kind, 0) + 1
        shown = self.skipped_rows.setdefault(kind, [])
        if len(shown) < ROWS_SHOWN:
            shown.append(number)

    def top_unmapped(self, n: int = 10) -> dict[str, list[tuple[str, int]]]:
        return {column: values.most_common(n) for column, values in self.unmapped.items()}


@dataclass
class _Pending:
    number: int
    labels: Labels
    row: dict[str, Any]


def import_history(store: Store, path: Path, mapping: HistoryMapping, column_map: ColumnMap,
                   batch_size: int = 2000) -> HistoryReport:
    """Store a history file's labelled rows. Raises HistoryError only when nothing of it can be read."""
    report = HistoryReport(path=str(path))
    notes = ReadNotes()
    batch: list[_Pending] = []
    headers: set[str] = set()
    source, now = mask_text(path.name), datetime.now(UTC)
    try:
        for number, row in read_rows(path, notes):
            report.rows += 1
            if isinstance(row, dict):
                headers |= {header_key(h) for h in row}
            pending = _accept(number, row, mapping, column_map, source, now, report)
            if pending is not None:
                batch.append(pending)
            if len(batch) >= batch_size:
                _flush(store, batch, report)
    except IngestError as exc:
        if report.rows == 0:
            raise HistoryError(f"{exc}（请检查文件路径与格式：CSV、XLSX 或 JSONL）") from exc
        report.error = "文件读到一半无法继续读取"
    except (OSError, ValueError, UnicodeError) as exc:
        log.exception("reading %s stopped", path)
        report.error = f"第 {report.rows} 行之后无法继续读取：{type(exc).__name__}"
    _flush(store, batch, report)
    report.warnings = list(notes.warnings)
    report.warnings += [f"文件中没有“{c.column}”列：请检查映射文件的列名" for c in mapping.columns
                        if report.rows and header_key(c.column) not in headers]
    return report


def _accept(number: int, row: dict[str, Any] | RowError, mapping: HistoryMapping, column_map: ColumnMap,
            source: str, now: datetime, report: HistoryReport) -> _Pending | None:
    try:
        if isinstance(row, RowError):
            raise row
        fields = _voice_fields(column_map.apply(row), column_map)
        labels = mapping.labels(row)
        if not labels.any():
            raise RowError("没有标签：该行的标签列都为空，或取值映射为不学习（~）")
        fields |= {"owner": labels.owner, "tag": labels.tag, "sentiment": labels.sentiment,
                   "id": history_key(fields["text"], labels), "source_file": source, "imported_at": now}
        return _Pending(number, labels, fields)
    except Unmapped as exc:
        report.skip(number, str(exc))
        report.unmapped.setdefault(exc.column, Counter())[mask_text(exc.value)] += 1
    except RowError as exc:
        report.skip(number, str(exc))
    except Exception as exc:  # one row must never cost its file
        log.exception("history row %s of %s", number, report.path)
        report.skip(number, f"无法处理该行（{type(exc).__name__}）")
    return None


def _voice_fields(mapped: dict[str, Any], column_map: ColumnMap) -> dict[str, Any]:
    """Masked text, channel, business and time of a row, found as `voc ingest` finds them. Only the
    text is required: an unknown channel or business, or a broken date, is left out, not guessed."""
    text = str(clean_value(mapped.get("text")) or "").strip()
    if not text:
        raise RowError("缺少文本：客户诉求（text）列为空或不存在")
    if len(text) > MAX_TEXT_CHARS:
        raise RowError(f"文本过长：{len(text)} 字，上限 {MAX_TEXT_CHARS} 字")
    found: dict[str, Any] = {"text": mask_text(text), "created_at": None}
    for name in ("channel", "business"):
        value = mapped.get(name)
        controlled, known = column_map.controlled(name, value) if value not in (None, "") else ("", False)
        found[name] = controlled if known else None
    if mapped.get("created_at") not in (None, ""):
        with contextlib.suppress(RowError):  # a broken date is left out: the labels still count
            found["created_at"] = parse_datetime(clean_value(mapped["created_at"]))
    return found


def history_key(masked_text: str, labels: Labels) -> str:
    key = [normalize_text(masked_text), labels.owner, labels.tag, labels.sentiment]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()[:32]


def _flush(store: Store, batch: list[_Pending], report: HistoryReport) -> None:
    if not batch:
        return
    try:
        _write(store, batch, report)
    except (OperationalError, InterfaceError):
        raise  # the store itself (read-only, full, unreachable): no row is to blame
    except SQLAlchemyError:
        log.warning("a history batch was refused by the database; retrying row by row", exc_info=True)
        for pending in batch:
            try:
                _write(store, [pending], report)
            except (OperationalError, InterfaceError):
                raise
            except SQLAlchemyError as exc:
                report.skip(pending.number, f"数据库拒绝写入该行（{type(getattr(exc, 'orig', None) or exc).__name__}）")
    batch.clear()


def _write(store: Store, batch: list[_Pending], report: HistoryReport) -> None:
    unique = {p.row["id"]: p for p in batch}
    with store.session() as session:
        existing = set(session.scalars(select(LabelledHistoryRow.id).where(LabelledHistoryRow.id.in_(list(unique)))))
        new = [p.row for key, p in unique.items() if key not in existing]
        if new:
            session.execute(insert(LabelledHistoryRow).execution_options(render_nulls=True), new)
    # Counted once committed: a refused batch is retried row by row.
    report.new += len(new)
    report.known += len(batch) - len(new)
    for pending in batch:
        for name in report.labels:
            report.labels[name] += getattr(pending.labels, name) is not None


def history_examples(store: Store, taxonomy: Taxonomy, matrix: ServiceMatrix) -> list[LabelledVoice]:
    """The stored history as training examples, labels read against today's taxonomy and matrix: a
    renamed tag follows its rename, a department or tag that no longer exists is an unknown label."""
    current = {path: tag.path for tag in taxonomy.tags for path in (tag.path, *tag.aliases)}
    owners = set(matrix.department_names())
    with store.session() as session:
        rows = session.scalars(select(LabelledHistoryRow).order_by(LabelledHistoryRow.id)).all()
    voices = []
    for row in rows:
        owner = row.owner if row.owner in owners else None
        tag = current.get(row.tag or "")
        sentiment = _member(Sentiment, row.sentiment)
        if owner or tag or sentiment:
            voices.append(LabelledVoice(text=row.text, source=HISTORY_SOURCE, weight=WEIGHT_HISTORY,
                                        channel=_member(Channel, row.channel), business=_member(Business, row.business),
                                        owner=owner, tag=tag, sentiment=sentiment))
    return voices


def _member(enum: type[_E], value: str | None) -> _E | None:
    try:
        return enum(value) if value else None
    except ValueError:
        return None
