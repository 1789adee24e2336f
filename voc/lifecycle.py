"""The closed loop on proposals (闭环管理: 问题—责任—时效—验收).

A proposal written by a weekly run is registered here and then tracked across weeks:
待认领 → 整改中 → 已完成 → 已验证 / 未达标, every change recorded with who, when and a note. A problem
that recurs in a later week is matched to its open proposal instead of spawning a new one. Once a
proposal is 已完成, verification compares the problem's weekly volume after the fix with the weeks
before it (an exact conditional Poisson test) and counts the recurrences (同类客诉复发).

The volume of a problem is the number of negative voices per week with the proposal's owner and
tag, as the weekly runs measured them (table problem_volumes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from voc.contracts import OPEN_STATUSES, Cluster, Kpi, Priority, Proposal, ProposalStatus
from voc.errors import Conflict, NotFound
from voc.periods import is_iso_week, shift_week, week_label
from voc.storage import ProblemVolumeRow, ProposalEventRow, ProposalRow, Store, VoiceRow

SIGNIFICANCE = 0.05
KEYWORD_MATCH = 0.5  # Jaccard overlap of cluster keywords that makes a different tag the same problem


# Verification alone moves 已完成 to 已验证 or 未达标; a failed fix goes back to work.
TRANSITIONS: dict[ProposalStatus, set[ProposalStatus]] = {
    ProposalStatus.CLAIM: {ProposalStatus.FIXING},
    ProposalStatus.FIXING: {ProposalStatus.DONE},
    ProposalStatus.DONE: {ProposalStatus.FIXING},
    ProposalStatus.FAILED: {ProposalStatus.FIXING},
    ProposalStatus.VERIFIED: set(),
}


FINISHED = (ProposalStatus.DONE, ProposalStatus.VERIFIED, ProposalStatus.FAILED)  # completed at least once


class LifecycleError(Conflict):
    """A change the closed loop does not allow; the message says why."""


class UnknownProposal(LifecycleError, NotFound):
    """No proposal has this id."""


class Event(BaseModel):
    at: datetime
    actor: str
    kind: str
    from_status: str | None = None
    to_status: str | None = None
    week: str | None = None
    note: str = ""
    figures: dict[str, Any] | None = None


class Effect(BaseModel):
    """Before/after figures of one problem around its fix."""

    proposal_id: str
    completed_week: str
    baseline_weeks: list[str]
    baseline_counts: list[int]
    after_weeks: list[str]
    after_counts: list[int]
    baseline_mean: float
    after_mean: float
    reduction: float = Field(description="1 - after_mean / baseline_mean")
    required_reduction: float = Field(description="From the proposal's volume KPI (target vs baseline).")
    p_value: float = Field(description="One-sided exact test that the weekly rate fell.")
    significant: bool
    recurrences: int = Field(description="Voices of the same problem after the fix (同类客诉复发).")
    recurring_weeks: int
    verdict: ProposalStatus

    def summary(self) -> str:
        return (f"基线{len(self.baseline_weeks)}周均值{self.baseline_mean:.1f}条/周，整改后{len(self.after_weeks)}周"
                f"均值{self.after_mean:.1f}条/周，下降{self.reduction:.0%}（目标{self.required_reduction:.0%}），"
                f"单侧检验p={self.p_value:.4f}；整改后复发{self.recurrences}条，涉及{self.recurring_weeks}周。")


class ProposalView(BaseModel):
    """A tracked proposal as the CLI, the report and the MCP tools show it."""

    proposal_id: str
    status: ProposalStatus
    owner_department: str
    tag: str
    priority: Priority
    problem: str
    first_week: str
    last_seen_week: str
    due_date: date
    completed_on: date | None
    overdue: bool
    effect: Effect | None = None
    case_id: str | None = None
    proposal: Proposal
    events: list[Event] = Field(default_factory=list)


def is_overdue(status: str, due: date, today: date) -> bool:
    return ProposalStatus(status) in OPEN_STATUSES and today > due


def keyword_overlap(a: Iterable[str], b: Iterable[str]) -> float:
    left, right = set(a), set(b)
    return len(left & right) / len(left | right) if left | right else 0.0


def volume_key(owner: str, tag: str) -> str:
    return f"{owner}|{tag}"


class ProposalBook:
    """Proposals and their history in the store (SQLite or PostgreSQL, like the voices)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------------ matching and registering

    def match_open(self, owner: str, tag: str, keywords: list[str], exclude: Iterable[str] = ()) -> ProposalRow | None:
        """The open proposal a new week's problem continues: same owner and tag, or same owner and
        mostly the same keywords. A verified proposal is closed: its problem recurring is a new one."""
        skip = set(exclude)
        with self.store.session() as session:
            rows = session.scalars(select(ProposalRow).where(ProposalRow.owner_department == owner,
                                                             ProposalRow.status != ProposalStatus.VERIFIED.value)
                                   .order_by(ProposalRow.first_week, ProposalRow.id)).all()
        candidates = [(row.tag == tag, keyword_overlap(row.keywords, keywords), row)
                      for row in rows if row.id not in skip]
        matching = [c for c in candidates if c[0] or c[1] >= KEYWORD_MATCH]
        if not matching:
            return None
        return max(matching, key=lambda c: (c[0], c[1]))[2]

    def register(self, run_id: str, week: str, proposals: list[Proposal], clusters: list[Cluster],
                 at: datetime | None = None) -> dict[str, int]:
        """Record a run's proposals: new ones as 待认领, matched ones as a recurrence of that week.
        Idempotent: registering the same run again changes nothing."""
        at = at or datetime.now(UTC)
        by_cluster = {c.cluster_id: c for c in clusters}
        created = recurred = 0
        with self.store.session() as session:
            for proposal in proposals:
                cluster = by_cluster.get(proposal.cluster_id)
                row = session.get(ProposalRow, proposal.proposal_id)
                if row is None:
                    session.add(_new_row(proposal, cluster, week))
                    session.flush()  # the row first: events refer to it
                    session.add(ProposalEventRow(proposal_id=proposal.proposal_id, at=at, actor=f"run {run_id}",
                                                 kind="创建", to_status=ProposalStatus.CLAIM.value, week=week,
                                                 note=proposal.problem))
                    created += 1
                elif week != row.first_week and not _has_event(session, row.id, "复发", week):
                    row.last_seen_week = max(row.last_seen_week, week)
                    count = cluster.current_count if cluster else 0
                    session.add(ProposalEventRow(proposal_id=row.id, at=at, actor=f"run {run_id}", kind="复发",
                                                 week=week, note=f"{week}同类问题再现{count}条（状态：{row.status}）",
                                                 figures={"current_count": count}))
                    recurred += 1
        return {"created": created, "recurred": recurred}

    def record_volumes(self, run_id: str, week: str, volumes: dict[str, int]) -> int:
        """Store a week's negative voices per owner|tag as the latest run measured them. Only the
        keys given are written: nothing is deleted or zeroed by omission, so no client can wipe a
        week's series by leaving keys out. Custom periods are not weeks of the series."""
        if not is_iso_week(week):
            return 0
        with self.store.session() as session:
            rows = {(r.owner_department, r.tag): r for r in session.scalars(
                select(ProblemVolumeRow).where(ProblemVolumeRow.week == week))}
            for key, count in sorted(volumes.items()):
                owner, tag = key.split("|", 1)
                if (owner, tag) in rows:
                    rows[(owner, tag)].negatives, rows[(owner, tag)].run_id = count, run_id
                else:
                    session.add(ProblemVolumeRow(week=week, owner_department=owner, tag=tag, negatives=count,
                                                 run_id=run_id))
        return len(volumes)

    # ------------------------------------------------------------------ reading

    def list(self, owner: str | None = None, status: str | None = None, today: date | None = None,
             with_events: bool = False) -> list[ProposalView]:
        statement = select(ProposalRow).order_by(ProposalRow.first_week, ProposalRow.id)
        if owner:
            statement = statement.where(ProposalRow.owner_department == owner)
        if status:
            statement = statement.where(ProposalRow.status == ProposalStatus(status).value)
        with self.store.session() as session:
            rows = session.scalars(statement).all()
            return [self._view(session, row, today or date.today(), with_events) for row in rows]

    def get(self, proposal_id: str, today: date | None = None) -> ProposalView:
        with self.store.session() as session:
            return self._view(session, self._row(session, proposal_id), today or date.today(), True)

    def _view(self, session: Any, row: ProposalRow, today: date, with_events: bool) -> ProposalView:
        events = []
        if with_events:
            events = [Event.model_validate(e, from_attributes=True) for e in session.scalars(
                select(ProposalEventRow).where(ProposalEventRow.proposal_id == row.id).order_by(ProposalEventRow.id))]
        return ProposalView(proposal_id=row.id, status=ProposalStatus(row.status),
                            owner_department=row.owner_department,
                            tag=row.tag, priority=Priority(row.priority), problem=row.payload["problem"],
                            first_week=row.first_week, last_seen_week=row.last_seen_week, due_date=row.due_date,
                            completed_on=row.completed_on, overdue=is_overdue(row.status, row.due_date, today),
                            effect=Effect.model_validate(row.effect) if row.effect else None, case_id=row.case_id,
                            proposal=Proposal.model_validate(row.payload),
                            events=events)

    @staticmethod
    def _row(session: Any, proposal_id: str) -> ProposalRow:
        row = session.get(ProposalRow, proposal_id)
        if row is None:
            raise UnknownProposal(f"no proposal {proposal_id!r}")
        return row

    # ------------------------------------------------------------------ changing

    def update(self, proposal_id: str, to_status: str, actor: str, note: str = "", on: date | None = None,
               at: datetime | None = None) -> ProposalView:
        """Move a proposal along its lifecycle; 已验证 / 未达标 come only from `verify`."""
        target = ProposalStatus(to_status)
        if not actor.strip():
            raise LifecycleError("who made the change is required")
        with self.store.session() as session:
            row = self._row(session, proposal_id)
            current = ProposalStatus(row.status)
            if target not in TRANSITIONS[current]:
                allowed = "、".join(s.value for s in TRANSITIONS[current]) or "无（已闭环）"
                verified = target in (ProposalStatus.VERIFIED, ProposalStatus.FAILED)
                verdicts = f"{ProposalStatus.VERIFIED}/{ProposalStatus.FAILED}"
                hint = f"；{verdicts}由验证得出（voc proposals verify）" if verified else ""
                raise LifecycleError(f"{proposal_id}: {current.value} 不能直接变为 {target.value}，"
                                     f"可变为：{allowed}{hint}")
            row.status = target.value
            if target is ProposalStatus.DONE:
                row.completed_on = on or date.today()
            elif target is ProposalStatus.FIXING:
                row.completed_on = None  # back to work: a later completion starts a new after-period
            session.add(ProposalEventRow(proposal_id=row.id, at=at or datetime.now(UTC), actor=actor, kind="状态变更",
                                         from_status=current.value, to_status=target.value, note=note))
        return self.get(proposal_id)

    def evaluate(self, proposal_id: str, baseline_weeks: int = 4, min_after_weeks: int = 2,
                 max_after_weeks: int = 4) -> Effect:
        """Weekly volume after the fix against the weeks before it; raises when the runs so far
        cannot answer yet (not completed, too few measured weeks, no baseline voices)."""
        with self.store.session() as session:
            row = self._row(session, proposal_id)
            if row.completed_on is None or ProposalStatus(row.status) not in FINISHED:
                raise LifecycleError(
                    f"{proposal_id}: 只有{ProposalStatus.DONE}的建议才能验证效果（当前：{row.status}）")
            measured = set(session.scalars(select(ProblemVolumeRow.week).distinct()))
            counts = {week: n for week, n in session.execute(
                select(ProblemVolumeRow.week, ProblemVolumeRow.negatives).where(
                    ProblemVolumeRow.owner_department == row.owner_department, ProblemVolumeRow.tag == row.tag))}
            completed_week = week_label(row.completed_on)
            before = [w for w in sorted(measured) if w < completed_week][-baseline_weeks:]
            after = [w for w in sorted(measured) if w > completed_week][:max_after_weeks]
            kpi = Kpi.model_validate(row.payload["kpis"][0])
        if len(after) < min_after_weeks:
            raise LifecycleError(f"{proposal_id}: 完成周{completed_week}之后只有{len(after)}周运行结果，至少需要"
                                 f"{min_after_weeks}周（先运行 voc run --week {shift_week(completed_week, 1)}）")
        if not before:
            raise LifecycleError(f"{proposal_id}: 完成周{completed_week}之前没有任何周的运行结果，无法建立基线")
        return _effect(proposal_id, completed_week, before, after, counts, kpi)

    def verify(self, proposal_id: str, actor: str, at: datetime | None = None, **windows: int) -> ProposalView:
        effect = self.evaluate(proposal_id, **windows)
        with self.store.session() as session:
            row = self._row(session, proposal_id)
            if ProposalStatus(row.status) is not ProposalStatus.DONE:
                raise LifecycleError(f"{proposal_id}: 只有{ProposalStatus.DONE}的建议才能验证（当前：{row.status}）")
            previous, row.status = row.status, effect.verdict.value
            row.effect = effect.model_dump(mode="json")
            session.add(ProposalEventRow(proposal_id=row.id, at=at or datetime.now(UTC), actor=actor, kind="验证",
                                         from_status=previous, to_status=effect.verdict.value, note=effect.summary(),
                                         figures=row.effect))
        return self.get(proposal_id)

    def case_payload(self, proposal_id: str) -> dict[str, Any]:
        """A verified proposal as a case for the library (the cases MCP server's record_case)."""
        view = self.get(proposal_id)
        if view.status is not ProposalStatus.VERIFIED or view.effect is None:
            raise LifecycleError(
                f"{proposal_id}: 只有{ProposalStatus.VERIFIED}的建议才能沉淀为案例（当前：{view.status.value}）")
        if view.case_id:
            raise LifecycleError(f"{proposal_id}: 已沉淀为案例 {view.case_id}")
        effect, p = view.effect, view.proposal
        with self.store.session() as session:
            businesses = Counter(session.scalars(select(VoiceRow.business).where(
                VoiceRow.id.in_(p.evidence_voice_ids), VoiceRow.business.is_not(None))))
        business = min(businesses.items(), key=lambda kv: (-kv[1], kv[0]))[0] if businesses else "其他"
        return {"title": f"{view.tag.split('>')[-1]}整改（{proposal_id}）", "problem": p.problem,
                "business": business, "dimension": p.dimension.value, "tag": view.tag or None,
                "root_cause": p.root_cause, "short_term_measures": p.short_term_measures,
                "long_term_measures": p.long_term_measures, "owner": view.owner_department,
                "effect": [{"metric": "同类问题负面声量（条/周）", "before": f"{effect.baseline_mean:g}",
                            "after": f"{effect.after_mean:g}"},
                           {"metric": "整改后复发（条）", "before": "—", "after": str(effect.recurrences)}],
                "period": effect.completed_week, "source": "闭环沉淀"}

    def mark_case(self, proposal_id: str, case_id: str, actor: str) -> None:
        with self.store.session() as session:
            row = self._row(session, proposal_id)
            row.case_id = case_id
            session.add(ProposalEventRow(proposal_id=row.id, at=datetime.now(UTC), actor=actor, kind="沉淀案例",
                                         note=f"已录入案例库 {case_id}"))


def _new_row(proposal: Proposal, cluster: Cluster | None, week: str) -> ProposalRow:
    return ProposalRow(id=proposal.proposal_id, status=ProposalStatus.CLAIM.value,
                       owner_department=proposal.owner_department, tag=cluster.tag if cluster else "",
                       priority=proposal.priority.value, first_week=week, last_seen_week=week,
                       due_date=proposal.due_date, keywords=cluster.keywords if cluster else [],
                       payload=proposal.model_dump(mode="json"))


def _has_event(session: Any, proposal_id: str, kind: str, week: str) -> bool:
    return session.scalar(select(func.count()).select_from(ProposalEventRow).where(
        ProposalEventRow.proposal_id == proposal_id, ProposalEventRow.kind == kind,
        ProposalEventRow.week == week)) > 0


def _effect(proposal_id: str, completed_week: str, before: list[str], after: list[str], counts: dict[str, int],
            kpi: Kpi) -> Effect:
    baseline = [counts.get(w, 0) for w in before]
    later = [counts.get(w, 0) for w in after]
    if sum(baseline) == 0:
        raise LifecycleError(f"{proposal_id}: 基线周（{'、'.join(before)}）没有该问题的负面声音，无法评估下降")
    baseline_mean, after_mean = sum(baseline) / len(baseline), sum(later) / len(later)
    # Given the total, the after-weeks' share is binomial with p = their share of the weeks if the
    # weekly rate did not change (the exact conditional test for two Poisson rates).
    share = len(after) / (len(after) + len(before))
    from scipy.stats import binomtest  # imported here: scipy.stats takes a second to load, the CLI is quicker

    p_value = float(binomtest(sum(later), sum(later) + sum(baseline), share, alternative="less").pvalue)
    required = 1 - kpi.target / kpi.baseline if kpi.baseline else 0.0
    reduction = 1 - after_mean / baseline_mean
    passed = p_value < SIGNIFICANCE and reduction >= required - 1e-9
    return Effect(proposal_id=proposal_id, completed_week=completed_week, baseline_weeks=before,
                  baseline_counts=baseline, after_weeks=after, after_counts=later,
                  baseline_mean=round(baseline_mean, 3), after_mean=round(after_mean, 3),
                  reduction=round(reduction, 4), required_reduction=round(required, 4), p_value=round(p_value, 6),
                  significant=p_value < SIGNIFICANCE, recurrences=sum(later),
                  recurring_weeks=sum(1 for n in later if n),
                  verdict=ProposalStatus.VERIFIED if passed else ProposalStatus.FAILED)
