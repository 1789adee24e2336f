"""MCP server `knowledge`: the service matrix, the taxonomy with its data dictionary, and documents."""

from __future__ import annotations

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from mcp_servers.common import READ_ONLY, check_limit
from voc.config import Settings, get_settings
from voc.kb_models import Dimension, ServiceMatrix, Taxonomy
from voc.knowledge_base import DocHit, KnowledgeBase, OwnerCandidate, OwnerQuery, TagSuggestion
from voc.models import Business, Channel

MAX_RESULTS = 20
MAX_BATCH = 500


class OwnerCandidates(BaseModel):
    candidates: list[OwnerCandidate]


class DocHits(BaseModel):
    hits: list[DocHit]


class OwnerCandidatesBatch(BaseModel):
    results: list[list[OwnerCandidate]] = Field(description="One candidate list per query, in query order.")


class TagSuggestions(BaseModel):
    suggestions: list[TagSuggestion]


class TagSuggestionsBatch(BaseModel):
    results: list[list[TagSuggestion]] = Field(description="One suggestion list per text, in text order.")


def create_server(settings: Settings | None = None, kb: KnowledgeBase | None = None) -> FastMCP:
    kb = kb or KnowledgeBase(settings or get_settings())
    server = FastMCP("knowledge", log_level="WARNING",
                     instructions="The bank's service matrix (服务矩阵对照表), root-cause taxonomy "
                     "(人机物法环 with data dictionary) and knowledge documents (standards, SLA, rules).")

    @server.tool(name="candidate_owners", annotations=READ_ONLY)
    def candidate_owners_tool(text: str, channel: Channel | None = None, business: Business | None = None,
                              top_k: int = 3) -> OwnerCandidates:
        """Owner departments that could act on a voice, from the service matrix, best first, each with
        a score, a confidence share, the handling role, matched matrix entries and the reasons."""
        check_limit(top_k, 12, "top_k")
        if not text.strip():
            raise ToolError("text is empty")
        return OwnerCandidates(candidates=kb.candidate_owners(text, channel, business, top_k))

    @server.tool(name="candidate_owners_batch", annotations=READ_ONLY)
    def candidate_owners_batch_tool(queries: list[OwnerQuery], top_k: int = 3) -> OwnerCandidatesBatch:
        """candidate_owners for up to 500 voices in one call (text, channel, business each)."""
        check_limit(len(queries), MAX_BATCH, "number of queries")
        check_limit(top_k, 12, "top_k")
        return OwnerCandidatesBatch(results=kb.candidate_owners_many(queries, top_k))

    @server.tool(name="suggest_tags", annotations=READ_ONLY)
    def suggest_tags_tool(text: str, top_k: int = 3) -> TagSuggestions:
        """Taxonomy tags (L1>L2>L3 with dimension) for a voice, best first: data-dictionary keyword hits
        plus similarity to each tag's definition and examples."""
        check_limit(top_k, MAX_RESULTS, "top_k")
        if not text.strip():
            raise ToolError("text is empty")
        return TagSuggestions(suggestions=kb.suggest_tags_many([text], top_k)[0])

    @server.tool(name="suggest_tags_batch", annotations=READ_ONLY)
    def suggest_tags_batch_tool(texts: list[str], top_k: int = 3) -> TagSuggestionsBatch:
        """suggest_tags for up to 500 voice texts in one call."""
        check_limit(len(texts), MAX_BATCH, "number of texts")
        check_limit(top_k, MAX_RESULTS, "top_k")
        return TagSuggestionsBatch(results=kb.suggest_tags_many(texts, top_k))

    @server.tool(name="search_knowledge", annotations=READ_ONLY)
    def search_knowledge_tool(query: str, top_k: int = 5, category: str | None = None) -> DocHits:
        """Semantic search over knowledge documents (service standards, SLA by priority, product and
        process rules, compliance requirements); optional category filter."""
        check_limit(top_k, MAX_RESULTS, "top_k")
        if not query.strip():
            raise ToolError("query is empty")
        return DocHits(hits=kb.search_docs(query, top_k, category))

    @server.tool(name="get_taxonomy", annotations=READ_ONLY)
    def get_taxonomy_tool(dimension: Dimension | None = None) -> Taxonomy:
        """The root-cause taxonomy: dimensions 人机物法环 and L1>L2>L3 tags, each with definition, use
        when, don't use when and examples (the data dictionary); optionally one dimension only."""
        taxonomy = kb.taxonomy
        if dimension is None:
            return taxonomy
        return taxonomy.model_copy(update={"tags": [t for t in taxonomy.tags if t.dimension == dimension]})

    @server.tool(name="get_service_matrix", annotations=READ_ONLY)
    def get_service_matrix_tool(owner: str | None = None) -> ServiceMatrix:
        """The service matrix: owner departments with their scope, and channel × business × scene
        entries with owner and handling role; optionally the entries of one owner only."""
        matrix = kb.matrix
        if owner is None:
            return matrix
        if owner not in matrix.department_names():
            raise ToolError(f"{owner!r} is not a department; known: {', '.join(matrix.department_names())}")
        return matrix.model_copy(update={"entries": [e for e in matrix.entries if e.owner == owner]})

    return server
