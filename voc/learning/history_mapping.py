"""The mapping file of a bank's labelled history (`voc learn history.csv --mapping FILE`).

It names the columns that hold the bank's labels and maps the bank's own values onto ours: its
categories (工单分类) onto taxonomy tags, its departments (责任部门) onto the service matrix's
departments, its satisfaction or sentiment values (满意度) onto 负面/中性/正面. A value mapped to
nothing (`~`) is deliberately not a label: the row still teaches its other labels. The file is
checked against the taxonomy and the matrix before a row is read; an error names the bad value.
See knowledge/history_mapping.example.yaml.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voc.config import REPO_ROOT
from voc.contracts import Sentiment
from voc.errors import Invalid
from voc.ingest_rows import normalize_text
from voc.kb_models import ServiceMatrix, Taxonomy
from voc.knowledge import KnowledgeError, find_tag

EXAMPLE_MAPPING = REPO_ROOT / "knowledge" / "history_mapping.example.yaml"
SENTIMENTS = tuple(s.value for s in Sentiment)
# label kind → (column key, values key, what the values map onto)
_KINDS = {"tag": ("category_column", "categories"), "owner": ("department_column", "departments"),
          "sentiment": ("sentiment_column", "sentiments")}
_SHOWN = 5


class HistoryError(Invalid):
    """A history file or its mapping that cannot be used; the message says what to do."""


class Unmapped(ValueError):
    """A row's label column holds a value the mapping does not know."""

    def __init__(self, column: str, value: str) -> None:
        super().__init__(f"{column}的取值未在映射文件中")
        self.column, self.value = column, value


@dataclass(frozen=True)
class Labels:
    owner: str | None = None
    tag: str | None = None
    sentiment: str | None = None

    def any(self) -> bool:
        return any((self.owner, self.tag, self.sentiment))


@dataclass(frozen=True)
class LabelColumn:
    kind: str  # tag, owner or sentiment
    column: str  # the header as the bank writes it
    values: dict[str, str | None]  # the bank's value (normalised) → our label, None: no label


class _MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category_column: str | None = None
    department_column: str | None = None
    sentiment_column: str | None = None
    categories: dict[str, str | None] = Field(default_factory=dict)
    departments: dict[str, str | None] = Field(default_factory=dict)
    sentiments: dict[str, str | None] = Field(default_factory=dict)


def header_key(header: Any) -> str:
    return unicodedata.normalize("NFKC", str(header)).strip().lower()


def value_key(value: Any) -> str:
    """A label value as it is matched: width, case, spaces and punctuation do not matter; 5.0 is 5."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return normalize_text(str(value)) if value is not None else ""


@dataclass(frozen=True)
class HistoryMapping:
    path: Path
    columns: tuple[LabelColumn, ...]

    @classmethod
    def load(cls, path: Path, taxonomy: Taxonomy, matrix: ServiceMatrix) -> HistoryMapping:
        name = path.name
        if not path.is_file():
            raise HistoryError(f"找不到映射文件 {path}：请用 --mapping 指定，写法见 {EXAMPLE_MAPPING}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
        except (OSError, UnicodeError, yaml.YAMLError) as exc:
            raise HistoryError(f"映射文件 {name} 无法读取（{type(exc).__name__}）：请确认是 UTF-8 编码的 YAML") from exc
        if not isinstance(raw, dict):
            raise HistoryError(f"映射文件 {name} 应是键值形式的 YAML，写法见 {EXAMPLE_MAPPING}")
        unknown = sorted(str(k) for k in raw if k not in _MappingFile.model_fields)
        if unknown:
            raise HistoryError(f"映射文件 {name} 有未知的键 {'、'.join(unknown)}"
                               f"（可用：{'、'.join(_MappingFile.model_fields)}）")
        for key in ("categories", "departments", "sentiments"):
            if isinstance(raw.get(key), dict):
                raw[key] = {str(k): v for k, v in raw[key].items()}
        try:
            spec = _MappingFile.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise HistoryError(f"映射文件 {name} 的 {where} 写法有误（{error['msg']}）：取值应为文字，"
                               "不映射的取值写 ~") from exc
        return cls(path, tuple(_columns(spec, name, taxonomy, matrix)))

    def labels(self, row: dict[str, Any]) -> Labels:
        """The row's labels; raises `Unmapped` for a value the mapping does not know."""
        cells = {header_key(k): v for k, v in row.items()}
        found: dict[str, str | None] = {}
        for label in self.columns:
            cell = cells.get(header_key(label.column))
            key = value_key(cell)
            if not key:
                found[label.kind] = None
            elif key in label.values:
                found[label.kind] = label.values[key]
            elif label.kind == "sentiment" and str(cell).strip() in SENTIMENTS:
                found[label.kind] = str(cell).strip()
            else:
                raise Unmapped(label.column, str(cell).strip()[:40])
        return Labels(**found)


def _columns(spec: _MappingFile, name: str, taxonomy: Taxonomy, matrix: ServiceMatrix) -> list[LabelColumn]:
    columns, errors = [], []
    for kind, (column_key, values_key) in _KINDS.items():
        column, values = getattr(spec, column_key), getattr(spec, values_key)
        if values and not column:
            errors.append(f"写了 {values_key} 却没有 {column_key}（标签在哪一列）")
        if not column:
            continue
        if not values and kind != "sentiment":
            errors.append(f"写了 {column_key}: {column} 却没有 {values_key}（取值对照）")
        mapped: dict[str, str | None] = {}
        for value, target in values.items():
            checked = _target(kind, value, target, taxonomy, matrix, errors)
            key = value_key(value)
            if key in mapped and mapped[key] != checked:
                errors.append(f"{values_key} 中“{value}”与另一取值只差空格、标点或大小写，却映射到不同的值")
            mapped[key] = checked
        columns.append(LabelColumn(kind, column, mapped))
    if not columns and not errors:
        errors.append("至少要写 category_column、department_column、sentiment_column 之一")
    if errors:
        shown = "；".join(errors[:_SHOWN]) + (f"；另有 {len(errors) - _SHOWN} 处" if len(errors) > _SHOWN else "")
        raise HistoryError(f"映射文件 {name} 有误：{shown}。改正后重新运行（写法见 {EXAMPLE_MAPPING.name}）")
    return columns


def _target(kind: str, value: str, target: str | None, taxonomy: Taxonomy, matrix: ServiceMatrix,
            errors: list[str]) -> str | None:
    """The label a bank value maps onto, checked; a bad one is added to `errors` (named with its value)."""
    if target is None or not str(target).strip():
        return None
    target = str(target).strip()
    if kind == "tag":
        try:
            return find_tag(taxonomy, target).path
        except KnowledgeError:
            errors.append(f"categories 中“{value}”映射到的“{target}”不是分类体系 {taxonomy.version} 的标签"
                          "（应为 L1>L2>L3 路径，见 knowledge/taxonomy.yaml）")
    elif kind == "owner":
        if target in matrix.department_names():
            return target
        errors.append(f"departments 中“{value}”映射到的“{target}”不是服务矩阵的部门"
                      f"（可用：{'、'.join(matrix.department_names())}）")
    elif target in SENTIMENTS:
        return target
    else:
        errors.append(f"sentiments 中“{value}”映射到的“{target}”应为 {'/'.join(SENTIMENTS)} 之一")
    return None
