"""What the `voc` command modules share: the console, errors, progress bars and running a period."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from voc.contracts import Engine, RunSummary

if TYPE_CHECKING:
    from voc.config import Settings
    from voc.periods import Period

console = Console(stderr=True)


@contextmanager
def progress_bars() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        yield progress


class ServerName(StrEnum):
    """`voc mcp NAME`: the four MCP servers (mcp_servers.SERVERS)."""

    TICKETS = "tickets"
    KNOWLEDGE = "knowledge"
    CASES = "cases"
    PROPOSALS = "proposals"


class Transport(StrEnum):
    STDIO = "stdio"
    HTTP = "http"


DEBUG = {"on": False}  # `voc --debug …`: show the traceback of an error instead of its one line


class VocGroup(TyperGroup):
    """Every `voc` command: an expected condition (a data directory or database that cannot be
    written, a tool that refuses its input) is one line saying what to do, never a traceback;
    anything else is one line too, and `voc --debug …` shows its trace."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors its own click Context type
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click_exceptions()):
            raise
        except Exception as exc:
            if DEBUG["on"]:
                raise
            raise fail(explain(exc)) from exc


def click_exceptions() -> type[Exception]:
    from typer._click.exceptions import ClickException

    return ClickException


def explain(exc: BaseException) -> str:
    """One line in Chinese for an error that reached the command line."""
    from agents.toolbox import ToolCallError
    from voc.pseudonyms import PseudonymKeyError

    if isinstance(exc, (OSError, sqlite3.OperationalError, OperationalError)) and _is_storage_error(exc):
        from voc.config import get_settings

        where = get_settings().resolved_data_dir
        return (f"数据目录 {where} 或数据库无法写入（{_reason(exc)}）：请检查权限与磁盘空间，"
                "或用 VOC_DATA_DIR / VOC_DATABASE_URL 指向可写的位置")
    if isinstance(exc, PseudonymKeyError):
        return str(exc)
    if isinstance(exc, ToolCallError):
        return f"工具调用被拒绝：{exc}"
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"未预期的错误（{type(exc).__name__}：{first}）。加 --debug 重新运行可查看详细信息，并请反馈给维护者"


_STORAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
                   errno.EDQUOT}


def _is_storage_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _STORAGE_ERRNOS
    text = str(exc).lower()
    return any(word in text for word in ("readonly", "read-only", "unable to open database", "disk i/o", "full"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")
    return str(getattr(exc, "orig", exc)).splitlines()[0][:120]


def parse_day(value: str | None, option: str) -> date | None:
    """A YYYY-MM-DD option, or a one-line error that names the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} 应为 YYYY-MM-DD 格式的日期，收到：{value!r}") from None


def fail(message: str) -> typer.Exit:
    console.print(f"[red]错误：[/red]{message}")
    return typer.Exit(code=2)


def load_knowledge(settings: Settings) -> list[Any]:
    """Mirror the knowledge files into Chroma with a progress bar per collection."""
    from voc.knowledge import KnowledgeError
    from voc.knowledge_base import KnowledgeBase

    tasks: dict[str, TaskID] = {}
    with progress_bars() as progress:
        def step(name: str, n: int, total: int) -> None:
            if name not in tasks:
                label = "training the learned layer" if name == "learned" else f"embedding {name}"
                tasks[name] = progress.add_task(label, total=total)
            progress.advance(tasks[name], n)
        try:
            return KnowledgeBase(settings).load(step)
        except KnowledgeError as exc:
            raise fail(f"知识库文件有误，无法载入：{exc}（先运行 voc kb check）") from exc


def ensure_knowledge(settings: Settings) -> None:
    """A run, report, chat or server needs the knowledge base in Chroma: load it when it is missing."""
    from voc.knowledge_base import KnowledgeBase

    if not KnowledgeBase(settings).is_loaded():
        console.print("知识库尚未载入向量库，正在自动载入（只在首次需要，约一两分钟）…")
        load_knowledge(settings)


def execute_run(settings: Settings, period: Period | None, engine: str, out: Path | None,
                resume: str | None = None) -> tuple[Path, RunSummary]:
    """The weekly run with a progress bar per agent; a run error becomes a clear CLI error. The run
    id is printed first, so a run that is killed can be resumed."""
    from agents.runner import RunError, new_run_id, run_and_write, run_exists

    # What can be refused at once is refused before the knowledge base is loaded (a minute or two).
    if engine == Engine.LLM and not (settings.llm_base_url and settings.llm_model):
        raise fail("LLM 引擎需要同时设置 VOC_LLM_BASE_URL 与 VOC_LLM_MODEL；不设置时请用默认的 --engine offline")
    if resume and not asyncio.run(run_exists(settings, resume)):
        raise fail(f"没有可继续的运行 {resume!r}：运行编号见 voc run 开始时的输出或 DATA_DIR/runs/")
    ensure_knowledge(settings)
    if resume or period is None:
        run_id = resume
        console.print(f"继续运行 {resume}")
    else:
        run_id = new_run_id(period, engine)
        console.print(f"运行编号 {run_id}（如被中断，可用 voc run --resume {run_id} 从断点继续）")
    tasks: dict[str, TaskID] = {}
    with progress_bars() as progress:
        def step(agent: str, advance: int, total: int | None) -> None:
            if agent not in tasks:
                tasks[agent] = progress.add_task(agent, total=total)
            elif total is not None:
                progress.update(tasks[agent], total=total)
            progress.advance(tasks[agent], advance)
        try:
            return asyncio.run(run_and_write(settings, out, period=period, engine=engine, run_id=run_id,
                                             resume=resume is not None, progress=step))
        except RunError as exc:
            raise fail(str(exc)) from exc
