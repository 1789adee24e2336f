"""The report's proposal cards, incidents and problems left without a proposal.

A card carries everything an owner needs to act on one proposal: the problem, the root-cause finding,
its symptoms (for an incident, every problem it covers), the short- and long-term measures with the
source of each, the KPIs, the owner, the due date, the status in the closed loop and a few masked quotes.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select

from voc.contracts import TAG_SOURCE, Cluster, Incident, Kpi, Priority, Proposal, Unproposed
from voc.kb_models import Case, KnowledgeDoc
from voc.knowledge import KnowledgeError, load_cases, load_docs
from voc.lifecycle import ProposalView
from voc.pii import mask_text
from voc.storage import RecordedCase, Store

CARD_QUOTES = 2
CARD_QUOTE_CHARS = 60
NO_COMPARISON = "首周无对比"
TAG_LABEL = "数据词典·标签"
UNTRACKED = "未登记"  # a proposal of the run that the closed loop does not know (should not happen)


class Symptom(BaseModel):
    """One problem as a symptom line: its label, volume and trend."""

    cluster_id: str
    label: str
    priority: Priority
    current: int
    previous: int
    rising: bool
    trend: str


class MeasureLine(BaseModel):
    text: str
    source: str = ""  # CASE-…, KD-…, tag:L1>L2>L3, or empty when the run recorded none
    source_label: str = "—"  # the source in full: 案例 CASE-071《title》, 数据词典·标签「…」典型措施

    @property
    def source_short(self) -> str:
        """The source as a measure's tag: the id, or 数据词典·标签; the card lists them in full once."""
        return TAG_LABEL if self.source.startswith(TAG_SOURCE) else self.source or "—"


class CardQuote(BaseModel):
    voice_id: str
    text: str


class IncidentView(BaseModel):
    incident_id: str
    owner_department: str
    cause: str
    onset: date | None
    symptoms: list[Symptom]
    proposal_id: str | None = None

    @property
    def total(self) -> int:
        return sum(s.current for s in self.symptoms)


class ProposalCard(BaseModel):
    proposal_id: str
    priority: Priority
    owner_department: str
    dimension: str
    problem: str
    root_cause: str
    status: str
    due_date: date
    overdue: bool
    since_week: str | None = None  # the week a recurring problem was first raised, when earlier than this one
    incident: IncidentView | None = None
    symptoms: list[Symptom]
    short_term: list[MeasureLine]
    long_term: list[MeasureLine]
    kpis: list[Kpi]
    quotes: list[CardQuote]
    engine: str

    @property
    def sources(self) -> list[str]:
        """Every source the measures cite, in full and once each, in the order the measures cite them."""
        return list(dict.fromkeys(m.source_label for m in self.short_term + self.long_term if m.source))


class UnproposedView(BaseModel):
    cluster_id: str
    priority: Priority
    label: str
    owner_department: str
    current: int
    reason: str


class OwnerLine(BaseModel):
    """One line of the owners' index: a department's proposals of the week, most urgent first."""

    owner_department: str
    proposals: list[tuple[str, Priority]]
    first_due: date
    overdue: int


def trend(cluster: Cluster, first_week: bool) -> str:
    if first_week:
        return f"本周 {cluster.current_count} 条（{NO_COMPARISON}）"
    rising = "，显著上升" if cluster.rising else ""
    return f"上周 {cluster.previous_count} → 本周 {cluster.current_count} 条{rising}"


def symptom(cluster: Cluster, first_week: bool) -> Symptom:
    return Symptom(cluster_id=cluster.cluster_id, label=cluster.label, priority=cluster.priority,
                   current=cluster.current_count, previous=cluster.previous_count, rising=cluster.rising,
                   trend=trend(cluster, first_week))


def source_titles(store: Store, knowledge_dir: Path | None) -> dict[str, str]:
    """Titles of the cases (library and closed loop) and documents a measure may cite, by id. A knowledge
    directory that is missing or does not load leaves ids without titles: the report still renders."""
    found: list[Case | KnowledgeDoc] = []
    if knowledge_dir is not None:
        try:
            found += [*load_cases(knowledge_dir / "cases"), *load_docs(knowledge_dir / "docs")]
        except (KnowledgeError, OSError, ValueError):
            found = []
    with store.session() as session:
        found += [Case.model_validate(row.payload) for row in session.scalars(select(RecordedCase))]
    return {item.id: item.title for item in found}


def source_label(source: str, titles: dict[str, str]) -> str:
    if not source:
        return "—"
    if source.startswith(TAG_SOURCE):
        return f"{TAG_LABEL}「{source.removeprefix(TAG_SOURCE)}」的典型措施"
    kind = "案例" if source.upper().startswith("CASE") else "文档" if source.upper().startswith("KD") else "来源"
    title = titles.get(source)
    return f"{kind} {source}《{title}》" if title else f"{kind} {source}"


def _measures(texts: list[str], proposal: Proposal, titles: dict[str, str]) -> list[MeasureLine]:
    sources = {m.measure: m.source for m in proposal.measure_sources}
    return [MeasureLine(text=t, source=sources.get(t, ""), source_label=source_label(sources.get(t, ""), titles))
            for t in texts]


def _quotes(proposal: Proposal) -> list[CardQuote]:
    return [CardQuote(voice_id=e.voice_id, text=mask_text(e.quote)[:CARD_QUOTE_CHARS])
            for e in proposal.evidence[:CARD_QUOTES]]


def build_cards(proposals: list[Proposal], clusters: dict[str, Cluster], incidents: dict[str, IncidentView],
                tracked: dict[str, ProposalView], week: str, first_week: bool,
                titles: dict[str, str]) -> list[ProposalCard]:
    """One card per proposal of the run, P1 first, then by the volume of its symptoms."""
    cards = []
    for p in proposals:
        view = tracked.get(p.proposal_id)
        covered = [clusters[c] for c in (p.cluster_ids or [p.cluster_id]) if c in clusters]
        cards.append(ProposalCard(
            proposal_id=p.proposal_id, priority=p.priority, owner_department=p.owner_department,
            dimension=f"{p.dimension}·{p.dimension.label}", problem=p.problem, root_cause=p.root_cause,
            status=view.status.value if view else UNTRACKED, due_date=view.due_date if view else p.due_date,
            overdue=view.overdue if view else False,
            since_week=view.first_week if view and view.first_week < week else None,
            incident=incidents.get(p.incident_id) if p.incident_id else None,
            symptoms=[symptom(c, first_week) for c in covered],
            short_term=_measures(p.short_term_measures, p, titles),
            long_term=_measures(p.long_term_measures, p, titles),
            kpis=p.kpis, quotes=_quotes(p), engine=p.engine.value))
    return sorted(cards, key=lambda c: (c.priority.rank, -sum(s.current for s in c.symptoms), c.proposal_id))


def build_incidents(incidents: list[Incident], clusters: dict[str, Cluster], proposals: list[Proposal],
                    first_week: bool) -> list[IncidentView]:
    answered = {p.incident_id: p.proposal_id for p in proposals if p.incident_id}
    views = [IncidentView(incident_id=i.incident_id, owner_department=i.owner_department, cause=i.cause, onset=i.onset,
                          symptoms=[symptom(clusters[c], first_week) for c in i.cluster_ids if c in clusters],
                          proposal_id=answered.get(i.incident_id))
             for i in incidents]
    return sorted(views, key=lambda v: (min((s.priority.rank for s in v.symptoms), default=9), -v.total))


def build_unproposed(unproposed: list[Unproposed], clusters: dict[str, Cluster]) -> list[UnproposedView]:
    views = []
    for u in unproposed:
        cluster = clusters.get(u.cluster_id)
        views.append(UnproposedView(cluster_id=u.cluster_id, priority=u.priority, reason=u.reason,
                                    label=cluster.label if cluster else "—",
                                    owner_department=cluster.owner_department if cluster else "—",
                                    current=cluster.current_count if cluster else 0))
    return sorted(views, key=lambda v: (v.priority.rank, -v.current, v.cluster_id))


def owner_index(cards: list[ProposalCard]) -> list[OwnerLine]:
    owners: dict[str, list[ProposalCard]] = {}
    for card in cards:
        owners.setdefault(card.owner_department, []).append(card)
    lines = [OwnerLine(owner_department=o, proposals=[(c.proposal_id, c.priority) for c in cs],
                       first_due=min(c.due_date for c in cs), overdue=sum(c.overdue for c in cs))
             for o, cs in owners.items()]
    return sorted(lines, key=lambda line: (min(p.rank for _, p in line.proposals), line.first_due,
                                            line.owner_department))
