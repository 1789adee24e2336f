"""MCP server `cases`: the library of past complaint-reduction cases, and recording new ones."""

from __future__ import annotations

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from mcp_servers.common import READ_ONLY, WRITES, check_limit
from voc.config import Settings, get_settings
from voc.kb_models import Case, Dimension, EffectFigure
from voc.knowledge import KnowledgeError
from voc.knowledge_base import CaseHit, KnowledgeBase
from voc.models import Business, Channel

MAX_RESULTS = 20


class CaseHits(BaseModel):
    hits: list[CaseHit]


class NewCase(BaseModel):
    """A case to record; the id is assigned when omitted."""

    id: str | None = None
    title: str = Field(min_length=2)
    problem: str = Field(min_length=2)
    channel: Channel | None = None
    business: Business
    dimension: Dimension
    tag: str | None = None
    root_cause: str = Field(min_length=2)
    short_term_measures: list[str] = Field(min_length=1)
    long_term_measures: list[str] = Field(min_length=1)
    owner: str
    effect: list[EffectFigure] = Field(min_length=1)
    period: str
    source: str = "闭环沉淀"


def create_server(settings: Settings | None = None, kb: KnowledgeBase | None = None) -> FastMCP:
    kb = kb or KnowledgeBase(settings or get_settings())
    server = FastMCP("cases", log_level="WARNING",
                     instructions="Past complaint-reduction cases (problem, root cause, measures, "
                     "owner, before/after effect): search, fetch, and record verified fixes.")

    @server.tool(name="search_cases", annotations=READ_ONLY)
    def search_cases_tool(query: str, dimension: Dimension | None = None, business: Business | None = None,
                          top_k: int = 5) -> CaseHits:
        """Semantic search over past cases, optionally only one dimension (人/机/物/法/环) or business."""
        check_limit(top_k, MAX_RESULTS, "top_k")
        if not query.strip():
            raise ToolError("query is empty")
        return CaseHits(hits=kb.search_cases(query, top_k, dimension, business))

    @server.tool(name="get_case", annotations=READ_ONLY)
    def get_case_tool(case_id: str) -> Case:
        """One case by id, e.g. CASE-012."""
        case = kb.get_case(case_id)
        if case is None:
            raise ToolError(f"no case with id {case_id!r}")
        return case

    @server.tool(name="record_case", annotations=WRITES)
    def record_case_tool(case: NewCase) -> Case:
        """Record a verified fix as a new case so later proposals can cite it (the closed loop).
        The owner must be a department of the service matrix; the id must be new."""
        payload = case.model_dump() | {"id": case.id or kb.next_case_id()}
        try:
            return kb.record_case(Case.model_validate(payload))
        except KnowledgeError as exc:
            raise ToolError(str(exc)) from exc

    return server
