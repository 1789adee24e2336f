"""MCP server `cases`: the library of past complaint-reduction cases, and recording new ones."""

import functools
from typing import Annotated

from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcp_servers.common import READ_ONLY, WRITES, VocServer, formerly, invalid_arguments
from voc.config import Settings, get_settings
from voc.kb_models import Case, Dimension, EffectFigure
from voc.knowledge_base import CaseHit, KnowledgeBase
from voc.models import Business, Channel

MAX_RESULTS = 20
Measure = Annotated[str, Field(min_length=1, max_length=2000)]


class CaseHits(BaseModel):
    hits: list[CaseHit]


class NewCase(BaseModel):
    """A case to record; the id is assigned when omitted."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=64, description="e.g. CASE-053; assigned when omitted.")
    title: str = Field(min_length=2, max_length=200)
    problem: str = Field(min_length=2, max_length=2000)
    channel: Channel | None = None
    business: Business
    dimension: Dimension
    tag: str | None = Field(default=None, max_length=128, description="Taxonomy tag L1>L2>L3.")
    root_cause: str = Field(min_length=2, max_length=2000)
    short_term_measures: list[Measure] = Field(min_length=1, max_length=50)
    long_term_measures: list[Measure] = Field(min_length=1, max_length=50)
    owner: str = Field(max_length=100, description="An owner department of the service matrix.")
    effect: list[EffectFigure] = Field(min_length=1, max_length=20, description="Before/after figures.")
    period: str = Field(max_length=32, description="When the fix ran, e.g. 2026Q4.")
    source: str = Field(default="闭环沉淀", max_length=16, description="本行 / 行业案例 / 闭环沉淀")


def create_server(settings: Settings | None = None, kb: KnowledgeBase | None = None) -> VocServer:
    settings = settings or (kb.settings if kb else get_settings())
    server = VocServer("cases", settings=settings, creates_data={"record_case"},
                       instructions="Past complaint-reduction cases (problem, root cause, measures, "
                       "owner, before/after effect): search, fetch, and record verified fixes.")

    @functools.cache
    def base() -> KnowledgeBase:
        # Opened on the first call, after VocServer checked that the data directory holds data.
        return kb or KnowledgeBase(settings)

    @server.tool(name="search_cases", annotations=READ_ONLY)
    def search_cases_tool(
            query: Annotated[str, Field(min_length=1, max_length=500, description="The problem, in words.")],
            dimension: Annotated[Dimension | None, Field(description="Only cases of this dimension (人机物法环).")]
            = None,
            business: Annotated[Business | None, Field(description="Only cases of this business line.")] = None,
            limit: Annotated[int, Field(ge=1, le=MAX_RESULTS, validation_alias=formerly("top_k"),
                                        description=f"How many cases to return (1–{MAX_RESULTS}).")] = 5,
    ) -> CaseHits:
        """Semantic search over past cases, best first, optionally only one dimension (人/机/物/法/环) or business."""
        if not query.strip():
            raise ToolError("query is empty")
        return CaseHits(hits=base().search_cases(query, limit, dimension, business))

    @server.tool(name="get_case", annotations=READ_ONLY)
    def get_case_tool(
            case_id: Annotated[str, Field(min_length=1, max_length=64, description="A case id, e.g. CASE-012.")],
    ) -> Case:
        """One case by id, e.g. CASE-012."""
        case = base().get_case(case_id)
        if case is None:
            raise ToolError(f"no case with id {case_id!r}")
        return case

    @server.tool(name="record_case", annotations=WRITES)
    def record_case_tool(case: Annotated[NewCase, Field(description="The verified fix to record.")]) -> Case:
        """Record a verified fix as a new case so later proposals can cite it (the closed loop).
        The owner must be a department of the service matrix; the id must be new."""
        payload = case.model_dump() | {"id": case.id or base().next_case_id()}
        try:
            checked = Case.model_validate(payload)
        except ValidationError as error:
            raise ToolError(invalid_arguments(error, [])) from error
        return base().record_case(checked)

    return server
