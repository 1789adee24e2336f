"""The figures of the weekly 《客户心声》 report, gathered from the store, the week's run outputs and
the proposals' lifecycle. Every number the report prints comes from a field of `ReportData`."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select

from voc.contracts import (
    Cluster,
    Dimension,
    Priority,
    Proposal,
    ProposalStatus,
    RunOutputs,
    RunSummary,
    Sentiment,
    VoiceResult,
)
from voc.lifecycle import ProposalBook, ProposalView
from voc.models import FUNNEL_LABELS, LOCAL_TZ, FunnelTier, Segment
from voc.periods import Period
from voc.pii import mask_text
from voc.report.cards import (
    IncidentView,
    OwnerLine,
    ProposalCard,
    UnproposedView,
    build_cards,
    build_incidents,
    build_unproposed,
    owner_index,
    source_titles,
)
from voc.storage import Store, VoiceRow
from voc.voice_queries import Comparison, GroupBy, VoiceFilter, compare_periods, count_voices

REPORT_SEGMENTS = (Segment.ELDERLY, Segment.CORPORATE, Segment.PRIVATE_BANKING)
QUOTE_CHARS = 80
QUOTES_PER_PROBLEM = 2
FUNNEL_NOTE = ("漏斗各层级是客户进入的不同途径，每条声音只计入一个层级，层级之间不是子集关系，"
               "因此不计算“本层级/上一层级”的转化率；只列出有包含关系的比例：投诉及监管转送占全部声音（升级率），"
               "监管投诉占投诉及监管转送。")


class Figure(BaseModel):
    name: str
    current: int
    previous: int

    @property
    def change(self) -> int:
        return self.current - self.previous

    @property
    def growth(self) -> float | None:
        return None if self.previous == 0 else self.current / self.previous - 1


class FunnelStep(Figure):
    tier: int
    share: float | None = None  # this tier's part of all voices of the week (every tier is a subset of them)


class NestedRatio(BaseModel):
    """A ratio between funnel tiers that nest: the part is a subset of the whole. Tiers 1–6 are separate
    routes a customer takes, not successive filters, so "tier over the tier above it" is no conversion
    rate; the escalated voices (tiers 5–6) and, within them, the regulator referrals (tier 6) do nest."""

    name: str
    part: str
    whole: str
    current_part: int
    current_whole: int
    previous_part: int
    previous_whole: int

    @property
    def current(self) -> float | None:
        return self.current_part / self.current_whole if self.current_whole else None

    @property
    def previous(self) -> float | None:
        return self.previous_part / self.previous_whole if self.previous_whole else None


class DimensionShare(Figure):
    dimension: Dimension
    share: float
    previous_share: float


class Quote(BaseModel):
    voice_id: str
    channel: str
    segment: str
    text: str


class Problem(Cluster):
    """A cluster of the run as the report shows it: with masked quotes and its proposal, if any."""

    quotes: list[Quote]
    proposal_id: str | None = None

    @property
    def top_channels(self) -> list[tuple[str, int]]:
        return _top(self.channels)

    @property
    def top_segments(self) -> list[tuple[str, int]]:
        return _top(self.segments)


class SegmentView(Figure):
    negatives: int
    top_tags: list[tuple[str, int]]


class ReportData(BaseModel):
    week: str
    period: Period
    previous_period: Period
    run_id: str
    engine: str
    as_of: date
    generated_at: datetime
    headline: list[Figure]
    first_week: bool = False  # no voice in the previous period: no comparison is possible
    funnel: list[FunnelStep]
    funnel_ratios: list[NestedRatio]
    dimensions: list[DimensionShare]
    problems: list[Problem]
    incidents: list[IncidentView]
    cards: list[ProposalCard]
    unproposed: list[UnproposedView]
    segments: list[SegmentView]
    earlier: list[ProposalView]

    @property
    def empty(self) -> bool:
        """The period has no voice at all (a holiday week, a new installation, a wrong week)."""
        return self.headline[0].current == 0

    @property
    def spikes(self) -> list[Problem]:
        return [p for p in self.problems if p.rising]

    @property
    def priority_counts(self) -> dict[str, int]:
        counts = Counter(p.priority.value for p in self.problems)
        return {p.value: counts[p.value] for p in Priority if counts[p.value]}

    @property
    def listed_problems(self) -> list[Problem]:
        """The problems the report lists one per row: P1–P3, and any P4 that has a proposal."""
        return [p for p in self.problems if p.priority is not Priority.P4 or p.proposal_id]

    @property
    def watched_problems(self) -> list[Problem]:
        """P4 problems without a proposal: named in one line, not a row each."""
        return [p for p in self.problems if p.priority is Priority.P4 and not p.proposal_id]

    @property
    def unproposed_ids(self) -> set[str]:
        return {u.cluster_id for u in self.unproposed}

    @property
    def funnel_note(self) -> str:
        return FUNNEL_NOTE

    @property
    def proposal_count(self) -> int:
        return len(self.cards)

    @property
    def owners(self) -> list[OwnerLine]:
        return owner_index(self.cards)

    @property
    def earlier_status(self) -> dict[str, int]:
        counts = Counter(p.status.value for p in self.earlier)
        overdue = sum(p.overdue for p in self.earlier)
        return {s.value: counts.get(s.value, 0) for s in ProposalStatus} | {"逾期": overdue}


def build_report(store: Store, run_dir: Path, as_of: date | None = None,
                 knowledge_dir: Path | None = None) -> ReportData:
    """`knowledge_dir` gives the titles of the cases and documents the measures cite (ids alone without it)."""
    outputs = RunOutputs.load(run_dir)
    run = outputs.summary
    period = Period(start=run.period.start, end=run.period.end)
    previous = Period(start=run.previous_period.start, end=run.previous_period.end)
    funnel = compare_periods(store, GroupBy.FUNNEL_TIER, period)
    as_of = as_of or datetime.now(LOCAL_TZ).date()
    tracked = {p.proposal_id: p for p in ProposalBook(store).list(today=as_of)}
    voices = _period_voices(store, period)
    first_week = run.counts.previous_voices == 0
    clusters = {c.cluster_id: c for c in outputs.clusters}
    incidents = build_incidents(run.incidents, clusters, outputs.proposals, first_week)
    return ReportData(
        week=period.label, period=period, previous_period=previous, run_id=run.run_id, engine=run.engine,
        as_of=as_of, generated_at=datetime.now(LOCAL_TZ), first_week=first_week,
        headline=_headline(store, period, funnel, run),
        funnel=_funnel(funnel), funnel_ratios=_ratios(funnel), dimensions=_dimensions(outputs.voices, run),
        problems=_problems(outputs.clusters, outputs.proposals, voices), incidents=incidents,
        cards=build_cards(outputs.proposals, clusters, {i.incident_id: i for i in incidents}, tracked, period.label,
                          first_week, source_titles(store, knowledge_dir)),
        unproposed=build_unproposed(run.unproposed, clusters),
        segments=_segments(store, period, outputs.voices, voices),
        earlier=[p for p in tracked.values() if p.first_week < period.label])


def _period_voices(store: Store, period: Period) -> dict[str, VoiceRow]:
    with store.session() as session:
        statement = VoiceFilter.for_period(period).apply(select(VoiceRow))
        return {row.id: row for row in session.scalars(statement)}


def _headline(store: Store, period: Period, funnel: Comparison, run: RunSummary) -> list[Figure]:
    escalated = {int(FunnelTier.COMPLAINT), int(FunnelTier.REGULATOR)}
    complaints = [r for r in funnel.rows if int(r.key) in escalated]
    customers = [_customers(store, p) for p in (period, period.previous())]
    counts = run.counts
    return [
        Figure(name="客户声音（去重后）", current=funnel.current_total, previous=funnel.previous_total),
        Figure(name="负面声音", current=counts.negative, previous=counts.previous_negative),
        Figure(name="投诉及监管转送", current=sum(r.current for r in complaints),
               previous=sum(r.previous for r in complaints)),
        Figure(name="涉及客户", current=customers[0], previous=customers[1]),
    ]


def _customers(store: Store, period: Period) -> int:
    counts = count_voices(store, GroupBy.WEEK, VoiceFilter.for_period(period))
    return sum(r.customers for r in counts.rows)


def _funnel(funnel: Comparison) -> list[FunnelStep]:
    by_tier = {int(r.key): r for r in funnel.rows}
    total = sum(r.current for r in funnel.rows)
    steps: list[FunnelStep] = []
    for tier in FunnelTier:
        row = by_tier.get(int(tier))
        current, previous = (row.current, row.previous) if row else (0, 0)
        steps.append(FunnelStep(name=FUNNEL_LABELS[tier], tier=int(tier), current=current, previous=previous,
                                share=current / total if total else None))
    return steps


def _ratios(funnel: Comparison) -> list[NestedRatio]:
    """Only ratios whose part is a subset of the whole (see NestedRatio)."""
    by_tier = {int(r.key): r for r in funnel.rows}

    def volume(tiers: tuple[FunnelTier, ...], previous: bool) -> int:
        rows = [by_tier[int(t)] for t in tiers if int(t) in by_tier]
        return sum(r.previous if previous else r.current for r in rows)

    escalated, regulator = (FunnelTier.COMPLAINT, FunnelTier.REGULATOR), (FunnelTier.REGULATOR,)
    every = tuple(FunnelTier)
    pairs = [("升级率", "投诉及监管转送", "全部声音", escalated, every),
             ("监管转送占比", "监管投诉", "投诉及监管转送", regulator, escalated)]
    return [NestedRatio(name=name, part=part, whole=whole, current_part=volume(p, False),
                        current_whole=volume(w, False), previous_part=volume(p, True), previous_whole=volume(w, True))
            for name, part, whole, p, w in pairs]


def _dimensions(results: list[VoiceResult], run: RunSummary) -> list[DimensionShare]:
    now = Counter(r.dimension for r in results if r.sentiment is Sentiment.NEGATIVE)
    before = run.counts.previous_dimensions  # runs before this field existed report zeros
    total, total_before = sum(now.values()) or 1, sum(before.values()) or 1
    return [DimensionShare(name=f"{d}·{d.label}", dimension=d, current=now.get(d, 0),
                           previous=before.get(d, 0), share=now.get(d, 0) / total,
                           previous_share=before.get(d, 0) / total_before) for d in Dimension]


def _quote(row: VoiceRow) -> Quote:
    return Quote(voice_id=row.id, channel=row.channel, segment=row.customer_segment,
                 text=mask_text(row.text)[:QUOTE_CHARS])


def _problems(clusters: list[Cluster], proposals: list[Proposal], voices: dict[str, VoiceRow]) -> list[Problem]:
    proposal_of = {c: p.proposal_id for p in proposals for c in [*p.cluster_ids, p.cluster_id]}
    problems = []
    for c in sorted(clusters, key=lambda c: (c.priority.rank, -c.size, c.cluster_id)):
        quotes = [_quote(voices[i]) for i in c.representative_voice_ids[:QUOTES_PER_PROBLEM] if i in voices]
        problems.append(Problem(**dict(c), quotes=quotes, proposal_id=proposal_of.get(c.cluster_id)))
    return problems


def _top(counts: dict[str, int], n: int = 3) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _segments(store: Store, period: Period, results: list[VoiceResult],
              voices: dict[str, VoiceRow]) -> list[SegmentView]:
    comparison = {r.key: r for r in compare_periods(store, GroupBy.SEGMENT, period).rows}
    negative = [r for r in results if r.sentiment is Sentiment.NEGATIVE and r.id in voices]
    views = []
    for segment in REPORT_SEGMENTS:
        row = comparison.get(segment)
        tags = Counter(r.tag for r in negative if voices[r.id].customer_segment == segment)
        views.append(SegmentView(name=segment, current=row.current if row else 0, previous=row.previous if row else 0,
                                 negatives=sum(tags.values()), top_tags=_top(dict(tags))))
    return views
