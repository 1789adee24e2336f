"""Loading, validating and editing the knowledge base files (matrix, taxonomy, cases, documents)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from voc.ingest import decode_bytes
from voc.kb_models import (
    BoilerplateList,
    Case,
    ChangelogEntry,
    Department,
    KnowledgeDoc,
    MatrixEntry,
    ServiceMatrix,
    TagDefinition,
    Taxonomy,
)


class KnowledgeError(ValueError):
    """A knowledge file is missing, malformed or inconsistent."""


# ---------------------------------------------------------------- service matrix

def load_service_matrix(path: Path) -> ServiceMatrix:
    if not path.is_file():
        raise KnowledgeError(f"service matrix {path} not found")
    matrix = _matrix_from_csv(path) if path.suffix.lower() == ".csv" else ServiceMatrix.model_validate(
        yaml.safe_load(path.read_text(encoding="utf-8")))
    unknown = {e.owner for e in matrix.entries} - set(matrix.department_names())
    if unknown:
        raise KnowledgeError(f"matrix entries name owners that are not departments: {sorted(unknown)}")
    return matrix


def _split(cell: str) -> list[str]:
    return [part.strip() for part in re.split(r"[|、;；]", cell or "") if part.strip()]


def _matrix_from_csv(path: Path) -> ServiceMatrix:
    """CSV columns: id, channels, business, scene, keywords, owner, role[, description].
    Lists are separated by | or 、. Departments are the owners named, in order of appearance."""
    rows = list(csv.DictReader(decode_bytes(path.read_bytes()).splitlines()))
    entries = [MatrixEntry.model_validate({
        "id": r["id"], "channels": _split(r.get("channels", "*")) or ["*"],
        "business": _split(r.get("business", "*")) or ["*"], "scene": r["scene"], "keywords": _split(r["keywords"]),
        "owner": r["owner"].strip(), "role": r.get("role", "").strip(), "description": r.get("description", "") or ""})
        for r in rows]
    owners = list(dict.fromkeys(e.owner for e in entries))
    return ServiceMatrix(version=f"csv:{path.name}", departments=[Department(name=o, scope="") for o in owners],
                         entries=entries)


# ---------------------------------------------------------------- taxonomy

def load_taxonomy(path: Path) -> Taxonomy:
    if not path.is_file():
        raise KnowledgeError(f"taxonomy {path} not found")
    taxonomy = Taxonomy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    check_taxonomy(taxonomy)
    return taxonomy


def check_taxonomy(taxonomy: Taxonomy) -> None:
    paths = [t.path for t in taxonomy.tags]
    if len(paths) != len(set(paths)):
        raise KnowledgeError("duplicate tag paths in the taxonomy")
    for tag in taxonomy.tags:
        levels = tag.levels
        if len(levels) != 3 or not all(levels):
            raise KnowledgeError(f"tag {tag.path!r} must have exactly three levels L1>L2>L3")
        if levels[0] != tag.dimension.label:
            raise KnowledgeError(f"tag {tag.path!r}: L1 must be {tag.dimension.label!r}")
        for field in ("short_term_measures", "long_term_measures"):
            measures = getattr(tag, field)
            if any(not m.strip() for m in measures):
                raise KnowledgeError(f"tag {tag.path!r}: {field} holds an empty measure")
            if len(measures) != len(set(measures)):
                raise KnowledgeError(f"tag {tag.path!r}: {field} repeats a measure")


def save_taxonomy(taxonomy: Taxonomy, path: Path) -> None:
    data = taxonomy.model_dump(mode="json")
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120), encoding="utf-8")


def _bump(version: str) -> str:
    major, minor, *_ = [*version.split("."), "0", "0"]
    return f"{major}.{int(minor) + 1}.0"


def _with_change(taxonomy: Taxonomy, tags: list[TagDefinition], change: str, today: date) -> Taxonomy:
    version = _bump(taxonomy.version)
    changed = taxonomy.model_copy(update={
        "version": version, "tags": tags,
        "changelog": [*taxonomy.changelog, ChangelogEntry(version=version, date=today, changes=[change])]})
    check_taxonomy(changed)
    return changed


def add_tag(taxonomy: Taxonomy, tag: TagDefinition, today: date | None = None) -> Taxonomy:
    if any(t.path == tag.path for t in taxonomy.tags):
        raise KnowledgeError(f"tag {tag.path!r} already exists")
    return _with_change(taxonomy, [*taxonomy.tags, tag], f"新增标签 {tag.path}", today or date.today())


def rename_tag(taxonomy: Taxonomy, old: str, new: str, today: date | None = None) -> Taxonomy:
    tag = find_tag(taxonomy, old)
    if any(t.path == new for t in taxonomy.tags):
        raise KnowledgeError(f"tag {new!r} already exists")
    renamed = tag.model_copy(update={"path": new, "aliases": [*tag.aliases, old]})
    tags = [renamed if t.path == old else t for t in taxonomy.tags]
    return _with_change(taxonomy, tags, f"重命名标签 {old} → {new}", today or date.today())


def merge_tags(taxonomy: Taxonomy, sources: Iterable[str], target: str, today: date | None = None) -> Taxonomy:
    """Fold source tags into target: their paths become aliases, their examples and keywords join."""
    merged = find_tag(taxonomy, target)
    sources = [s for s in sources if s != target]
    absorbed = [find_tag(taxonomy, s) for s in sources]
    merged = merged.model_copy(update={
        "aliases": [*merged.aliases, *sources, *(a for t in absorbed for a in t.aliases)],
        "examples": list(dict.fromkeys([*merged.examples, *(e for t in absorbed for e in t.examples)])),
        "keywords": list(dict.fromkeys([*merged.keywords, *(k for t in absorbed for k in t.keywords)])),
    })
    tags = [merged if t.path == target else t for t in taxonomy.tags if t.path not in sources]
    return _with_change(taxonomy, tags, f"合并标签 {', '.join(sources)} → {target}", today or date.today())


def find_tag(taxonomy: Taxonomy, path: str) -> TagDefinition:
    """The current tag for a path, following renames and merges through aliases."""
    for tag in taxonomy.tags:
        if tag.path == path:
            return tag
    for tag in taxonomy.tags:
        if path in tag.aliases:
            return tag
    raise KnowledgeError(f"no tag {path!r} in taxonomy {taxonomy.version}")


# ---------------------------------------------------------------- cases and documents

def load_cases(directory: Path) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.yaml")):
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        cases += [Case.model_validate(item) for item in items]
    ids = [c.id for c in cases]
    if len(ids) != len(set(ids)):
        raise KnowledgeError("duplicate case ids in the case library")
    return cases


_FRONT_MATTER_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.S)


def parse_doc(path: Path) -> KnowledgeDoc:
    match = _FRONT_MATTER_RE.match(path.read_text(encoding="utf-8"))
    if not match:
        raise KnowledgeError(f"{path}: a knowledge document starts with YAML front matter between --- lines")
    meta = yaml.safe_load(match.group(1)) or {}
    return KnowledgeDoc.model_validate({**meta, "body": match.group(2).strip()})


def load_docs(directory: Path) -> list[KnowledgeDoc]:
    docs = [parse_doc(p) for p in sorted(directory.glob("*.md"))]
    ids = [d.id for d in docs]
    if len(ids) != len(set(ids)):
        raise KnowledgeError("duplicate knowledge document ids")
    return docs


@dataclass(frozen=True)
class DocChunk:
    id: str
    doc_id: str
    title: str
    section: str
    text: str


def chunk_doc(doc: KnowledgeDoc) -> list[DocChunk]:
    """One chunk per '## ' section (the preamble, if any, is its own chunk)."""
    sections = re.split(r"^## +", doc.body, flags=re.M)
    chunks = []
    for index, section in enumerate(sections):
        if not section.strip():
            continue
        heading, _, rest = section.partition("\n")
        title = heading.strip() if index > 0 else "概述"
        text = (rest if index > 0 else section).strip()
        if text:
            chunks.append(DocChunk(f"{doc.id}#{index}", doc.id, doc.title, title, text))
    return chunks


def load_boilerplate(path: Path) -> BoilerplateList:
    """The maintained boilerplate list; an installation without the file strips nothing but masks."""
    if not path.is_file():
        return BoilerplateList(version="0")
    return BoilerplateList.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
