"""MCP server `proposals`: the closed loop on improvement proposals (status, history, verification),
the weekly problems, the weekly 《客户心声》 report, and prompts for the common analyst questions."""

import functools
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_servers.common import (
    LATEST_WEEK_HINT,
    READ_ONLY,
    WRITES,
    Offset,
    OwnerDepartment,
    VocServer,
    latest_run_label,
)
from voc.config import Settings, get_settings
from voc.contracts import OPEN_STATUSES, ProblemView, ProposalStatus, latest_run_dir, read_clusters, read_proposals
from voc.errors import Invalid
from voc.knowledge import load_service_matrix, load_taxonomy
from voc.lifecycle import FINISHED, Effect, ProposalBook, ProposalView
from voc.periods import Period, parse_week
from voc.problems import Assigned, Candidate, ProblemRecord, ProblemRegistry
from voc.registration import check_registration, has_markup, is_period_label
from voc.storage import Store

MAX_LIST = 500
LATEST_REPORT_URI = "voc://reports/latest"
REPORT_URI = "voc://reports/{week}"

ProposalId = Annotated[str, Field(min_length=1, max_length=64, description="A proposal id, e.g. PR-2026-W47-001.")]
PeriodLabel = Annotated[str, Field(min_length=1, max_length=32,
                                   description="The period: an ISO week like 2026-W47 (or a run's date-range label).")]
ListLimit = Annotated[int, Field(ge=1, le=MAX_LIST, description=f"How many items per page (1–{MAX_LIST}).")]
Actor = Annotated[str, Field(min_length=1, max_length=64, description="Who makes the change (name or team).")]


class ProposalList(BaseModel):
    total: int = Field(description="Proposals matching the filters, over all pages.")
    offset: int
    limit: int
    items: list[ProposalView]
    next_offset: int | None = Field(description="Pass as offset for the next page; null on the last page.")


class OpenMatch(BaseModel):
    proposal_id: str | None = Field(description="The open proposal this problem continues, or null.")
    due_date: date | None = None
    status: ProposalStatus | None = None


class Problems(BaseModel):
    week: str
    run_id: str | None = Field(description="The weekly run the problems come from; null when the week has none.")
    total: int = Field(description="Problems matching the filters, over all pages.")
    items: list[ProblemView] = Field(description="Clusters of the run (clusters.json) with their proposal id.")
    next_offset: int | None = Field(description="Pass as offset for the next page; null on the last page.")


class Registered(BaseModel):
    created: int
    recurred: int
    volumes: int


class ProblemCandidate(BaseModel):
    """One of a week's clusters, in the run's order (priority, then size)."""

    model_config = ConfigDict(extra="forbid")

    owner_department: str = Field(max_length=100, description="The cluster's owner department.")
    tag: str = Field(max_length=128, description="The cluster's taxonomy tag (L1>L2>L3).")
    keywords: list[Annotated[str, Field(max_length=64)]] = Field(max_length=50, description="The cluster's keywords.")
    label: str = Field(min_length=1, max_length=200, description="The run's own name for the cluster.")


class AssignedProblems(BaseModel):
    week: str
    items: list[Assigned] = Field(description="One per candidate, in the same order.")


class ProblemRegistryList(BaseModel):
    total: int = Field(description="Problems matching the filters, over all pages.")
    items: list[ProblemRecord]
    next_offset: int | None = Field(description="Pass as offset for the next page; null on the last page.")


def _next_offset(offset: int, limit: int, total: int) -> int | None:
    return offset + limit if offset + limit < total else None


def create_server(settings: Settings | None = None) -> VocServer:
    settings = settings or get_settings()
    server = VocServer("proposals", settings=settings, creates_data={"register_run", "assign_problems"},
                       instructions="Improvement proposals tracked across weeks: 待认领 → 整改中 → 已完成 → "
                       "已验证 / 未达标, with who changed what and when, due dates and before/after effect; the "
                       f"weekly problems; the weekly report ({LATEST_REPORT_URI}). Paging: limit, offset.")
    reports_dir = settings.resolved_data_dir / "reports"

    @functools.cache
    def book() -> ProposalBook:
        # Opened on the first call, after VocServer checked that the data directory holds data.
        return ProposalBook(Store(settings.resolved_database_url))

    @functools.cache
    def registry() -> ProblemRegistry:
        return ProblemRegistry(Store(settings.resolved_database_url))

    def owners() -> set[str]:
        return set(load_service_matrix(settings.service_matrix_path).department_names())

    def tags() -> set[str]:
        taxonomy = load_taxonomy(settings.taxonomy_path)
        return {t.path for t in taxonomy.tags} | {a for t in taxonomy.tags for a in t.aliases}

    @server.tool(name="list_proposals", annotations=READ_ONLY)
    def list_proposals_tool(
            owner_department: Annotated[OwnerDepartment, Field(description="Only this owner department's.")] = None,
            status: Annotated[ProposalStatus | None, Field(description="Only proposals in this status.")] = None,
            overdue_only: Annotated[bool, Field(description="Only overdue ones (past due, not completed).")] = False,
            limit: ListLimit = 100, offset: Offset = 0) -> ProposalList:
        """Tracked proposals, oldest first, optionally of one owner department or one status; overdue
        ones are flagged (past the due date and not completed)."""
        items = [p for p in book().list(owner_department, status.value if status else None)
                 if p.overdue or not overdue_only]
        return ProposalList(total=len(items), offset=offset, limit=limit, items=items[offset:offset + limit],
                            next_offset=_next_offset(offset, limit, len(items)))

    @server.tool(name="get_proposal", annotations=READ_ONLY)
    def get_proposal_tool(proposal_id: ProposalId) -> ProposalView:
        """One proposal with its full history of changes and its effect figures once verified."""
        return book().get(proposal_id)

    @server.tool(name="list_problems", annotations=READ_ONLY)
    def list_problems_tool(
            week: PeriodLabel,
            rising_only: Annotated[bool, Field(description="Only the significantly rising problems.")] = False,
            owner_department: Annotated[OwnerDepartment, Field(description="Only this owner department's.")] = None,
            limit: ListLimit = 100, offset: Offset = 0) -> Problems:
        """The common problems (clusters) of a week's latest run, by priority: counts against the
        previous week, rising flag, severity, impact, owner, keywords, representative voices and the
        proposal written for it."""
        run_dir = latest_run_dir(settings.runs_dir, week, None)
        if run_dir is None:
            return Problems(week=week, run_id=None, total=0, items=[], next_offset=None)
        proposal_of = {p.cluster_id: p.proposal_id for p in read_proposals(run_dir)}
        chosen = [ProblemView(**dict(c), proposal_id=proposal_of.get(c.cluster_id)) for c in read_clusters(run_dir)
                  if (c.rising or not rising_only) and owner_department in (None, c.owner_department)]
        chosen.sort(key=lambda c: (c.priority.rank, -c.size))
        return Problems(week=week, run_id=run_dir.name, total=len(chosen), items=chosen[offset:offset + limit],
                        next_offset=_next_offset(offset, limit, len(chosen)))

    @server.tool(name="evaluate_proposal", annotations=READ_ONLY)
    def evaluate_proposal_tool(proposal_id: ProposalId) -> Effect:
        """Before/after figures of a completed proposal's problem (exact one-sided test, recurrences)
        without changing its status; verify_proposal records the verdict."""
        return book().evaluate(proposal_id)

    @server.tool(name="match_open_proposal", annotations=READ_ONLY)
    def match_open_proposal_tool(
            owner_department: Annotated[str, Field(min_length=1, max_length=100, description="The problem's owner.")],
            tag: Annotated[str, Field(max_length=128, description="The problem's taxonomy tag (L1>L2>L3).")],
            keywords: Annotated[list[Annotated[str, Field(max_length=64)]], Field(
                max_length=50, description="The problem's keywords.")],
            exclude: Annotated[list[Annotated[str, Field(max_length=64)]] | None, Field(
                max_length=MAX_LIST, description="Proposal ids already taken by other problems.")] = None,
    ) -> OpenMatch:
        """The open (not yet verified) proposal a recurring problem belongs to: same owner and tag,
        or same owner and mostly the same keywords."""
        row = book().match_open(owner_department, tag, keywords, exclude or [])
        if row is None:
            return OpenMatch(proposal_id=None)
        return OpenMatch(proposal_id=row.id, due_date=row.due_date, status=ProposalStatus(row.status))

    @server.tool(name="register_run", annotations=WRITES)
    def register_run_tool(
            run_id: Annotated[str, Field(min_length=1, max_length=128, description="The run's id.")],
            week: PeriodLabel,
            proposals: Annotated[list[dict[str, Any]], Field(
                max_length=MAX_LIST, description="The run's proposals.json (the output contract).")],
            clusters: Annotated[list[dict[str, Any]], Field(
                max_length=20_000, description="The run's clusters.json (the output contract).")],
            volumes: Annotated[dict[str, int], Field(
                max_length=20_000, description="Negative voices of the period per 'owner|tag'.")]) -> Registered:
        """Record a weekly run: new proposals as 待认领, recurring ones as a recurrence, and the
        week's negative voices per owner|tag for effect evaluation. Safe to repeat."""
        ledger = book()  # the first registration in a new data directory creates its store
        checked = check_registration(run_id, week, proposals, clusters, volumes, owners(), tags())
        counts = ledger.register(run_id, week, checked.proposals, checked.clusters)
        stored = ledger.record_volumes(run_id, week, volumes)
        return Registered(created=counts["created"], recurred=counts["recurred"], volumes=stored)

    @server.tool(name="assign_problems", annotations=WRITES)
    def assign_problems_tool(
            week: PeriodLabel,
            candidates: Annotated[list[ProblemCandidate], Field(
                max_length=20_000, description="The week's clusters in the run's order (priority, then size).")],
    ) -> AssignedProblems:
        """Give each of a week's problems its id across weeks (PB-0007): the problem it continues (same
        owner and tag, or same owner and mostly the same keywords; a merged problem's later weeks carry
        the surviving id), or a new one. One existing problem goes to one cluster per week at most, the
        first. Returns the ids and the names to show (the analyst's when set). Safe to repeat."""
        if not is_period_label(week):
            raise Invalid(f"“{week[:40]}”不是周次（2026-W47）或日期区间")
        known_owners, known_tags = owners() | {""}, tags()
        for index, c in enumerate(candidates, start=1):
            if c.owner_department not in known_owners or c.tag not in known_tags:
                raise Invalid(f"第 {index} 个问题的责任部门或分类标签不在服务矩阵或分类体系中")
            if has_markup(c.label) or any(has_markup(k) for k in c.keywords):
                raise Invalid(f"第 {index} 个问题的名称或关键词含有标记或链接，已拒绝")
        items = registry().assign(week, [Candidate(c.owner_department, c.tag, c.keywords, c.label)
                                         for c in candidates])
        return AssignedProblems(week=week, items=items)

    @server.tool(name="list_problem_registry", annotations=READ_ONLY)
    def list_problem_registry_tool(
            owner_department: Annotated[OwnerDepartment, Field(description="Only this owner department's.")] = None,
            include_merged: Annotated[bool, Field(description="Also the problems merged into others.")] = False,
            limit: ListLimit = 100, offset: Offset = 0) -> ProblemRegistryList:
        """The problems known across weeks (PB-0001…): owner, tag, keywords, the name shown (the
        analyst's when set), the weeks each was found in, and merges with who and when."""
        items = [p for p in registry().list(include_merged) if owner_department in (None, p.owner_department)]
        return ProblemRegistryList(total=len(items), items=items[offset:offset + limit],
                                   next_offset=_next_offset(offset, limit, len(items)))

    @server.tool(name="update_proposal", annotations=WRITES)
    def update_proposal_tool(
            proposal_id: ProposalId,
            status: Annotated[ProposalStatus, Field(description="The new status: 整改中 or 已完成 (or 待认领).")],
            actor: Actor,
            note: Annotated[str, Field(max_length=2000, description="Why; shown in the history.")] = "",
    ) -> ProposalView:
        """Move a proposal along its lifecycle (待认领 → 整改中 → 已完成; 已完成 or 未达标 → 整改中),
        recording who and why. 已验证 / 未达标 come only from verify_proposal."""
        return book().update(proposal_id, status.value, actor, note)

    @server.tool(name="verify_proposal", annotations=WRITES)
    def verify_proposal_tool(proposal_id: ProposalId, actor: Actor) -> ProposalView:
        """Verify a completed proposal: weekly volume after the fix vs the baseline weeks (exact
        one-sided test) and recurrences; sets 已验证 or 未达标 with the figures."""
        return book().verify(proposal_id, actor)

    # ------------------------------------------------------------- the weekly report as resources

    @server.resource(LATEST_REPORT_URI, name="latest-report", title="最新一期《客户心声》 (latest report)",
                     mime_type="text/markdown",
                     description="The latest weekly 《客户心声》 report (report.md, as `voc report` wrote it).")
    def latest_report() -> str:
        found = report_files(reports_dir)
        if not found:
            raise ValueError(f"no report in {reports_dir} yet: write one with `voc report --week 2026-W47` "
                             "(and check VOC_DATA_DIR)")
        return found[-1][1].read_text(encoding="utf-8")

    @server.resource(REPORT_URI, name="report", title="某周《客户心声》 (weekly report)", mime_type="text/markdown",
                     description="The 《客户心声》 report of one ISO week, e.g. voc://reports/2026-W47.")
    def week_report(week: str) -> str:
        try:
            label = parse_week(week).label
        except ValueError:
            raise ValueError(f"{week[:40]!r} is not an ISO week like 2026-W47") from None
        path = reports_dir / label / "report.md"
        if not path.is_file():
            raise ValueError(f"no report for {label} in {reports_dir}: write it with `voc report --week {label}`")
        return path.read_text(encoding="utf-8")

    # ------------------------------------------------------------- prompts: the analyst's questions

    def week_or_latest(week: str | None) -> str:
        return week or latest_run_label(settings.runs_dir) or LATEST_WEEK_HINT

    @server.prompt(name="rising_problems", title="本周哪些问题在上升？为什么？",
                   description="Which problems rose this week and why: the rising problems of a week's run with "
                   "figures, owners, customers' words and likely causes.")
    def rising_problems(week: Annotated[str | None, Field(
            description="ISO week like 2026-W47; default the latest week with a run.")] = None) -> str:
        label = week_or_latest(week)
        return (f"{label} 哪些问题在上升？为什么？\n\n"
                f"请用 proposals 的 list_problems(week=\"{label}\", rising_only=true) 取上升的问题（已按优先级排序），"
                "对每个问题说明：本期与上期声量（current_count / previous_count）、增长显著性（growth_z）、责任部门、"
                "维度与标签、关键词、涉及客群与渠道；用 tickets 的 get_voice 读取 representative_voice_ids 中的"
                "客户原话（已脱敏）作为依据；用 knowledge 的 search_knowledge 与 cases 的 search_cases "
                "说明可能的原因和以往整改。"
                "只引用工具返回的数字和编号，注明声音编号和建议编号。")

    @server.prompt(name="pending_proposals", title="某部门本周有哪些待处理建议？",
                   description="An owner department's open proposals: status, due dates, overdue ones first.")
    def pending_proposals(owner_department: Annotated[str, Field(
            description="The owner department, e.g. 信息科技部 (knowledge server: get_service_matrix).")],
            week: Annotated[str | None, Field(description="ISO week; default the latest week with a run.")] = None,
    ) -> str:
        label = week_or_latest(week)
        return (f"{owner_department} {label} 有哪些待处理的整改建议？\n\n"
                f"请用 proposals 的 list_proposals(owner_department=\"{owner_department}\") 取该部门的建议"
                f"（total 大于本页条数时用 next_offset 翻页），列出状态为 {'、'.join(OPEN_STATUSES)} 的建议："
                "编号、问题、优先级、截止日期、是否逾期（逾期在前），以及 "
                f"list_problems(week=\"{label}\", owner_department=\"{owner_department}\") 中本周新出现或复发的问题。"
                "需要时用 get_proposal 查看历史。只引用工具返回的内容。")

    @server.prompt(name="proposal_effect", title="某整改建议有效果吗？",
                   description="Whether a proposal's fix worked: before/after figures and recurrences.")
    def proposal_effect(proposal: Annotated[str, Field(
            description="The proposal id (PR-2026-W40-001) or words of its problem (积分规则).")]) -> str:
        return (f"整改建议「{proposal}」有效果吗？\n\n"
                "若给出的是编号，直接用 proposals 的 get_proposal；"
                "否则用 list_proposals 找出问题描述或标签与之相符的建议。"
                f"对{'、'.join(FINISHED)}的建议，用 evaluate_proposal 取整改前后的周均负面声量、单侧精确检验的结论、"
                "KPI 目标是否达到和整改后的复发数；尚未完成的，说明当前状态和截止日期。只引用工具返回的数字。")

    return server


def report_files(reports_dir: Path) -> list[tuple[date, Path]]:
    """The written reports (report.md), oldest period first."""
    found: list[tuple[date, Path]] = []
    for path in reports_dir.glob("*/report.md"):
        period = _label_period(path.parent.name)
        if period is not None:
            found.append((period.end, path))
    return sorted(found)


def _label_period(label: str) -> Period | None:
    try:
        if "~" in label:
            start, end = label.split("~", 1)
            return Period(start=date.fromisoformat(start), end=date.fromisoformat(end))
        return parse_week(label)
    except ValueError:
        return None
