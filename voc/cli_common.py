"""What the `voc` command modules share: the console, errors, progress bars and running a period."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

if TYPE_CHECKING:
    from voc.config import Settings
    from voc.periods import Period

console = Console(stderr=True)


@contextmanager
def progress_bars() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        yield progress


class VocGroup(TyperGroup):
    """Every `voc` command: a data directory or database that cannot be written is an expected
    condition, told in one line with what to do, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors its own click Context type
        try:
            return super().invoke(ctx)
        except (OSError, sqlite3.OperationalError, OperationalError) as exc:
            if not _is_storage_error(exc):
                raise
            from voc.config import get_settings

            where = get_settings().resolved_data_dir
            raise fail(f"数据目录 {where} 或数据库无法写入（{_reason(exc)}）：请检查权限与磁盘空间，"
                       "或用 VOC_DATA_DIR / VOC_DATABASE_URL 指向可写的位置") from exc


_STORAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.ENOTDIR, errno.EEXIST, errno.EDQUOT}


def _is_storage_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _STORAGE_ERRNOS
    text = str(exc).lower()
    return any(word in text for word in ("readonly", "read-only", "unable to open database", "disk i/o", "full"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")
    return str(getattr(exc, "orig", exc)).splitlines()[0][:120]


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def execute_run(settings: Settings, period: Period | None, engine: str, out: Path | None,
                resume: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The weekly run with a progress bar per agent; a run error becomes a clear CLI error."""
    from agents.runner import RunError, run_and_write

    tasks: dict[str, TaskID] = {}
    with progress_bars() as progress:
        def step(agent: str, advance: int, total: int | None) -> None:
            if agent not in tasks:
                tasks[agent] = progress.add_task(agent, total=total)
            elif total is not None:
                progress.update(tasks[agent], total=total)
            progress.advance(tasks[agent], advance)
        try:
            return asyncio.run(run_and_write(settings, out, period=period, engine=engine, run_id=resume,
                                             resume=resume is not None, progress=step))
        except RunError as exc:
            raise fail(str(exc)) from exc
