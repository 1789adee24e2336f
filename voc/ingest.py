"""Ingestion: read CSV / JSONL / XLSX, map a bank's columns, mask personal data, link duplicates.

Every input row ends in exactly one bucket: stored, duplicate (linked to its original, or already
in the store) or rejected (written to a rejects file with file, row number and reason).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import insert, select

from voc.config import Settings
from voc.models import LOCAL_TZ, Voice, funnel_tier, stable_voice_id
from voc.pii import mask_text, pseudonymize_customer_id
from voc.storage import Store, VoiceRow, iso_week_of

DEFAULT_COLUMN_MAP = Path(__file__).parent / "data" / "column_map.yaml"
VOICE_FIELDS = ("id", "created_at", "channel", "source_type", "customer_id", "customer_segment",
                "business", "text", "metadata")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                     "%Y%m%d%H%M%S", "%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M",
                     "%Y年%m月%d日")
_PUNCT_RE = re.compile(r"[\s\W_]+", re.UNICODE)


class IngestError(Exception):
    """A whole file cannot be read (missing, unsupported type, undecodable)."""


class RowError(ValueError):
    """One row cannot become a voice; the message is the reject reason, raw what could be read."""

    def __init__(self, reason: str, raw: Any = None) -> None:
        super().__init__(reason)
        self.raw = raw


@dataclass(frozen=True)
class ColumnMap:
    columns: dict[str, str]
    values: dict[str, dict[str, str]]

    @classmethod
    def load(cls, extra: Path | None = None) -> ColumnMap:
        base = yaml.safe_load(DEFAULT_COLUMN_MAP.read_text(encoding="utf-8"))
        columns = {_header_key(k): v for k, v in base["columns"].items()}
        values = {f: {str(k): str(v) for k, v in m.items()} for f, m in base["values"].items()}
        if extra is not None:
            custom = yaml.safe_load(Path(extra).read_text(encoding="utf-8")) or {}
            unknown = set((custom.get("columns") or {}).values()) - set(VOICE_FIELDS)
            if unknown:
                raise IngestError(f"column map {extra} maps onto unknown fields: {sorted(unknown)}")
            columns |= {_header_key(k): v for k, v in (custom.get("columns") or {}).items()}
            for name, mapping in (custom.get("values") or {}).items():
                values.setdefault(name, {}).update({str(k): str(v) for k, v in mapping.items()})
        return cls(columns, values)

    def apply(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Rename known headers onto Voice fields; everything else goes to metadata."""
        mapped: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for header, value in raw.items():
            target = self.columns.get(_header_key(str(header)))
            if target == "metadata" and isinstance(value, dict):
                extra.update(value)
            elif target and target not in mapped:
                mapped[target] = value
            elif value not in (None, ""):
                extra[str(header)] = value
        for name, synonyms in self.values.items():
            value = mapped.get(name)
            if isinstance(value, str) and value.strip() in synonyms:
                mapped[name] = synonyms[value.strip()]
        mapped["metadata"] = extra
        return mapped


def _header_key(header: str) -> str:
    return unicodedata.normalize("NFKC", header).strip().lower()


# ---------------------------------------------------------------- readers

def decode_bytes(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK), then detection."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise IngestError("cannot detect the text encoding")
    return str(best)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Yield (row number, row or the reason it cannot be read). Row numbers are 1-based data rows."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if suffix in (".csv", ".tsv", ".txt"):
        yield from _read_csv(path, delimiter="\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path)
    elif suffix in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path)
    else:
        raise IngestError(f"{path}: unsupported file type {suffix or '(none)'}; use CSV, JSONL or XLSX")


def _read_csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    reader = csv.reader(io.StringIO(decode_bytes(path.read_bytes()), newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return
    for number, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            yield number, RowError("empty row")
        elif len(cells) > len(header):
            yield number, RowError(f"{len(cells)} cells but the header has {len(header)} columns", raw=cells)
        else:
            yield number, dict(zip(header, cells, strict=False))


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    text = decode_bytes(path.read_bytes())
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, RowError(f"invalid JSON: {exc.msg} at column {exc.colno}", raw=line)
            continue
        yield number, value if isinstance(value, dict) else RowError("a JSON line must be an object", raw=line)


def _read_xlsx(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise IngestError(f"{path}: cannot open workbook: {exc}") from exc
    rows = workbook.worksheets[0].iter_rows(values_only=True)
    header = [str(h) if h is not None else "" for h in next(rows, ())]
    for number, cells in enumerate(rows, start=1):
        if all(c in (None, "") for c in cells):
            yield number, RowError("empty row")
        else:
            yield number, {h: c for h, c in zip(header, cells, strict=False) if h}
    workbook.close()


# ---------------------------------------------------------------- normalisation

def parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
    text = str(value or "").strip()
    if not text:
        raise RowError("created_at is missing")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise RowError(f"created_at {text!r} is not a date-time")


def normalize_text(text: str) -> str:
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", text)).lower()


def text_key(text: str) -> str:
    return key_of_normalized(normalize_text(text))


def key_of_normalized(norm: str) -> str:
    return hashlib.md5(norm.encode("utf-8"), usedforsecurity=False).hexdigest()


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    return value


def to_voice(mapped: dict[str, Any], settings: Settings) -> Voice:
    """Validate a mapped row, then mask it: nothing unmasked leaves this function by default."""
    fields = {k: v for k, v in mapped.items() if v not in (None, "") or k == "metadata"}
    if "text" not in fields:
        raise RowError("text is missing")
    fields["created_at"] = parse_datetime(fields.get("created_at"))
    raw_customer = str(fields["customer_id"]) if fields.get("customer_id") is not None else None
    if not settings.allow_unmasked_pii:
        fields["text"] = mask_text(str(fields["text"]))
        fields["metadata"] = _mask_value(fields.get("metadata") or {})
        fields["customer_id"] = pseudonymize_customer_id(raw_customer, settings.pii_salt)
    if not fields.get("id"):
        fields["id"] = stable_voice_id(str(fields.get("channel", "")), fields["created_at"],
                                       fields.get("customer_id"), str(fields["text"]))
    fields["id"] = str(fields["id"])
    try:
        return Voice.model_validate(fields)
    except ValidationError as exc:
        raise RowError(_short_validation_message(exc)) from exc


def _short_validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "row"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


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


class Ingestor:
    """Ingests files into one store with the settings' masking and duplicate rules."""

    def __init__(self, store: Store, settings: Settings, column_map: ColumnMap | None = None) -> None:
        self.store = store
        self.settings = settings
        self.column_map = column_map or ColumnMap.load(settings.column_map)
        self.window = timedelta(hours=settings.duplicate_window_hours)

    def ingest_file(self, path: Path, progress: Callable[[int], None] | None = None) -> FileReport:
        report = FileReport(path=str(path))
        rejects: list[dict[str, Any]] = []
        batch: list[tuple[int, Voice]] = []
        for number, row in read_rows(path):
            report.rows += 1
            try:
                if isinstance(row, RowError):
                    raise row
                batch.append((number, to_voice(self.column_map.apply(row), self.settings)))
            except RowError as exc:
                self._reject(report, rejects, path, number, str(exc), row if isinstance(row, dict) else exc.raw)
            if len(batch) >= self.settings.ingest_batch_size:
                self._write_batch(batch, path, report, rejects)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            self._write_batch(batch, path, report, rejects)
            if progress:
                progress(len(batch))
        report.rejects_path = self._write_rejects(path, rejects)
        return report

    def _reject(self, report: FileReport, rejects: list[dict[str, Any]], path: Path, number: int,
                reason: str, raw: Any) -> None:
        report.rejected += 1
        kind = reason.split(":")[0]
        report.reasons[kind] = report.reasons.get(kind, 0) + 1
        rejects.append({"file": str(path), "row": number, "reason": reason, "raw": _mask_value(raw)})

    def _write_rejects(self, path: Path, rejects: list[dict[str, Any]]) -> str | None:
        if not rejects:
            return None
        self.settings.rejects_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%dT%H%M%S%f")
        target = self.settings.rejects_dir / f"{stamp}-{path.stem}.jsonl"
        with target.open("w", encoding="utf-8") as handle:
            for item in rejects:
                handle.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        return str(target)

    def _write_batch(self, batch: list[tuple[int, Voice]], path: Path, report: FileReport,
                     rejects: list[dict[str, Any]]) -> None:
        voices = [v for _, v in batch]
        norms = [normalize_text(v.text) for v in voices]  # once per row: keys and similarity use it
        keys = [key_of_normalized(n) for n in norms]
        existing = self._existing(voices)
        candidates = self._candidates(voices, keys)
        rows: list[dict[str, Any]] = []
        seen_ids: dict[str, str] = {}
        now = datetime.now(UTC)
        for (number, voice), norm, key in zip(batch, norms, keys, strict=True):
            known_key = existing.get(voice.id) or seen_ids.get(voice.id)
            if known_key is not None:
                if known_key == key:
                    report.duplicate += 1
                    report.already_stored += 1
                else:
                    self._reject(report, rejects, path, number,
                                 f"id conflict: {voice.id} is already used by a different voice", None)
                continue
            original = candidates.original_of(voice, norm, key, self.window,
                                              self.settings.near_duplicate_similarity)
            rows.append(self._row(voice, key, original, path, number, now))
            seen_ids[voice.id] = key
            candidates.add(_Candidate(voice.id, voice.customer_id, voice.channel.value, voice.created_at,
                                      norm, key, original or voice.id))
            if original:
                report.duplicate += 1
                report.linked += 1
            else:
                report.stored += 1
        if rows:
            with self.store.session() as session:
                # render_nulls keeps one statement per batch: without it SQLAlchemy splits the batch
                # wherever an optional column switches between NULL and a value.
                session.execute(insert(VoiceRow).execution_options(render_nulls=True), rows)

    def _row(self, voice: Voice, key: str, original: str | None, path: Path, number: int,
             now: datetime) -> dict[str, Any]:
        local_day = voice.local_time.date()
        return {
            "id": voice.id, "created_at": voice.created_at, "local_date": local_day,
            "iso_week": iso_week_of(local_day), "channel": voice.channel.value,
            "funnel_tier": int(funnel_tier(voice.channel)), "source_type": voice.source_type.value,
            "customer_id": voice.customer_id, "customer_segment": voice.customer_segment.value,
            "business": voice.business.value if voice.business else None, "text": voice.text,
            "text_key": key, "meta": voice.metadata, "duplicate_of": original,
            "source_file": path.name, "source_row": number, "ingested_at": now,
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
