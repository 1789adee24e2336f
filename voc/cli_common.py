"""What the `voc` command modules share: the console, errors, progress bars and running a period."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from voc.config import Settings
    from voc.periods import Period

console = Console(stderr=True)


@contextmanager
def progress_bars() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        yield progress


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
