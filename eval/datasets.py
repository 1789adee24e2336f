"""Evaluation datasets: the bundled gold sets and outside JSONL files with partial labels."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voc.ingest import parse_datetime
from voc.models import as_local_aware
from voc.periods import Period, parse_week

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
LABEL_FIELDS = ("issue", "owner", "owner_ok", "dimension", "dims_ok", "tag", "sentiment", "hard")


@dataclass
class Dataset:
    name: str
    rows: list[dict[str, Any]]
    labels: dict[str, dict[str, Any]]
    issues: list[dict[str, Any]] = field(default_factory=list)
    current: Period | None = None
    incidents: list[dict[str, Any]] = field(default_factory=list)  # symptoms of one cause: {id, issues: [...]}

    def labelled(self, name: str) -> int:
        return sum(1 for label in self.labels.values() if label.get(name))


def load_dataset(name_or_path: str) -> Dataset:
    """A bundled set by name (eval/datasets/NAME/) or an outside JSONL file."""
    folder = DATASETS_DIR / name_or_path
    if folder.is_dir():
        return _bundled(folder)
    path = Path(name_or_path)
    if path.is_file():
        return _from_rows(path.stem, _read_jsonl(path), [], None)
    known = ", ".join(sorted(p.name for p in DATASETS_DIR.iterdir() if p.is_dir()))
    raise FileNotFoundError(f"no dataset {name_or_path!r}: give a JSONL path or one of: {known}")


def _bundled(folder: Path) -> Dataset:
    rows = [row for part in sorted(folder.glob("part_*.jsonl")) for row in _read_jsonl(part)]
    spec = yaml.safe_load((folder / "issues.yaml").read_text(encoding="utf-8")) if (folder / "issues.yaml").is_file() \
        else {}
    current = parse_week(spec["weeks"]["current"]) if spec.get("weeks") else None
    dataset = _from_rows(folder.name, rows, spec.get("issues", []), current)
    dataset.incidents = spec.get("incidents", [])
    return dataset


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _from_rows(name: str, rows: list[dict[str, Any]], issues: list[dict[str, Any]],
               current: Period | None) -> Dataset:
    """Split labels from the voice fields; labels may sit in `labels` or at the top level."""
    voices, labels = [], {}
    for row in rows:
        label = dict(row.get("labels") or {})
        label |= {k: row[k] for k in LABEL_FIELDS if k in row and k not in label}
        voice = {k: v for k, v in row.items() if k != "labels" and k not in LABEL_FIELDS}
        voices.append(voice)
        labels[str(row["id"])] = {k: v for k, v in label.items() if v not in (None, "", [])}
    return Dataset(name, voices, labels, issues, current or _latest_week(voices))


def _latest_week(rows: list[dict[str, Any]]) -> Period | None:
    """For outside sets: the ISO week of the latest voice is the period evaluated."""
    dates = [as_local_aware(parse_datetime(r["created_at"])).date() for r in rows if r.get("created_at")]
    return Period.week_of(max(dates)) if dates else None
