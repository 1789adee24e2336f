"""The knowledge vector store (Chroma): incremental sync of the knowledge base and semantic search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings

from voc.config import Settings
from voc.embeddings import E5EmbeddingFunction
from voc.kb_models import Case, KnowledgeDoc, ServiceMatrix, Taxonomy
from voc.knowledge import chunk_doc

DOCS = "kb_docs"
CASES = "kb_cases"
MATRIX = "kb_matrix"
TAGS = "kb_tags"
COLLECTIONS = (DOCS, CASES, MATRIX, TAGS)

Metadata = dict[str, str | int | float | bool]


@dataclass(frozen=True)
class Item:
    id: str
    document: str
    metadata: Metadata


@dataclass
class SyncReport:
    collection: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class Hit:
    id: str
    document: str
    metadata: dict[str, Any]
    similarity: float


_clients: dict[str, ClientAPI] = {}


def client_for(settings: Settings) -> ClientAPI:
    """One client per location: Chroma keeps a process-wide system per persistent path."""
    key = settings.chroma_url or str(settings.chroma_dir)
    if key not in _clients:
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            _clients[key] = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                                ssl=url.scheme == "https", settings=chroma_settings)
        else:
            settings.chroma_dir.mkdir(parents=True, exist_ok=True)
            _clients[key] = chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    return _clients[key]


def collection(client: ClientAPI, name: str) -> Collection:
    return client.get_or_create_collection(name, embedding_function=E5EmbeddingFunction(),  # type: ignore[arg-type]
                                           metadata={"hnsw:space": "cosine"})


def _content_hash(item: Item) -> str:
    payload = json.dumps([item.document, item.metadata], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def sync(coll: Collection, items: Sequence[Item], progress: Callable[[int], None] | None = None,
         batch_size: int = 64, embed: Callable[[list[str]], Any] | None = None) -> SyncReport:
    """Make the collection hold exactly these items, embedding only what is new or changed.
    `embed` (documents → vectors, e.g. the embedding cache) spares re-embedding a text seen before."""
    report = SyncReport(coll.name)
    stored = coll.get(include=["metadatas"])
    known = {i: (m or {}).get("content_hash") for i, m in zip(stored["ids"], stored["metadatas"] or [], strict=False)}
    wanted = {item.id for item in items}
    stale = [i for i in known if i not in wanted]
    if stale:
        coll.delete(ids=stale)
        report.deleted = len(stale)
    changed = []
    for item in items:
        digest = _content_hash(item)
        if known.get(item.id) == digest:
            report.unchanged += 1
            continue
        if item.id in known:
            report.updated += 1
        else:
            report.added += 1
        changed.append(Item(item.id, item.document, {**item.metadata, "content_hash": digest}))
    for start in range(0, len(changed), batch_size):
        part = changed[start : start + batch_size]
        documents = [i.document for i in part]
        vectors = embed(documents) if embed else None
        coll.upsert(ids=[i.id for i in part], documents=documents, metadatas=[i.metadata for i in part],
                    embeddings=vectors)
        if progress:
            progress(len(part))
    return report


def search(coll: Collection, query: str, top_k: int, where: dict[str, Any] | None = None) -> list[Hit]:
    size = coll.count()
    if size == 0:
        return []
    result = coll.query(query_texts=[query], n_results=min(top_k, size), where=where or None,
                        include=["documents", "metadatas", "distances"])
    ids = result["ids"][0]
    documents = (result["documents"] or [[]])[0]
    metadatas = (result["metadatas"] or [[]])[0]
    distances = (result["distances"] or [[]])[0]
    return [Hit(i, d, dict(m or {}), round(1.0 - float(dist), 4))
            for i, d, m, dist in zip(ids, documents, metadatas, distances, strict=True)]


# ---------------------------------------------------------------- items from knowledge files

def doc_items(docs: Sequence[KnowledgeDoc]) -> list[Item]:
    items = []
    for doc in docs:
        for chunk in chunk_doc(doc):
            items.append(Item(chunk.id, f"{chunk.title}｜{chunk.section}\n{chunk.text}", {
                "doc_id": doc.id, "title": doc.title, "section": chunk.section, "category": doc.category,
                "business": "|".join(b.value for b in doc.business), "owner": doc.owner or ""}))
    return items


def case_document(case: Case) -> str:
    return "\n".join([case.title, case.problem, f"根因：{case.root_cause}",
                      "措施：" + "；".join(case.short_term_measures + case.long_term_measures)])


def case_items(cases: Sequence[Case]) -> list[Item]:
    return [Item(case.id, case_document(case), {
        "case_id": case.id, "title": case.title, "dimension": case.dimension, "business": case.business.value,
        "owner": case.owner, "source": case.source, "payload": case.model_dump_json()}) for case in cases]


def matrix_items(matrix: ServiceMatrix) -> list[Item]:
    return [Item(entry.id, f"{entry.scene}：{'、'.join(entry.keywords)}。{entry.description}", {
        "entry_id": entry.id, "scene": entry.scene, "owner": entry.owner, "role": entry.role,
        "channels": "|".join(str(c) for c in entry.channels),
        "business": "|".join(str(b) for b in entry.business)}) for entry in matrix.entries]


def tag_items(taxonomy: Taxonomy) -> list[Item]:
    """The definition and every example of each tag: the neighbours a tracing agent compares with."""
    items = []
    for tag in taxonomy.tags:
        # Ids follow the path, so a renamed tag replaces its items instead of shifting others.
        key = "T" + hashlib.sha256(tag.path.encode("utf-8")).hexdigest()[:12]
        meta: Metadata = {"tag": tag.path, "dimension": tag.dimension}
        items.append(Item(f"{key}-def", f"{tag.path}：{tag.definition}", {**meta, "kind": "definition"}))
        items += [Item(f"{key}-ex{n}", example, {**meta, "kind": "example"})
                  for n, example in enumerate(tag.examples)]
    return items

