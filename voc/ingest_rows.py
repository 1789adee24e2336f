"""One export row → one masked `Voice`: the bank's headers and values mapped onto the voice fields.

Nothing unmasked leaves `to_voice` (unless the settings allow it explicitly). A value the column map
does not know (a channel such as 95588热线, a segment such as 贵宾) keeps its voice: it is mapped by
cue words, or stored as 其他渠道 / 其他 / 未知 with the raw value in the metadata and a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from voc.config import Settings
from voc.ingest_readers import IngestError, RowError
from voc.models import Business, Channel, Segment, SourceType, Voice, as_local_aware, stable_voice_id
from voc.pii import mask_text
from voc.pii_metadata import mask_value
from voc.pseudonyms import pseudonymize_customer_id, pseudonymous_id

DEFAULT_COLUMN_MAP = Path(__file__).parent / "data" / "column_map.yaml"
VOICE_FIELDS = ("id", "created_at", "channel", "source_type", "customer_id", "customer_segment",
                "business", "text", "metadata")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                     "%Y%m%d%H%M%S", "%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M",
                     "%Y年%m月%d日", "%Y.%m.%d %H:%M:%S", "%Y.%m.%d")
# Voices from before online service or far in the future are a broken date, not a voice of then.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# Excel stores dates as days since 1899-12-30; a number in this range is such a date, never a
# Unix time (which would be a few hours into 1970).
_EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_SERIAL = (32874.0, 73051.0)  # 1990-01-01 … 2100-01-01
_NUMBER_RE = re.compile(r"^\d+(\.\d+)?$")
_PUNCT_RE = re.compile(r"[\s\W_]+", re.UNICODE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_TEXT_CHARS = 20000
_FIELD_ENUMS: dict[str, tuple[type[Channel] | type[Business] | type[Segment] | type[SourceType], str]] = {
    "channel": (Channel, Channel.OTHER.value),
    "business": (Business, Business.OTHER.value),
    "customer_segment": (Segment, Segment.UNKNOWN.value),
    "source_type": (SourceType, SourceType.CUSTOMER.value),
}
_RAW_VALUE_KEY = {"channel": "原始渠道", "business": "原始业务", "customer_segment": "原始客群",
                  "source_type": "原始来源类型"}
_FIELD_NAMES = {"channel": "渠道", "business": "业务", "customer_segment": "客群", "source_type": "来源类型"}


def _header_key(header: str) -> str:
    return unicodedata.normalize("NFKC", header).strip().lower()


def _value_key(value: str) -> str:
    """Synonyms match on normalised text: width, case, spaces and punctuation do not matter."""
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", value)).lower()


@dataclass(frozen=True)
class ColumnMap:
    columns: dict[str, str]
    values: dict[str, dict[str, str]]
    cues: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, extra: Path | None = None) -> ColumnMap:
        base = yaml.safe_load(DEFAULT_COLUMN_MAP.read_text(encoding="utf-8"))
        columns = {_header_key(k): v for k, v in base["columns"].items()}
        values = {f: {_value_key(str(k)): str(v) for k, v in m.items()} for f, m in base["values"].items()}
        cues = {f: [(_value_key(str(k)), str(v)) for k, v in m.items()] for f, m in base.get("cues", {}).items()}
        if extra is not None:
            try:
                custom = yaml.safe_load(Path(extra).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise IngestError(f"无法读取列映射文件 {extra}：{exc}") from exc
            unknown = set((custom.get("columns") or {}).values()) - set(VOICE_FIELDS)
            if unknown:
                raise IngestError(f"列映射 {extra} 映射到了未知字段：{sorted(unknown)}"
                                  f"（可用：{'、'.join(VOICE_FIELDS)}）")
            columns |= {_header_key(k): v for k, v in (custom.get("columns") or {}).items()}
            for name, mapping in (custom.get("values") or {}).items():
                values.setdefault(name, {}).update({_value_key(str(k)): str(v) for k, v in mapping.items()})
        return cls(columns, values, cues)

    def apply(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Rename known headers onto Voice fields; everything else goes to metadata."""
        mapped: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for header, value in raw.items():
            target = self.columns.get(_header_key(str(header)))
            if target == "metadata" and isinstance(value, (dict, str)):
                extra.update(_as_mapping(value, str(header)))
            elif target and target not in mapped:
                mapped[target] = value
            elif value not in (None, ""):
                extra[str(header)] = value
        mapped["metadata"] = extra
        return mapped

    def controlled(self, name: str, value: Any) -> tuple[str, bool]:
        """The controlled value of a channel/business/segment/source type, and whether it was known."""
        enum, fallback = _FIELD_ENUMS[name]
        text = str(value).strip()
        if text in {m.value for m in enum}:
            return text, True
        key = _value_key(text)
        known = {_value_key(m.value): m.value for m in enum}
        if key in known:
            return known[key], True
        if key in self.values.get(name, {}):
            return self.values[name][key], True
        for cue, target in self.cues.get(name, []):
            if cue and cue in key:
                return target, True
        return fallback, False


def _as_mapping(value: dict[str, Any] | str, header: str) -> dict[str, Any]:
    """A metadata cell: a JSON object (a CSV cell holds it as text), else kept under its header."""
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if value.strip() else {}
    except (json.JSONDecodeError, RecursionError):
        return {header: value}
    return parsed if isinstance(parsed, dict) else {header: value}


@cache
def _built_in_map() -> ColumnMap:
    """The built-in map, read once: `to_voice` without a map of its own runs once per row."""
    return ColumnMap.load()


# ---------------------------------------------------------------- dates

def parse_datetime(value: Any) -> datetime:
    """A date-time from an export: ISO text, common Chinese formats, Excel serial numbers (also as
    text) or Unix seconds/milliseconds. Out of 1990–2099 it is a broken value and rejected."""
    try:
        parsed = _parse_datetime(value)
        aware = as_local_aware(parsed)
        aware.astimezone(UTC)  # raises OverflowError at the edges of datetime's range
    except (OverflowError, OSError, ValueError) as exc:
        if isinstance(exc, RowError):
            raise
        raise RowError(f"受理时间无法解析为日期时间：{str(value)[:40]!r}") from exc
    if not EARLIEST <= aware < LATEST:
        raise RowError(f"受理时间超出合理范围（1990–2099 年）：{str(value)[:40]!r}")
    return parsed


def _parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_number(float(value))
    text = str(value or "").strip()
    if not text:
        raise RowError("缺少受理时间（created_at）")
    if _NUMBER_RE.match(text):
        return _from_number(float(text))
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise RowError(f"受理时间无法解析为日期时间：{text[:40]!r}")


def _from_number(number: float) -> datetime:
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    if _EXCEL_SERIAL[0] <= number < _EXCEL_SERIAL[1]:
        return _EXCEL_EPOCH + timedelta(days=number)  # a naive local wall-clock time, as Excel shows it
    if 19000101 <= number <= 20991231 and number == int(number):
        return datetime.strptime(str(int(number)), "%Y%m%d")
    return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=UTC)


# ---------------------------------------------------------------- text

def clean_value(value: Any) -> Any:
    """Control characters (NUL above all: PostgreSQL refuses it) removed from every string."""
    if isinstance(value, str):
        return _CONTROL_RE.sub("", value)
    if isinstance(value, dict):
        return {clean_value(str(k)): clean_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def normalize_text(text: str) -> str:
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", text)).lower()


def text_key(text: str) -> str:
    return key_of_normalized(normalize_text(text))


def key_of_normalized(norm: str) -> str:
    return hashlib.md5(norm.encode("utf-8"), usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------- the row

@dataclass
class RowNotes:
    """Warnings about one accepted row (an unknown channel value, …), counted per file."""

    warnings: list[str] = field(default_factory=list)


def to_voice(mapped: dict[str, Any], settings: Settings, column_map: ColumnMap | None = None,
             notes: RowNotes | None = None) -> Voice:
    """Validate a mapped row, then mask it: nothing unmasked leaves this function by default."""
    fields = {k: clean_value(v) for k, v in mapped.items() if v not in (None, "") or k == "metadata"}
    fields["metadata"] = dict(fields.get("metadata") or {})
    text = str(fields.get("text", "")).strip()
    if not text:
        raise RowError("缺少客户声音文本（text）")
    if len(text) > MAX_TEXT_CHARS:
        raise RowError(f"文本过长：{len(text)} 字，上限 {MAX_TEXT_CHARS} 字")
    fields["created_at"] = parse_datetime(fields.get("created_at"))
    _controlled_values(fields, column_map or _built_in_map(), notes or RowNotes())
    raw_customer = str(fields["customer_id"]).strip() if fields.get("customer_id") is not None else None
    if not settings.allow_unmasked_pii:
        fields["text"] = mask_text(text)
        fields["metadata"] = mask_value(fields["metadata"])
        fields["customer_id"] = pseudonymize_customer_id(raw_customer, settings.pseudonym_key())
    if not fields.get("id"):
        fields["id"] = stable_voice_id(str(fields["channel"]), fields["created_at"],
                                       fields.get("customer_id"), str(fields["text"]))
    fields["id"] = str(fields["id"]).strip()
    if not settings.allow_unmasked_pii and mask_text(fields["id"]) != fields["id"]:
        # A ticket number that is a phone or ID number: a keyed pseudonym, stable across re-ingestion.
        fields["id"] = pseudonymous_id(fields["id"], settings.pseudonym_key())
    try:
        return Voice.model_validate(fields)
    except ValidationError as exc:
        raise RowError(_short_validation_message(exc)) from exc


def _controlled_values(fields: dict[str, Any], column_map: ColumnMap, notes: RowNotes) -> None:
    for name in _FIELD_ENUMS:
        value = fields.get(name)
        if value is None:
            if name == "channel":
                fields[name] = Channel.OTHER.value
                notes.warnings.append("缺少渠道，记为其他渠道")
            continue
        controlled, known = column_map.controlled(name, value)
        fields[name] = controlled
        if not known:
            fields["metadata"][_RAW_VALUE_KEY[name]] = str(value)
            notes.warnings.append(f"未知{_FIELD_NAMES[name]}“{str(value)[:20]}”，记为{controlled}")


_FIELD_LABELS = {"id": "编号", "created_at": "受理时间", "text": "文本", "customer_id": "客户号",
                 "metadata": "附加字段"}


def _short_validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(_FIELD_LABELS.get(str(p), str(p)) for p in error["loc"]) or "该行"
        parts.append(f"{where}：{error['msg']}")
    return "；".join(parts)
