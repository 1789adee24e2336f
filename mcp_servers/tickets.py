"""MCP server `tickets`: read access to the stored voices (客户声音) of every channel."""

from __future__ import annotations

from datetime import date

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel

from mcp_servers.common import READ_ONLY, check_limit, resolve_period
from voc.config import Settings, get_settings
from voc.models import Business, Channel, FunnelTier, Segment, SourceType
from voc.reviews import Corrected, ReviewDesk
from voc.storage import Store
from voc.voice_queries import (
    Comparison,
    Counts,
    GroupBy,
    VoiceFilter,
    VoicePage,
    VoiceRecord,
    compare_periods,
    count_voices,
    get_voice,
    sample_voices,
    search_voices,
)

MAX_SAMPLE = 20


class VoiceSample(BaseModel):
    items: list[VoiceRecord]


class Corrections(BaseModel):
    items: list[Corrected]


MAX_CORRECTION_IDS = 500


def create_server(settings: Settings | None = None) -> FastMCP:
    settings = settings or get_settings()
    store = Store(settings.resolved_database_url)
    server = FastMCP("tickets", log_level="WARNING",
                     instructions="Voices of the customer (masked) from all service channels: "
                     "search, fetch, count and compare periods. Periods are ISO weeks or local date ranges.")

    def where(week: str | None, date_from: date | None, date_to: date | None, **filters: object) -> VoiceFilter:
        period = resolve_period(week, date_from, date_to)
        return VoiceFilter(date_from=period.start, date_to=period.end, **filters)  # type: ignore[arg-type]

    @server.tool(name="search_voices", annotations=READ_ONLY)
    def search_voices_tool(week: str | None = None, date_from: date | None = None, date_to: date | None = None,
                           channel: Channel | None = None, business: Business | None = None,
                           segment: Segment | None = None, funnel_tier: FunnelTier | None = None,
                           source_type: SourceType | None = None, query: str | None = None,
                           include_duplicates: bool = False, offset: int = 0, limit: int = 50,
                           after: str | None = None) -> VoicePage:
        """Search voices of a period (week like 2026-W47, or date_from/date_to) by channel, business,
        customer segment, funnel tier, source type and words in the text, in time order. Paged by
        offset + limit, or for long reads by passing a page's next_cursor as `after`."""
        check_limit(limit, settings.max_page_size)
        if offset < 0:
            raise ToolError("offset must be ≥ 0")
        filters = where(week, date_from, date_to, channel=channel, business=business, segment=segment,
                        funnel_tier=funnel_tier, source_type=source_type, query=query,
                        include_duplicates=include_duplicates)
        try:
            return search_voices(store, filters, offset, limit, after)
        except ValueError as error:
            raise ToolError(str(error)) from error

    @server.tool(name="get_corrections", annotations=READ_ONLY)
    def get_corrections_tool(voice_ids: list[str]) -> Corrections:
        """Analysts' corrections (人工复核) of these voices: the current owner, dimension, tag and
        sentiment they set, with who and when. At most 500 ids per call."""
        if len(voice_ids) > MAX_CORRECTION_IDS:
            raise ToolError(f"at most {MAX_CORRECTION_IDS} voice ids per call")
        return Corrections(items=list(ReviewDesk(store).latest(voice_ids).values()))

    @server.tool(name="get_voice", annotations=READ_ONLY)
    def get_voice_tool(voice_id: str) -> VoiceRecord:
        """Fetch one voice by its id, with its masked text and metadata."""
        voice = get_voice(store, voice_id)
        if voice is None:
            raise ToolError(f"no voice with id {voice_id!r}")
        return voice

    @server.tool(name="count_voices", annotations=READ_ONLY)
    def count_voices_tool(group_by: GroupBy, week: str | None = None, date_from: date | None = None,
                          date_to: date | None = None, channel: Channel | None = None,
                          business: Business | None = None, segment: Segment | None = None,
                          query: str | None = None) -> Counts:
        """Count voices of a period grouped by channel, business, day, week, segment, funnel_tier or
        source_type, with distinct customers per group."""
        filters = where(week, date_from, date_to, channel=channel, business=business, segment=segment, query=query)
        return count_voices(store, group_by, filters)

    @server.tool(name="compare_periods", annotations=READ_ONLY)
    def compare_periods_tool(group_by: GroupBy, week: str | None = None, date_from: date | None = None,
                             date_to: date | None = None, previous_from: date | None = None,
                             previous_to: date | None = None, channel: Channel | None = None,
                             business: Business | None = None, segment: Segment | None = None,
                             query: str | None = None) -> Comparison:
        """Compare a period with an earlier one (default: the same length just before), per group:
        counts, change, growth and a Poisson z score flagging significant rises."""
        current = resolve_period(week, date_from, date_to)
        previous = resolve_period(None, previous_from, previous_to) if previous_from or previous_to else None
        filters = VoiceFilter(channel=channel, business=business, segment=segment, query=query)
        return compare_periods(store, group_by, current, previous, filters)

    @server.tool(name="sample_voices", annotations=READ_ONLY)
    def sample_voices_tool(week: str | None = None, date_from: date | None = None, date_to: date | None = None,
                           channel: Channel | None = None, business: Business | None = None,
                           segment: Segment | None = None, query: str | None = None, n: int = 5) -> VoiceSample:
        """Representative voices of a selection: typical of it and different from each other."""
        check_limit(n, MAX_SAMPLE, "n")
        filters = where(week, date_from, date_to, channel=channel, business=business, segment=segment, query=query)
        return VoiceSample(items=sample_voices(store, filters, n))

    return server
