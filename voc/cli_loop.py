"""`voc report` and `voc proposals`: the weekly deliverable and the closed loop on proposals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from voc.cli_common import console, execute_run, fail, parse_day
from voc.config import Settings, get_settings
from voc.contracts import Engine, ProposalStatus, RunEngine

proposals_app = typer.Typer(help="整改建议闭环: list, show, update, verify, record as a case.", no_args_is_help=True)
problems_app = typer.Typer(help="跨周问题（PB-0001…）: list, rename, merge.", no_args_is_help=True)


def _formats(value: str) -> str:
    from voc.report.render import FORMATS

    chosen = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise typer.BadParameter(f"可选格式为 {', '.join(FORMATS)}（用逗号分隔），收到：{value!r}")
    return value


def report(
    week: Annotated[str, typer.Option(help="ISO week, e.g. 2026-W47.")],
    format: Annotated[str, typer.Option("--format", help="Comma-separated: html, md, pdf.",
                                        callback=_formats)] = "html,md,pdf",
    out: Annotated[Path | None, typer.Option(help="Output directory (default DATA_DIR/reports/WEEK).")] = None,
    engine: Annotated[RunEngine, typer.Option(help="The run to report: offline (default) or llm.")] = Engine.OFFLINE,
    rerun: Annotated[bool, typer.Option(help="Run the week again even when a run exists.")] = False,
) -> None:
    """The weekly 《客户心声》 report: reuses the week's run when there is one, otherwise runs it."""
    from voc.contracts import latest_run_dir
    from voc.periods import parse_week
    from voc.report.data import build_report
    from voc.report.render import write_report
    from voc.storage import Store

    settings = get_settings()
    settings.ensure_dirs()
    try:
        period = parse_week(week)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    engine_name = Engine(engine).value
    run_dir = None if rerun else latest_run_dir(settings.runs_dir, period.label, Engine(engine_name))
    if run_dir is None:
        console.print(f"{period.label} 还没有 {engine_name} 引擎的运行结果：现在运行")
        run_dir, _ = execute_run(settings, period, engine_name, None)
    else:
        console.print(f"沿用运行 {run_dir.name}")
    data = build_report(Store(settings.resolved_database_url), run_dir, knowledge_dir=settings.knowledge_dir)
    try:
        written = write_report(data, out or settings.resolved_data_dir / "reports" / period.label, formats)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    for path in written.values():
        typer.echo(str(path))


def _book(settings: Settings) -> Any:
    from voc.lifecycle import ProposalBook
    from voc.storage import Store

    return ProposalBook(Store(settings.resolved_database_url))


def _guarded(action: Any) -> Any:
    from voc.lifecycle import LifecycleError

    try:
        return action()
    except (LifecycleError, ValueError) as exc:
        raise fail(str(exc)) from exc


@proposals_app.command("list")
def list_proposals(
    owner: Annotated[str | None, typer.Option(help="Only this owner department.")] = None,
    status: Annotated[ProposalStatus | None, typer.Option(help="Only this status.")] = None,
    overdue: Annotated[bool, typer.Option(help="Only overdue proposals.")] = False,
) -> None:
    """Tracked proposals with status, due date and overdue flag."""
    items = _guarded(lambda: _book(get_settings()).list(owner, status.value if status else None))
    table = Table("编号", "优先级", "责任部门", "状态", "到期日", "提出周", "最近出现", "问题", title="整改建议")
    for p in items:
        if overdue and not p.overdue:
            continue
        due = f"[red]{p.due_date} 逾期[/red]" if p.overdue else str(p.due_date)
        table.add_row(escape(p.proposal_id), p.priority, escape(p.owner_department), p.status.value, due,
                      p.first_week, p.last_seen_week, escape(p.problem[:40]))  # stored text is not markup
    console.print(table)


@proposals_app.command("show")
def show_proposal(proposal_id: str) -> None:
    """One proposal with its history (who, when, what) and effect figures as JSON."""
    view = _guarded(lambda: _book(get_settings()).get(proposal_id))
    typer.echo(view.model_dump_json(indent=2))


@proposals_app.command("update")
def update_proposal(
    proposal_id: str,
    status: Annotated[ProposalStatus, typer.Option(help="整改中 or 已完成 (已验证 / 未达标 come from verify).")],
    by: Annotated[str, typer.Option("--by", help="Who makes the change.")],
    note: Annotated[str, typer.Option(help="Why, or what was done.")] = "",
    on: Annotated[str | None, typer.Option(help="Completion date YYYY-MM-DD (default today).")] = None,
) -> None:
    """Move a proposal along 待认领 → 整改中 → 已完成 (or back to 整改中)."""
    day = parse_day(on, "--on")
    view = _guarded(lambda: _book(get_settings()).update(proposal_id, ProposalStatus(status).value, by, note, on=day))
    console.print(f"{view.proposal_id}: {view.status.value}")


@proposals_app.command("verify")
def verify_proposal(
    proposal_id: str,
    by: Annotated[str, typer.Option("--by", help="Who verifies.")],
    baseline_weeks: Annotated[int, typer.Option(min=1)] = 4,
    min_after_weeks: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """Compare the problem's weekly volume after the fix with the weeks before (exact one-sided test)
    and count recurrences; sets 已验证 or 未达标 with the figures."""
    from voc.lifecycle import Effect

    view = _guarded(lambda: _book(get_settings()).verify(proposal_id, by, baseline_weeks=baseline_weeks,
                                                          min_after_weeks=min_after_weeks))
    console.print(f"{view.proposal_id}: {view.status.value} — {Effect.model_validate(view.effect).summary()}")


@proposals_app.command("record-case")
def record_case(
    proposal_id: str,
    by: Annotated[str, typer.Option("--by", help="Who records it.")],
) -> None:
    """Record a verified proposal in the case library through the cases MCP server, so later runs
    can cite this bank's own fix."""
    settings = get_settings()
    book = _book(settings)
    case = _guarded(lambda: book.case_payload(proposal_id))
    recorded = asyncio.run(_record_through_mcp(settings, case))
    book.mark_case(proposal_id, recorded["id"], by)
    console.print(f"{proposal_id} → {recorded['id']}（{recorded['title']}）")


async def _record_through_mcp(settings: Settings, case: dict[str, Any]) -> dict[str, Any]:
    from mcp.shared.memory import create_connected_server_and_client_session

    from mcp_servers import cases

    async with create_connected_server_and_client_session(cases.create_server(settings)) as client:
        result = await client.call_tool("record_case", {"case": case})
    if result.isError:
        raise fail(" ".join(getattr(block, "text", "") for block in result.content))
    return result.structuredContent or {}


# ------------------------------------------------------------------ `voc problems`: ids across weeks


def _registry(settings: Settings) -> Any:
    from voc.problems import ProblemRegistry
    from voc.storage import Store

    return ProblemRegistry(Store(settings.resolved_database_url))


@problems_app.command("list")
def list_problems(
    owner: Annotated[str | None, typer.Option(help="Only this owner department.")] = None,
    merged: Annotated[bool, typer.Option("--merged", help="Also the problems merged into others.")] = False,
) -> None:
    """The problems known across weeks: id, owner, tag, the name shown and the weeks found."""
    items = _guarded(lambda: _registry(get_settings()).list(include_merged=merged))
    table = Table("编号", "名称（*分析师命名）", "责任部门", "出现周次", "合并到", title="跨周问题")
    table.columns[1].no_wrap = True
    for p in items:
        if owner and p.owner_department != owner:
            continue
        name = f"*{p.label}" if p.analyst_label else p.label
        weeks = p.first_week if p.first_week == p.last_week else f"{p.first_week}~{p.last_week}"
        table.add_row(p.problem_id, escape(name[:30]), escape(p.owner_department), f"{weeks}（{len(p.weeks)}周）",
                      p.merged_into or "")
    console.print(table)


@problems_app.command("rename")
def rename_problem(
    problem_id: str,
    label: str,
    by: Annotated[str, typer.Option("--by", help="Who renames it.")],
) -> None:
    """Name a problem; every later week shows this name (an empty name goes back to the run's own)."""
    record = _guarded(lambda: _registry(get_settings()).rename(problem_id, label, by))
    console.print(f"{record.problem_id}: {escape(record.label)}")


@problems_app.command("merge")
def merge_problem(
    problem_id: str,
    into: Annotated[str, typer.Option("--into", help="The problem that remains.")],
    by: Annotated[str, typer.Option("--by", help="Who merges them.")],
) -> None:
    """Merge a problem into another: its later weeks carry the surviving id."""
    record = _guarded(lambda: _registry(get_settings()).merge(problem_id, into, by))
    console.print(f"{record.problem_id} → {record.merged_into}")
