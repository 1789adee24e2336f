"""MCP server `proposals`: the closed loop on improvement proposals (status, history, verification)."""

from __future__ import annotations

from datetime import date
from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from mcp_servers.common import READ_ONLY, WRITES
from voc.config import Settings, get_settings
from voc.knowledge import load_service_matrix
from voc.lifecycle import Effect, LifecycleError, ProposalBook, ProposalView, Status
from voc.registration import check_registration
from voc.run_outputs import latest_run_dir, load_run
from voc.storage import Store


class ProposalList(BaseModel):
    items: list[ProposalView]


class OpenMatch(BaseModel):
    proposal_id: str | None = Field(description="The open proposal this problem continues, or null.")
    due_date: date | None = None
    status: Status | None = None


class Problems(BaseModel):
    week: str
    run_id: str | None = Field(description="The weekly run the problems come from; null when the week has none.")
    items: list[dict[str, Any]] = Field(description="Clusters of the run (the clusters.json contract).")


class Registered(BaseModel):
    created: int
    recurred: int
    volumes: int


def create_server(settings: Settings | None = None) -> FastMCP:
    settings = settings or get_settings()
    book = ProposalBook(Store(settings.resolved_database_url))
    server = FastMCP("proposals", log_level="WARNING",
                     instructions="Improvement proposals tracked across weeks: 待认领 → 整改中 → 已完成 → "
                     "已验证 / 未达标, with who changed what and when, due dates and before/after effect.")

    def owners() -> set[str]:
        return set(load_service_matrix(settings.service_matrix_path).department_names())

    def guarded(action: Any) -> Any:
        try:
            return action()
        except (LifecycleError, ValueError) as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(name="list_proposals", annotations=READ_ONLY)
    def list_proposals_tool(owner_department: str | None = None, status: Status | None = None,
                            overdue_only: bool = False) -> ProposalList:
        """Tracked proposals, optionally of one owner department or one status; overdue ones are
        flagged (past the due date and not completed)."""
        items = book.list(owner_department, status.value if status else None)
        return ProposalList(items=[p for p in items if p.overdue or not overdue_only])

    @server.tool(name="get_proposal", annotations=READ_ONLY)
    def get_proposal_tool(proposal_id: str) -> ProposalView:
        """One proposal with its full history of changes and its effect figures once verified."""
        return guarded(lambda: book.get(proposal_id))

    @server.tool(name="list_problems", annotations=READ_ONLY)
    def list_problems_tool(week: str, rising_only: bool = False, owner_department: str | None = None) -> Problems:
        """The common problems (clusters) of a week's latest run, by priority: counts against the
        previous week, rising flag, severity, impact, owner, keywords, representative voices and the
        proposal written for it."""
        run_dir = latest_run_dir(settings.runs_dir, week, None)
        if run_dir is None:
            return Problems(week=week, run_id=None, items=[])
        outputs = load_run(run_dir)
        proposal_of = {p["cluster_id"]: p["proposal_id"] for p in outputs["proposals"]}
        chosen = [c | {"proposal_id": proposal_of.get(c["cluster_id"])} for c in outputs["clusters"]
                  if (c["rising"] or not rising_only) and owner_department in (None, c["owner_department"])]
        return Problems(week=week, run_id=run_dir.name, items=sorted(chosen, key=lambda c: (c["priority"], -c["size"])))

    @server.tool(name="evaluate_proposal", annotations=READ_ONLY)
    def evaluate_proposal_tool(proposal_id: str) -> Effect:
        """Before/after figures of a completed proposal's problem (exact one-sided test, recurrences)
        without changing its status; verify_proposal records the verdict."""
        return guarded(lambda: book.evaluate(proposal_id))

    @server.tool(name="match_open_proposal", annotations=READ_ONLY)
    def match_open_proposal_tool(owner_department: str, tag: str, keywords: list[str],
                                 exclude: list[str] | None = None) -> OpenMatch:
        """The open (not yet verified) proposal a recurring problem belongs to: same owner and tag,
        or same owner and mostly the same keywords. `exclude`: ids already taken by other problems."""
        row = book.match_open(owner_department, tag, keywords, exclude or [])
        if row is None:
            return OpenMatch(proposal_id=None)
        return OpenMatch(proposal_id=row.id, due_date=row.due_date, status=Status(row.status))

    @server.tool(name="register_run", annotations=WRITES)
    def register_run_tool(run_id: str, week: str, proposals: list[dict[str, Any]], clusters: list[dict[str, Any]],
                          volumes: dict[str, int]) -> Registered:
        """Record a weekly run: new proposals as 待认领, recurring ones as a recurrence, and the
        week's negative voices per owner|tag for effect evaluation. Safe to repeat."""
        def register() -> tuple[dict[str, int], int]:
            check_registration(proposals, clusters, volumes, owners())
            return book.register(run_id, week, proposals, clusters), book.record_volumes(run_id, week, volumes)

        counts, stored = guarded(register)
        return Registered(created=counts["created"], recurred=counts["recurred"], volumes=stored)

    @server.tool(name="update_proposal", annotations=WRITES)
    def update_proposal_tool(proposal_id: str, status: Status, actor: str, note: str = "") -> ProposalView:
        """Move a proposal along its lifecycle (待认领 → 整改中 → 已完成; 已完成 or 未达标 → 整改中),
        recording who and why. 已验证 / 未达标 come only from verify_proposal."""
        return guarded(lambda: book.update(proposal_id, status.value, actor, note))

    @server.tool(name="verify_proposal", annotations=WRITES)
    def verify_proposal_tool(proposal_id: str, actor: str) -> ProposalView:
        """Verify a completed proposal: weekly volume after the fix vs the baseline weeks (exact
        one-sided test) and recurrences; sets 已验证 or 未达标 with the figures."""
        return guarded(lambda: book.verify(proposal_id, actor))

    return server
