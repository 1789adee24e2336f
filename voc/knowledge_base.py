"""The knowledge base behind the knowledge and cases MCP servers: files, Chroma, and the queries."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import select

from voc.config import Settings
from voc.contracts import Sentiment
from voc.embeddings import EmbeddingCache
from voc.kb_models import Case, KnowledgeDoc, MatrixEntry, ServiceMatrix, Taxonomy
from voc.kb_ranking import (
    OwnerCandidate,
    OwnerQuery,
    TagSuggestion,
    keyword_weight,
    learned_owners,
    learned_tags,
    rank_owners,
    relative_top,
    rule_shares,
    with_review,
)
from voc.knowledge import KnowledgeError, load_cases, load_docs, load_service_matrix, load_taxonomy
from voc.learning.classifier import Prior
from voc.learning.examples import WEIGHT_CORRECTION, LabelledVoice, knowledge_examples
from voc.learning.features import Inputs
from voc.learning.history import history_examples
from voc.learning.layer import MODELS_DIR, Judgement, LearnedLayer, load_or_train
from voc.learning.rules import owner_rules, tag_rules
from voc.models import Business, Channel
from voc.pii import mask_text
from voc.reviews import Corrected
from voc.storage import RecordedCase, Store
from voc.text import simplified
from voc.vectorstore import (
    CASES,
    COLLECTIONS,
    DOCS,
    MATRIX,
    TAGS,
    Item,
    SyncReport,
    case_items,
    client_for,
    collection,
    doc_items,
    matrix_items,
    search,
    sync,
    tag_items,
)

# Weights of the attribution evidence. Keywords are the strongest signal of the scene; the
# business field narrows it; semantic similarity catches paraphrases the keyword lists miss.
KEYWORD_WEIGHT = 0.25
MAX_KEYWORD_SCORE = 0.75
BUSINESS_MATCH = 0.3
BUSINESS_MISMATCH = -0.25
CHANNEL_MATCH = 0.15
SEMANTIC_WEIGHT = 0.35
SEMANTIC_POOL = 12
TAG_POOL = 10
TAG_NEIGHBOUR_WEIGHT = 0.6
# A voice this close to one an analyst corrected is the same case: its corrected labels count
# strongly (0.6 at the threshold, 1.6 for the same words).
REVIEWED_SIMILARITY = 0.93
REVIEWED_BASE = 0.6
REVIEWED_WEIGHT = 1.0
MAX_TAG_KEYWORD_SCORE = 0.6


class SentimentJudgement(BaseModel):
    sentiment: Sentiment | None = Field(default=None, description="None: no sentiment model; use the lexicon.")
    confidence: float = Field(default=0.0, ge=0, le=1, description="Calibrated probability that it is right.")
    probabilities: dict[str, float] = Field(default_factory=dict)


class DocHit(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    section: str
    category: str
    text: str
    similarity: float


class CaseHit(BaseModel):
    case: Case
    similarity: float


class KnowledgeBase:
    """Knowledge files validated against each other, mirrored into Chroma for semantic search."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store(settings.resolved_database_url)

    @cached_property
    def matrix(self) -> ServiceMatrix:
        return load_service_matrix(self.settings.service_matrix_path)

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return load_taxonomy(self.settings.taxonomy_path)

    @cached_property
    def docs(self) -> list[KnowledgeDoc]:
        return load_docs(self.settings.knowledge_dir / "docs")

    def cases(self) -> list[Case]:
        library = load_cases(self.settings.knowledge_dir / "cases")
        return library + self.recorded_cases()

    def recorded_cases(self) -> list[Case]:
        with self.store.session() as session:
            rows = session.scalars(select(RecordedCase).order_by(RecordedCase.recorded_at)).all()
            return [Case.model_validate(row.payload) for row in rows]

    def check(self) -> None:
        """Cross-file consistency: every owner named anywhere is a department of the matrix."""
        departments = set(self.matrix.department_names())
        for case in self.cases():
            if case.owner not in departments:
                raise KnowledgeError(f"case {case.id} names owner {case.owner!r} outside the service matrix")
        for doc in self.docs:
            if doc.owner and doc.owner not in departments:
                raise KnowledgeError(f"document {doc.id} names owner {doc.owner!r} outside the service matrix")

    def collection_items(self) -> dict[str, list[Item]]:
        return {DOCS: doc_items(self.docs), CASES: case_items(self.cases()),
                MATRIX: matrix_items(self.matrix), TAGS: tag_items(self.taxonomy)}

    def load(self, progress: Callable[[str, int, int], None] | None = None) -> list[SyncReport]:
        """Mirror the knowledge files into Chroma; unchanged items are not embedded again."""
        self.check()
        client = client_for(self.settings)
        reports = []
        for name, items in self.collection_items().items():
            def step(n: int, name: str = name, total: int = len(items)) -> None:
                if progress:
                    progress(name, n, total)
            reports.append(sync(collection(client, name), items, step,
                                embed=lambda texts: self.embedding_cache.embed(texts, "passage")))
        # The learned layer follows the knowledge it learns from: trained now, not on the first run.
        self.__dict__.pop("learned", None)
        if progress:
            progress("learned", 0, 1)
        _ = self.learned
        if progress:
            progress("learned", 1, 1)
        return reports

    def is_loaded(self) -> bool:
        """Every knowledge collection holds items (a new data directory holds none)."""
        try:
            return all(self.counts().values())
        except Exception:  # a Chroma directory that cannot be read is a knowledge base to load again
            return False

    def counts(self) -> dict[str, int]:
        client = client_for(self.settings)
        return {name: collection(client, name).count() for name in COLLECTIONS}

    # ------------------------------------------------------------ queries

    def search_docs(self, query: str, top_k: int = 5, category: str | None = None) -> list[DocHit]:
        hits = search(collection(client_for(self.settings), DOCS), query, top_k,
                      {"category": category} if category else None)
        return [DocHit(chunk_id=h.id, doc_id=h.metadata["doc_id"], title=h.metadata["title"],
                       section=h.metadata["section"], category=h.metadata["category"],
                       text=h.document.partition("\n")[2], similarity=h.similarity) for h in hits]

    def candidate_owners(self, text: str, channel: Channel | None = None, business: Business | None = None,
                         top_k: int = 3) -> list[OwnerCandidate]:
        """Owners from the service matrix for one voice: rule evidence plus semantic neighbours."""
        return self.candidate_owners_many([OwnerQuery(text=text, channel=channel, business=business)], top_k)[0]

    def candidate_owners_many(self, queries: list[OwnerQuery], top_k: int = 3) -> list[list[OwnerCandidate]]:
        """Owners ranked by the learned layer (rules are its features); each keeps the rule evidence
        of its best matrix entry as its reasons. Rules alone rank when no owner model could be trained."""
        vectors = self._query_vectors([q.text for q in queries])
        rules = self._owner_rule_scores(queries, vectors)
        if self.learned.owner is None:
            return [rank_owners(scored, top_k) for scored in rules]
        judged = self.judge_many(queries, frozenset({"owner"}), top_k, self._owner_prior(rules), vectors)
        return [learned_owners(judgement, scored) for judgement, scored in zip(judged, rules, strict=True)]

    def _owner_prior(self, rules: list[list[tuple[MatrixEntry, float, list[str]]]]) -> Prior:
        owners = self.matrix.department_names()
        return Prior(labels=owners, rows=np.array([rule_shares(scored, owners) for scored in rules]))

    def _examples_owner_prior(self, examples: list[LabelledVoice]) -> Prior:
        queries = [OwnerQuery(text=e.masked_text[:5000] or "？", channel=e.channel, business=e.business)
                   for e in examples]
        return self._owner_prior(self._owner_rule_scores(queries))

    def _owner_rule_scores(self, queries: list[OwnerQuery], vectors: np.ndarray | None = None
                           ) -> list[list[tuple[MatrixEntry, float, list[str]]]]:
        entries = self.matrix.entries
        vectors = self._query_vectors([q.text for q in queries]) if vectors is None else vectors
        similarity = vectors @ self._matrix_vectors.T
        reviewed = self._reviewed_neighbours(vectors, "owner_department")
        results = []
        for query, row, hint in zip([q.model_copy(update={"text": simplified(q.text)}) for q in queries], similarity,
                                    reviewed, strict=True):
            semantic = relative_top(row, SEMANTIC_POOL)
            scored = [self._score_entry(entry, query, semantic.get(i, 0.0)) for i, entry in enumerate(entries)]
            if hint is not None:
                scored = [with_review(item, item[0].owner, hint) for item in scored]
            results.append(scored)
        return results

    def judge_many(self, queries: list[OwnerQuery], labels: frozenset[str] = frozenset({"owner", "tag", "sentiment"}),
                   top_k: int = 3, owner_prior: Prior | None = None,
                   vectors: np.ndarray | None = None) -> list[Judgement]:
        """The learned layer's owner, tag, dimension and sentiment of each voice (`vectors`: the
        queries' e5 vectors when the caller has them already)."""
        texts = [q.text for q in queries]
        # Sentiment reads no vector: judging it alone embeds nothing.
        if vectors is None and labels - {"sentiment"}:
            vectors = self._query_vectors(texts)
        inputs = Inputs(texts=[simplified(mask_text(t)) for t in texts], channels=[q.channel for q in queries],
                        businesses=[q.business for q in queries], vectors=vectors)
        if "owner" in labels and owner_prior is None:
            owner_prior = self._owner_prior(self._owner_rule_scores(queries, vectors))
        return self.learned.judge(inputs, top_k, labels, owner_prior)

    def judge_sentiment_many(self, queries: list[OwnerQuery]) -> list[SentimentJudgement]:
        """The learned sentiment of each voice with its calibrated confidence (None: no model)."""
        if self.learned.sentiment is None:
            return [SentimentJudgement() for _ in queries]
        judged = self.judge_many(queries, frozenset({"sentiment"}), top_k=3)
        return [SentimentJudgement(sentiment=Sentiment(j.sentiment.label), confidence=j.sentiment.confidence,
                                   probabilities=dict(j.sentiment.ranked)) if j.sentiment else SentimentJudgement()
                for j in judged]

    @cached_property
    def learned(self) -> LearnedLayer:
        """The learned layer for the current sources: loaded when stored, trained (seconds) when not."""
        definitions = self._stored_vectors(TAGS, [i.id for i in tag_items(self.taxonomy) if i.id.endswith("-def")])
        return load_or_train(self.settings.resolved_data_dir / MODELS_DIR, self.learning_examples(),
                             owner_rules(self.matrix, self._matrix_vectors), tag_rules(self.taxonomy, definitions),
                             {t.path: str(t.dimension) for t in self.taxonomy.tags}, self._query_vectors,
                             self._examples_owner_prior)

    def learning_examples(self) -> list[LabelledVoice]:
        """Every labelled source: the knowledge base's examples, the bank's labelled history
        (`voc learn`) and the analysts' corrections."""
        corrections = [LabelledVoice(text=text, source="correction", weight=WEIGHT_CORRECTION,
                                     owner=c.owner_department, tag=c.tag, sentiment=c.sentiment)
                       for text, c in self._reviewed[0]]
        return [*knowledge_examples(self.taxonomy, self.matrix, self.settings.knowledge_dir),
                *history_examples(self.store, self.taxonomy, self.matrix), *corrections]

    def _reviewed_neighbours(self, vectors: np.ndarray, field: str) -> list[tuple[str, float, str] | None]:
        """Per query, the corrected value of the closest reviewed voice when it is a near paraphrase:
        (value, bonus, voice id). Analysts' corrections are the offline engine's labelled examples."""
        labelled = [(c, getattr(c, field)) for _, c in self._reviewed[0]]
        if not labelled or len(vectors) == 0:
            return [None] * len(vectors)
        similarity = vectors @ self._reviewed[1].T
        hints: list[tuple[str, float, str] | None] = []
        for row in similarity:
            best = int(np.argmax(row))
            value = labelled[best][1]
            close = float(row[best]) >= REVIEWED_SIMILARITY and value is not None
            bonus = REVIEWED_WEIGHT * (float(row[best]) - REVIEWED_SIMILARITY) / (1 - REVIEWED_SIMILARITY)
            hints.append((value, REVIEWED_BASE + bonus, labelled[best][0].voice_id) if close else None)
        return hints

    @cached_property
    def _reviewed(self) -> tuple[list[tuple[str, Corrected]], np.ndarray]:
        from voc.reviews import ReviewDesk

        examples = ReviewDesk(self.store, self.matrix, self.taxonomy).examples()
        return examples, self.embedding_cache.embed([text for text, _ in examples], "query")

    def _score_entry(self, entry: MatrixEntry, query: OwnerQuery,
                     similarity: float) -> tuple[MatrixEntry, float, list[str]]:
        score, reasons = 0.0, []
        hits = [k for k in entry.keywords if k and k in query.text]
        if hits:
            score += min(MAX_KEYWORD_SCORE, KEYWORD_WEIGHT * len(hits))
            reasons.append(f"命中场景关键词「{'、'.join(hits)}」（{entry.scene}）")
        if query.business is not None and "*" not in entry.business:
            if query.business in entry.business:
                score += BUSINESS_MATCH
                reasons.append(f"业务类型{query.business.value}与场景一致")
            else:
                score += BUSINESS_MISMATCH
        if query.channel is not None and "*" not in entry.channels and query.channel in entry.channels:
            score += CHANNEL_MATCH
            reasons.append(f"渠道{query.channel.value}属于该场景")
        if similarity > 0:
            score += SEMANTIC_WEIGHT * similarity
            reasons.append(f"语义近似场景「{entry.scene}」")
        return entry, score, reasons

    def suggest_tags_many(self, texts: list[str], top_k: int = 3) -> list[list[TagSuggestion]]:
        """Taxonomy tags for voices: data-dictionary keywords plus nearest tag examples/definitions."""
        tags = self.taxonomy.tags
        item_tags, vectors = self._tag_vectors
        queries = self._query_vectors(texts)
        similarity = queries @ vectors.T
        reviewed = self._reviewed_neighbours(queries, "tag")
        index = {t.path: i for i, t in enumerate(tags)}
        results = []
        for text, row, hint in zip([simplified(t) for t in texts], similarity, reviewed, strict=True):
            per_tag = np.full(len(tags), -1.0, dtype=np.float32)
            np.maximum.at(per_tag, [index[t] for t in item_tags], row)
            neighbour = relative_top(per_tag, TAG_POOL)
            scored = []
            for i, tag in enumerate(tags):
                hits = [k for k in tag.keywords if k and k in text]
                keyword = min(MAX_TAG_KEYWORD_SCORE, sum(keyword_weight(k) for k in hits))
                score = TAG_NEIGHBOUR_WEIGHT * neighbour.get(i, 0.0) + keyword
                if hint is not None and hint[0] == tag.path:
                    score += hint[1]
                if score > 0:
                    scored.append(TagSuggestion(tag=tag.path, dimension=tag.dimension, score=round(score, 4),
                                                keyword_hits=hits, neighbour_similarity=round(float(per_tag[i]), 4)))
            scored.sort(key=lambda s: (-s.score, s.tag))
            results.append(scored if self.learned.tag else scored[:top_k])
        if self.learned.tag is None:
            return results
        judged = self.judge_many([OwnerQuery(text=t) for t in texts], frozenset({"tag"}), top_k)
        return [learned_tags(judgement, rules, self.taxonomy) for judgement, rules in zip(judged, results, strict=True)]

    def _query_vectors(self, texts: list[str]) -> np.ndarray:
        # Masked here, the one place every caller passes through, before text is embedded or cached.
        return self.embedding_cache.embed([mask_text(t) for t in texts], "query")

    @cached_property
    def embedding_cache(self) -> EmbeddingCache:
        return EmbeddingCache(self.settings.embedding_cache_path)

    @cached_property
    def _matrix_vectors(self) -> np.ndarray:
        ids = [e.id for e in self.matrix.entries]
        return self._stored_vectors(MATRIX, ids)

    @cached_property
    def _tag_vectors(self) -> tuple[list[str], np.ndarray]:
        items = tag_items(self.taxonomy)
        return [str(i.metadata["tag"]) for i in items], self._stored_vectors(TAGS, [i.id for i in items])

    def _stored_vectors(self, name: str, ids: list[str]) -> np.ndarray:
        """Vectors of knowledge items as Chroma holds them (embedded once by `voc kb load`)."""
        got = collection(client_for(self.settings), name).get(ids=ids, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"] if got["embeddings"] is not None else [], strict=True))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KnowledgeError(f"{len(missing)} items of {name} are not in the vector store: run `voc kb load`")
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def search_cases(self, query: str, top_k: int = 5, dimension: str | None = None,
                     business: Business | None = None) -> list[CaseHit]:
        filters = [{"dimension": dimension} if dimension else None,
                   {"business": business.value} if business else None]
        present = [f for f in filters if f]
        where = None if not present else present[0] if len(present) == 1 else {"$and": present}
        hits = search(collection(client_for(self.settings), CASES), query, top_k, where)
        return [CaseHit(case=Case.model_validate_json(h.metadata["payload"]), similarity=h.similarity)
                for h in hits]

    def get_case(self, case_id: str) -> Case | None:
        result = collection(client_for(self.settings), CASES).get(ids=[case_id], include=["metadatas"])
        metadatas = result["metadatas"] or []
        return Case.model_validate_json(str(metadatas[0]["payload"])) if metadatas else None

    def record_case(self, case: Case) -> Case:
        """Persist a case from the closed loop and make it searchable at once."""
        if case.owner not in self.matrix.department_names():
            raise KnowledgeError(f"owner {case.owner!r} is not a department of the service matrix")
        if self.get_case(case.id) is not None:
            raise KnowledgeError(f"case {case.id} already exists")
        with self.store.session() as session:
            session.add(RecordedCase(id=case.id, payload=case.model_dump(mode="json"),
                                     recorded_at=datetime.now(UTC)))
        coll = collection(client_for(self.settings), CASES)
        item = case_items([case])[0]
        coll.upsert(ids=[item.id], documents=[item.document], metadatas=[item.metadata])
        return case

    def next_case_id(self) -> str:
        numbers = [int(m.group(1)) for c in self.cases() if (m := re.match(r"CASE-(\d+)$", c.id))]
        return f"CASE-{max(numbers, default=0) + 1:03d}"
