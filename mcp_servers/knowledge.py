"""MCP server `knowledge`: the service matrix, the taxonomy with its data dictionary, and documents."""

import functools
from typing import Annotated, get_args

from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from mcp_servers.common import READ_ONLY, OwnerDepartment, VocServer, formerly
from voc.config import Settings, get_settings
from voc.kb_models import BoilerplateList, Dimension, KnowledgeDoc, ServiceMatrix, Taxonomy
from voc.kb_ranking import OwnerCandidate, OwnerQuery, TagSuggestion
from voc.knowledge import load_boilerplate, load_service_matrix, load_taxonomy
from voc.knowledge_base import DocHit, KnowledgeBase, SentimentJudgement
from voc.models import Business, Channel

MAX_RESULTS = 20
MAX_OWNERS = 12
MAX_BATCH = 500
CATEGORIES: tuple[str, ...] = get_args(KnowledgeDoc.model_fields["category"].annotation)

TAXONOMY_URI = "voc://knowledge/taxonomy"
MATRIX_URI = "voc://knowledge/service-matrix"

VoiceText = Annotated[str, Field(min_length=1, max_length=5000, description="The voice's (masked) text.")]
OwnerLimit = Annotated[int, Field(ge=1, le=MAX_OWNERS, validation_alias=formerly("top_k"),
                                  description=f"How many owner departments to return (1–{MAX_OWNERS}).")]
TagLimit = Annotated[int, Field(ge=1, le=MAX_RESULTS, validation_alias=formerly("top_k"),
                                description=f"How many tags to return (1–{MAX_RESULTS}).")]


class StrictOwnerQuery(OwnerQuery, extra="forbid"):
    """One voice to attribute: text, and optionally its channel and business."""


class OwnerCandidates(BaseModel):
    candidates: list[OwnerCandidate]


class DocHits(BaseModel):
    hits: list[DocHit]


class OwnerCandidatesBatch(BaseModel):
    results: list[list[OwnerCandidate]] = Field(description="One candidate list per query, in query order.")


class SentimentJudgements(BaseModel):
    results: list[SentimentJudgement] = Field(description="One judgement per query, in query order.")


class TagSuggestions(BaseModel):
    suggestions: list[TagSuggestion]


class TagSuggestionsBatch(BaseModel):
    results: list[list[TagSuggestion]] = Field(description="One suggestion list per text, in text order.")


def create_server(settings: Settings | None = None, kb: KnowledgeBase | None = None) -> VocServer:
    settings = settings or (kb.settings if kb else get_settings())
    server = VocServer("knowledge", settings=settings,
                       instructions="The bank's service matrix (服务矩阵对照表), root-cause taxonomy "
                       "(人机物法环 with data dictionary) and knowledge documents (standards, SLA, rules). "
                       f"Resources: {TAXONOMY_URI}, {MATRIX_URI}.")

    @functools.cache
    def base() -> KnowledgeBase:
        # Opened on the first call, after VocServer checked that the data directory holds data.
        return kb or KnowledgeBase(settings)

    @server.tool(name="candidate_owners", annotations=READ_ONLY)
    def candidate_owners_tool(
            text: VoiceText,
            channel: Annotated[Channel | None, Field(description="The voice's channel, if known.")] = None,
            business: Annotated[Business | None, Field(description="The voice's business line, if known.")] = None,
            limit: OwnerLimit = 3) -> OwnerCandidates:
        """Owner departments that could act on a voice, from the service matrix, best first, each with
        a score, a confidence share, the handling role, matched matrix entries and the reasons."""
        if not text.strip():
            raise ToolError("text is empty")
        return OwnerCandidates(candidates=base().candidate_owners(text, channel, business, limit))

    @server.tool(name="candidate_owners_batch", annotations=READ_ONLY)
    def candidate_owners_batch_tool(
            queries: Annotated[list[StrictOwnerQuery], Field(
                min_length=1, max_length=MAX_BATCH, description=f"Up to {MAX_BATCH} voices.")],
            limit: OwnerLimit = 3) -> OwnerCandidatesBatch:
        """candidate_owners for up to 500 voices in one call (text, channel, business each)."""
        plain: list[OwnerQuery] = list(queries)
        return OwnerCandidatesBatch(results=base().candidate_owners_many(plain, limit))

    @server.tool(name="judge_sentiment_batch", annotations=READ_ONLY)
    def judge_sentiment_batch_tool(
            queries: Annotated[list[StrictOwnerQuery], Field(
                min_length=1, max_length=MAX_BATCH, description=f"Up to {MAX_BATCH} voices.")]
            ) -> SentimentJudgements:
        """Sentiment (负面/中性/正面) of up to 500 voices from the learned layer, each with the calibrated
        probability that it is right and the model's probability of each sentiment."""
        plain: list[OwnerQuery] = list(queries)
        return SentimentJudgements(results=base().judge_sentiment_many(plain))

    @server.tool(name="suggest_tags", annotations=READ_ONLY)
    def suggest_tags_tool(text: VoiceText, limit: TagLimit = 3) -> TagSuggestions:
        """Taxonomy tags (L1>L2>L3 with dimension) for a voice, best first: data-dictionary keyword hits
        plus similarity to each tag's definition and examples."""
        if not text.strip():
            raise ToolError("text is empty")
        return TagSuggestions(suggestions=base().suggest_tags_many([text], limit)[0])

    @server.tool(name="suggest_tags_batch", annotations=READ_ONLY)
    def suggest_tags_batch_tool(
            texts: Annotated[list[Annotated[str, Field(max_length=5000)]], Field(
                min_length=1, max_length=MAX_BATCH, description=f"Up to {MAX_BATCH} voice texts.")],
            limit: TagLimit = 3) -> TagSuggestionsBatch:
        """suggest_tags for up to 500 voice texts in one call."""
        return TagSuggestionsBatch(results=base().suggest_tags_many(texts, limit))

    @server.tool(name="search_knowledge", annotations=READ_ONLY)
    def search_knowledge_tool(
            query: Annotated[str, Field(min_length=1, max_length=500, description="What to look for, in words.")],
            limit: Annotated[int, Field(ge=1, le=MAX_RESULTS, validation_alias=formerly("top_k"),
                                        description=f"How many passages to return (1–{MAX_RESULTS}).")] = 5,
            category: Annotated[str | None, Field(
                max_length=16, description="Only documents of this category: " + ", ".join(CATEGORIES) + ".")]
            = None) -> DocHits:
        """Semantic search over knowledge documents (service standards, SLA by priority, product and
        process rules, compliance requirements), best first; optional category filter."""
        if not query.strip():
            raise ToolError("query is empty")
        if category is not None and category not in CATEGORIES:
            raise ToolError(f"{category!r} is not a category; known: {', '.join(CATEGORIES)}")
        return DocHits(hits=base().search_docs(query, limit, category))

    @server.tool(name="get_taxonomy", annotations=READ_ONLY)
    def get_taxonomy_tool(
            dimension: Annotated[Dimension | None, Field(description="Only the tags of this dimension.")] = None,
    ) -> Taxonomy:
        """The root-cause taxonomy: dimensions 人机物法环 and L1>L2>L3 tags, each with definition, use
        when, don't use when and examples (the data dictionary); optionally one dimension only."""
        taxonomy = base().taxonomy
        if dimension is None:
            return taxonomy
        return taxonomy.model_copy(update={"tags": [t for t in taxonomy.tags if t.dimension == dimension]})

    @server.tool(name="get_boilerplate", annotations=READ_ONLY)
    def get_boilerplate_tool() -> BoilerplateList:
        """Text that is not a customer's problem and is stripped before clustering and naming:
        channel preambles (12378 referrals, ticket templates), call openers, stock phrases and ASR fillers."""
        return load_boilerplate(settings.knowledge_dir / "boilerplate.yaml")

    @server.tool(name="get_service_matrix", annotations=READ_ONLY)
    def get_service_matrix_tool(
            owner: Annotated[OwnerDepartment, Field(description="Only the entries of this owner department.")]
            = None) -> ServiceMatrix:
        """The service matrix: owner departments with their scope, and channel × business × scene
        entries with owner and handling role; optionally the entries of one owner only."""
        matrix = base().matrix
        if owner is None:
            return matrix
        if owner not in matrix.department_names():
            raise ToolError(f"{owner!r} is not a department; known: {', '.join(matrix.department_names())}")
        return matrix.model_copy(update={"entries": [e for e in matrix.entries if e.owner == owner]})

    # Resources: the same knowledge as documents an assistant can attach. Read from the knowledge
    # files, so they need no data directory.
    @server.resource(TAXONOMY_URI, name="taxonomy", title="根因分类与数据字典 (taxonomy)",
                     mime_type="application/json",
                     description="The root-cause taxonomy: 人机物法环 dimensions, L1>L2>L3 tags with the data "
                     "dictionary (definition, use when, don't use when, examples), version and changelog.")
    def taxonomy_resource() -> str:
        return (kb.taxonomy if kb else load_taxonomy(settings.taxonomy_path)).model_dump_json(indent=1)

    @server.resource(MATRIX_URI, name="service-matrix", title="服务矩阵对照表 (service matrix)",
                     mime_type="application/json",
                     description="Owner departments with their scope, and channel × business × scene entries "
                     "with owner department and handling role.")
    def matrix_resource() -> str:
        return (kb.matrix if kb else load_service_matrix(settings.service_matrix_path)).model_dump_json(indent=1)

    return server
