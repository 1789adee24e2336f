"""Problems that keep their id from week to week (PB-0001, PB-0002, …).

Each weekly run finds its problems (clusters) afresh; here each is given the id of the problem it
continues — same owner and tag, or same owner and mostly the same keywords, the rule
`ProposalBook.match_open` uses — or a new id. So a problem has a weekly series, and an analyst can
rename it (the name then shows in every later week) or merge it into another (its later weeks then
carry the surviving id).

Within one week an existing problem goes to one cluster at most: the first in the run's order
(priority, then size). Assigning a week again with the same clusters gives the same ids: the week's
assignment is recorded (table problem_weeks) and the problems it created are matched again only by
the clusters that continue no earlier problem; those no cluster matches any more are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from voc.errors import Conflict, Invalid, NotFound
from voc.lifecycle import KEYWORD_MATCH, keyword_overlap
from voc.periods import is_iso_week
from voc.registration import has_markup
from voc.storage import ProblemRow, ProblemWeekRow, Store

ID_PREFIX = "PB-"
MAX_LABEL = 40


class Candidate(NamedTuple):
    """One of a week's clusters, as the registry matches it."""

    owner_department: str
    tag: str
    keywords: list[str]
    label: str


class Assigned(BaseModel):
    problem_id: str = Field(description="The problem's id across weeks, e.g. PB-0007.")
    label: str = Field(description="The name to show: the analyst's when set, else this week's own.")
    analyst_label: str | None = Field(default=None, description="The analyst's name for the problem, if any.")
    created: bool = Field(description="The problem was first seen this week.")


class ProblemRecord(BaseModel):
    """A registered problem as `voc problems list` and the MCP tool show it."""

    problem_id: str
    owner_department: str
    tag: str
    keywords: list[str]
    label: str = Field(description="The name to show: the analyst's when set, else the latest run's.")
    run_label: str = Field(description="The latest run's own name for it.")
    analyst_label: str | None
    merged_into: str | None = Field(description="The problem it was merged into; its later weeks carry that id.")
    first_week: str
    last_week: str
    weeks: list[str] = Field(description="The weeks it was found in (its weekly series).")
    history: list[dict[str, Any]] = Field(default_factory=list, description="Renames and merges: who, when, what.")


def _number(problem_id: str) -> int:
    digits = problem_id.removeprefix(ID_PREFIX)
    return int(digits) if digits.isdigit() else 0


def _root(rows: dict[str, ProblemRow], problem_id: str) -> str:
    """The surviving problem a (possibly merged) problem stands for."""
    seen: set[str] = set()
    while rows[problem_id].merged_into and problem_id not in seen:
        seen.add(problem_id)
        problem_id = rows[problem_id].merged_into or problem_id
    return problem_id


def _widen(row: ProblemRow, week: str) -> None:
    if is_iso_week(week) and is_iso_week(row.first_week):
        row.first_week = min(row.first_week, week)
    if is_iso_week(week) and is_iso_week(row.last_week):
        row.last_week = max(row.last_week, week)
    elif is_iso_week(week):
        row.last_week = week


class ProblemRegistry:
    """The problems of every week in the store (SQLite or PostgreSQL, like the voices)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------------ the weekly assignment

    def assign(self, week: str, candidates: Sequence[Candidate]) -> list[Assigned]:
        """The id of each of the week's clusters, in their order: the problem it continues, or a new one."""
        if not week.strip():
            raise Invalid("周次不能为空")
        with self.store.session() as session:
            rows = {r.id: r for r in session.scalars(select(ProblemRow).order_by(ProblemRow.id))}
            before = session.scalars(select(ProblemWeekRow).where(ProblemWeekRow.week == week)
                                     .order_by(ProblemWeekRow.position)).all()
            # The problems this week's earlier assignment created, still standing: matched only by the
            # clusters that continue no earlier problem, so the same clusters get the same ids.
            pool = [b.problem_id for b in before if b.created and b.problem_id in rows
                    and rows[b.problem_id].merged_into is None]
            targets = sorted((r for r in rows.values() if r.id not in set(pool)),
                             key=lambda r: (r.first_week, r.id))
            again = [rows[p] for p in pool]
            taken: set[str] = set()
            assigned: list[tuple[ProblemRow, bool]] = []
            for candidate in candidates:
                row = self._match(rows, targets, taken, candidate)
                created = row is None
                row = row or self._match(rows, again, taken, candidate) or self._create(session, rows, candidate, week)
                _widen(row, week)
                if week >= row.last_week or not is_iso_week(week):
                    row.label = candidate.label[:200]
                taken.add(row.id)
                assigned.append((row, created))
            session.execute(delete(ProblemWeekRow).where(ProblemWeekRow.week == week))
            session.flush()
            session.add_all(ProblemWeekRow(week=week, position=i, problem_id=row.id, created=created)
                            for i, (row, created) in enumerate(assigned))
            self._drop_unused(session, rows, [p for p in pool if p not in taken])
            return [Assigned(problem_id=row.id, label=row.analyst_label or candidate.label,
                             analyst_label=row.analyst_label, created=created)
                    for (row, created), candidate in zip(assigned, candidates, strict=True)]

    @staticmethod
    def _match(rows: dict[str, ProblemRow], targets: Iterable[ProblemRow], taken: set[str],
               candidate: Candidate) -> ProblemRow | None:
        """The surviving problem of the best match: same owner, then same tag, then keyword overlap;
        the oldest on a tie. A merged problem matches for the one it was merged into."""
        best: tuple[bool, float] | None = None
        found: ProblemRow | None = None
        for row in targets:
            if row.owner_department != candidate.owner_department:
                continue
            root = _root(rows, row.id)
            if root in taken:
                continue
            score = (row.tag == candidate.tag, keyword_overlap(row.keywords, candidate.keywords))
            if (score[0] or score[1] >= KEYWORD_MATCH) and (best is None or score > best):
                best, found = score, rows[root]
        return found

    @staticmethod
    def _create(session: Session, rows: dict[str, ProblemRow], candidate: Candidate, week: str) -> ProblemRow:
        number = max((_number(i) for i in rows), default=0) + 1
        row = ProblemRow(id=f"{ID_PREFIX}{number:04d}", owner_department=candidate.owner_department,
                         tag=candidate.tag, keywords=list(candidate.keywords), label=candidate.label[:200],
                         analyst_label=None, merged_into=None, first_week=week, last_week=week, history=[])
        session.add(row)
        session.flush()  # week rows refer to it
        rows[row.id] = row
        return row

    @staticmethod
    def _drop_unused(session: Session, rows: dict[str, ProblemRow], unused: list[str]) -> None:
        """Problems an earlier assignment of this week created and this one did not need: gone unless
        another week found them or an analyst has worked on them."""
        for problem_id in unused:
            row = rows[problem_id]
            elsewhere = session.scalar(select(ProblemWeekRow.week).where(ProblemWeekRow.problem_id == problem_id)
                                       .limit(1))
            merged_here = any(r.merged_into == problem_id for r in rows.values())
            if elsewhere is None and not merged_here and not row.analyst_label and not row.history:
                session.delete(row)

    # ------------------------------------------------------------------ reading

    def list(self, include_merged: bool = True) -> list[ProblemRecord]:
        with self.store.session() as session:
            weeks: dict[str, list[str]] = {}
            for week, problem_id in session.execute(select(ProblemWeekRow.week, ProblemWeekRow.problem_id)
                                                    .order_by(ProblemWeekRow.week)):
                weeks.setdefault(problem_id, []).append(week)
            rows = session.scalars(select(ProblemRow).order_by(ProblemRow.id)).all()
            return [_record(r, weeks.get(r.id, [])) for r in rows if include_merged or r.merged_into is None]

    def get(self, problem_id: str) -> ProblemRecord:
        found = [r for r in self.list() if r.problem_id == problem_id]
        if not found:
            raise NotFound(f"没有问题 {problem_id[:20]}（voc problems list 查看全部）")
        return found[0]

    # ------------------------------------------------------------------ the analyst's changes

    def rename(self, problem_id: str, label: str, actor: str, at: datetime | None = None) -> ProblemRecord:
        """The analyst's name for a problem; every later week shows it. An empty label clears it."""
        label, actor = label.strip(), actor.strip()
        if not actor:
            raise Invalid("请给出修改人（--by）")
        if len(label) > MAX_LABEL or has_markup(label):
            raise Invalid(f"问题名称须为不超过{MAX_LABEL}字的纯文本")
        with self.store.session() as session:
            row = _row(session, problem_id)
            if row.merged_into:
                raise Conflict(f"{problem_id} 已合并到 {row.merged_into}，请改名 {row.merged_into}")
            row.history = [*row.history, _event("改名", actor, at, f"{row.analyst_label or row.label} → "
                                                                    f"{label or row.label}")]
            row.analyst_label = label or None
        return self.get(problem_id)

    def merge(self, problem_id: str, into_id: str, actor: str, at: datetime | None = None) -> ProblemRecord:
        """Merge a problem into another: its later weeks carry the surviving id."""
        actor = actor.strip()
        if not actor:
            raise Invalid("请给出修改人（--by）")
        if problem_id == into_id:
            raise Invalid(f"{problem_id} 不能合并到自身")
        with self.store.session() as session:
            row, into = _row(session, problem_id), _row(session, into_id)
            if row.merged_into:
                raise Conflict(f"{problem_id} 已合并到 {row.merged_into}")
            if into.merged_into:
                raise Conflict(f"{into_id} 已合并到 {into.merged_into}，请合并到 {into.merged_into}")
            row.merged_into = into_id
            row.history = [*row.history, _event("合并", actor, at, f"合并到 {into_id}")]
            into.history = [*into.history, _event("并入", actor, at, f"{problem_id} 并入")]
            # Problems merged into this one earlier now stand for the survivor too.
            for earlier in session.scalars(select(ProblemRow).where(ProblemRow.merged_into == problem_id)):
                earlier.merged_into = into_id
        return self.get(problem_id)


def _row(session: Session, problem_id: str) -> ProblemRow:
    row = session.get(ProblemRow, problem_id)
    if row is None:
        raise NotFound(f"没有问题 {problem_id[:20]}（voc problems list 查看全部）")
    return row


def _event(kind: str, actor: str, at: datetime | None, note: str) -> dict[str, Any]:
    return {"at": (at or datetime.now(UTC)).isoformat(), "actor": actor, "kind": kind, "note": note}


def _record(row: ProblemRow, weeks: list[str]) -> ProblemRecord:
    return ProblemRecord(problem_id=row.id, owner_department=row.owner_department, tag=row.tag,
                         keywords=list(row.keywords), label=row.analyst_label or row.label, run_label=row.label,
                         analyst_label=row.analyst_label, merged_into=row.merged_into, first_week=row.first_week,
                         last_week=row.last_week, weeks=weeks, history=list(row.history or []))
