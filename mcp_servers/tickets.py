"""MCP server `tickets`: read access to the stored voices (客户声音) of every channel."""

# No `from __future__ import annotations`: the tools' annotations are evaluated where they are
# defined, so a bound can come from the settings (the page size).

import functools
from datetime import date
from typing import Annotated

from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from mcp_servers.common import (
    LATEST_WEEK_HINT,
    READ_ONLY,
    DateFrom,
    DateTo,
    Offset,
    OwnerDepartment,
    VocServer,
    Week,
    formerly,
    latest_run_label,
    resolve_period,
)
from voc.config import Settings, get_settings
from voc.kb_models import Dimension
from voc.models import Business, Channel, FunnelTier, Segment, SourceType
from voc.periods import Period
from voc.reviews import Corrected, ReviewDesk
from voc.storage import Store
from voc.voice_queries import (
    Comparison,
    Counts,
    GroupBy,
    LabelFilter,
    Priority,
    Sentiment,
    VoiceFilter,
    VoicePage,
    VoiceRecord,
    compare_periods,
    count_voices,
    get_voice,
    labelled_voices,
    sample_voices,
    search_voices,
)

MAX_SAMPLE = 20
MAX_CORRECTION_IDS = 500

ChannelArg = Annotated[Channel | None, Field(description="Only voices of this channel.")]
BusinessArg = Annotated[Business | None, Field(description="Only voices about this business line.")]
SegmentArg = Annotated[Segment | None, Field(description="Only voices of this customer segment (客群).")]
TierArg = Annotated[FunnelTier | None, Field(
    description="Only this tier of the service funnel: 1 robot, 2 human agent, 3 online feedback, 4 staff, "
                "5 complaint, 6 regulator.")]
SourceArg = Annotated[SourceType | None, Field(description="Only voices from this kind of source.")]
QueryArg = Annotated[str | None, Field(
    max_length=200, description="Words to find in the text. The query is cut into words (jieba) and every word "
    "must occur, in any order: 信用卡投诉 finds the voices with both 信用卡 and 投诉.")]
GroupByArg = Annotated[GroupBy, Field(description="What to count by.")]
VoiceId = Annotated[str, Field(min_length=1, max_length=64, description="A voice id, as search_voices returns it.")]

# Filters on the labels of the period's latest weekly run (its voices.jsonl and clusters.json).
_RUN = " From the period's latest weekly run: needs one (`voc run`)."
SentimentArg = Annotated[Sentiment | None, Field(description="Only voices of this sentiment." + _RUN)]
OwnerArg = Annotated[OwnerDepartment, Field(description="Only voices attributed to this owner department "
                                            "(责任部门), e.g. 信息科技部." + _RUN)]
DimensionArg = Annotated[Dimension | None, Field(description="Only voices of this root-cause dimension "
                                                 "(人机物法环)." + _RUN)]
TagArg = Annotated[str | None, Field(max_length=128, description="Only voices with this taxonomy tag (L1>L2>L3); "
                                     "an L1 or L1>L2 prefix takes every tag below it." + _RUN)]
ClusterArg = Annotated[str | None, Field(max_length=64, description="Only voices of this problem (cluster_id, "
                                         "see list_problems)." + _RUN)]
PriorityArg = Annotated[Priority | None, Field(description="Only voices of problems of this priority." + _RUN)]


class VoiceSample(BaseModel):
    items: list[VoiceRecord]


class Corrections(BaseModel):
    items: list[Corrected]


def create_server(settings: Settings | None = None) -> VocServer:
    settings = settings or get_settings()
    server = VocServer("tickets", settings=settings,
                       instructions="Voices of the customer (masked) from all service channels: search, fetch, "
                       "count and compare periods, also by the latest weekly run's labels (sentiment, owner, "
                       "dimension, tag, problem, priority). Periods are ISO weeks or local date ranges. Paging: "
                       "limit, offset, cursor.")

    @functools.cache
    def store() -> Store:
        # Opened on the first call, after VocServer checked that the data directory holds data.
        return Store(settings.resolved_database_url)

    def labelled(filters: VoiceFilter, period: Period, labels: LabelFilter) -> tuple[VoiceFilter, str | None]:
        """Label filters become the ids of the voices the period's latest run gave those labels."""
        if not labels.active():
            return filters, None
        chosen = labelled_voices(settings.runs_dir, period, labels)
        return filters.model_copy(update={"voice_ids": chosen.voice_ids}), chosen.run_id

    page_cap = settings.max_page_size

    @server.tool(name="search_voices", annotations=READ_ONLY)
    def search_voices_tool(
            week: Week = None, date_from: DateFrom = None, date_to: DateTo = None,
            channel: ChannelArg = None, business: BusinessArg = None, segment: SegmentArg = None,
            funnel_tier: TierArg = None, source_type: SourceArg = None, query: QueryArg = None,
            sentiment: SentimentArg = None, owner_department: OwnerArg = None, dimension: DimensionArg = None,
            tag: TagArg = None, cluster_id: ClusterArg = None, priority: PriorityArg = None,
            include_duplicates: Annotated[bool, Field(
                description="Also the linked duplicates (one customer repeating a complaint).")] = False,
            limit: Annotated[int, Field(ge=1, le=page_cap,
                                        description=f"How many voices per page (1–{page_cap}).")] = 50,
            offset: Offset = 0,
            cursor: Annotated[str | None, Field(
                max_length=200, validation_alias=formerly("after", name="cursor"),
                description="A page's next_cursor, to read the page after it (for long reads: no rows are "
                            "rescanned).")] = None) -> VoicePage:
        """Search the voices of a period (a week like 2026-W47, or date_from/date_to) by channel, business,
        segment, funnel tier, source, words in the text and the latest run's labels (sentiment, owner
        department, dimension, tag, problem, priority), in time order. Page with limit + offset, or pass
        a page's next_cursor as cursor."""
        labels = LabelFilter(sentiment=sentiment, owner_department=owner_department, dimension=dimension, tag=tag,
                             cluster_id=cluster_id, priority=priority)
        period = resolve_period(week, date_from, date_to)
        filters, run_id = labelled(VoiceFilter.for_period(
            period, channel=channel, business=business, segment=segment, funnel_tier=funnel_tier,
            source_type=source_type, query=query, include_duplicates=include_duplicates), period, labels)
        return search_voices(store(), filters, offset, limit, cursor).model_copy(update={"run_id": run_id})

    @server.tool(name="get_corrections", annotations=READ_ONLY)
    def get_corrections_tool(
            voice_ids: Annotated[list[Annotated[str, Field(max_length=64)]], Field(
                max_length=MAX_CORRECTION_IDS,
                description=f"The voices to look up (at most {MAX_CORRECTION_IDS}).")]) -> Corrections:
        """Analysts' corrections (人工复核) of these voices: the current owner, dimension, tag and
        sentiment they set, with who and when."""
        return Corrections(items=list(ReviewDesk(store()).latest(voice_ids).values()))

    @server.tool(name="get_voice", annotations=READ_ONLY)
    def get_voice_tool(voice_id: VoiceId) -> VoiceRecord:
        """Fetch one voice by its id, with its masked text and metadata."""
        voice = get_voice(store(), voice_id)
        if voice is None:
            raise ToolError(f"no voice with id {voice_id!r}")
        return voice

    @server.tool(name="count_voices", annotations=READ_ONLY)
    def count_voices_tool(
            group_by: GroupByArg, week: Week = None, date_from: DateFrom = None, date_to: DateTo = None,
            channel: ChannelArg = None, business: BusinessArg = None, segment: SegmentArg = None,
            funnel_tier: TierArg = None, source_type: SourceArg = None, query: QueryArg = None,
            sentiment: SentimentArg = None, owner_department: OwnerArg = None, dimension: DimensionArg = None,
            tag: TagArg = None, cluster_id: ClusterArg = None, priority: PriorityArg = None) -> Counts:
        """Count the voices of a period grouped by channel, business, day, week, segment, funnel_tier or
        source_type, with distinct customers per group; the same filters as search_voices, including the
        latest run's labels (e.g. sentiment=负面 for the negative voices)."""
        labels = LabelFilter(sentiment=sentiment, owner_department=owner_department, dimension=dimension, tag=tag,
                             cluster_id=cluster_id, priority=priority)
        period = resolve_period(week, date_from, date_to)
        filters, run_id = labelled(VoiceFilter.for_period(
            period, channel=channel, business=business, segment=segment, funnel_tier=funnel_tier,
            source_type=source_type, query=query), period, labels)
        return count_voices(store(), group_by, filters).model_copy(update={"run_id": run_id})

    @server.tool(name="compare_periods", annotations=READ_ONLY)
    def compare_periods_tool(
            group_by: GroupByArg, week: Week = None, date_from: DateFrom = None, date_to: DateTo = None,
            previous_from: Annotated[date | None, Field(
                description="First day of the earlier period (default: the same length just before).")] = None,
            previous_to: Annotated[date | None, Field(description="Last day of the earlier period.")] = None,
            channel: ChannelArg = None, business: BusinessArg = None, segment: SegmentArg = None,
            query: QueryArg = None) -> Comparison:
        """Compare a period with an earlier one (default: the same length just before), per group:
        counts, change, growth and a Poisson z score flagging significant rises."""
        current = resolve_period(week, date_from, date_to)
        if (previous_from is None) != (previous_to is None):
            raise ToolError("give both previous_from and previous_to, or neither (the same length just before)")
        previous = resolve_period(None, previous_from, previous_to) if previous_from and previous_to else None
        filters = VoiceFilter(channel=channel, business=business, segment=segment, query=query)
        return compare_periods(store(), group_by, current, previous, filters)

    @server.tool(name="sample_voices", annotations=READ_ONLY)
    def sample_voices_tool(
            week: Week = None, date_from: DateFrom = None, date_to: DateTo = None,
            channel: ChannelArg = None, business: BusinessArg = None, segment: SegmentArg = None,
            query: QueryArg = None,
            limit: Annotated[int, Field(ge=1, le=MAX_SAMPLE, validation_alias=formerly("n"),
                                        description=f"How many voices (1–{MAX_SAMPLE}).")] = 5) -> VoiceSample:
        """Representative voices of a selection: typical of it and different from each other."""
        filters = VoiceFilter.for_period(resolve_period(week, date_from, date_to), channel=channel,
                                         business=business, segment=segment, query=query)
        return VoiceSample(items=sample_voices(store(), filters, limit))

    # ------------------------------------------------------------- prompts: the analyst's questions

    def week_or_latest(week: str | None) -> str:
        return week or latest_run_label(settings.runs_dir) or LATEST_WEEK_HINT

    @server.prompt(name="customer_quotes", title="给我看某业务某问题的客户原话",
                   description="Customers' own (masked) words about a problem of a business line in a week.")
    def customer_quotes(
            problem: Annotated[str, Field(description="The problem in a few words, e.g. 登录 验证码.")],
            business: Annotated[str | None, Field(
                description="The business line, e.g. 手机银行 (" + "、".join(b.value for b in Business) + ").")] = None,
            week: Annotated[str | None, Field(description="ISO week; default the latest week with a run.")] = None,
    ) -> str:
        label = week_or_latest(week)
        business_arg = f", business=\"{business}\"" if business else ""
        return (f"给我看 {label} {business or ''}「{problem}」问题的客户原话。\n\n"
                f"请用 tickets 的 search_voices(week=\"{label}\"{business_arg}, query=\"{problem}\", limit=10) "
                "取相关声音（query 会被切成词，每个词都须出现；没有结果时去掉 business 或减少词再试），"
                "需要代表性样本时用 sample_voices；逐条给出声音编号、渠道、日期和已脱敏的原话，"
                "并说明共有多少条（total）。"
                "不要改写或补全客户原话。")

    @server.prompt(name="segment_change", title="和上周相比某客群投诉有什么变化？",
                   description="How a customer segment's complaints changed against the week before.")
    def segment_change(
            segment: Annotated[str, Field(
                description="The customer segment: " + "、".join(s.value for s in Segment) + ".")],
            week: Annotated[str | None, Field(description="ISO week; default the latest week with a run.")] = None,
    ) -> str:
        label = week_or_latest(week)
        return (f"和上周相比，{segment} {label} 的投诉有什么变化？\n\n"
                f"请用 tickets 的 compare_periods(group_by=\"funnel_tier\", week=\"{label}\", segment=\"{segment}\") "
                "比较各服务层级（5 投诉、6 监管投诉）本期与上期的声量、增长和显著性，再用 "
                f"compare_periods(group_by=\"business\", …) 找出增加最多的业务；用 count_voices(group_by=\"business\", "
                f"week=\"{label}\", segment=\"{segment}\", sentiment=\"负面\") 看负面声音的分布；"
                f"用 search_voices(week=\"{label}\", segment=\"{segment}\", funnel_tier=5, limit=5) "
                "给出几条已脱敏的原话。"
                "只引用工具返回的数字，标明是否显著（|z| ≥ 1.96）。")

    return server
