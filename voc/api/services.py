"""What the app holds for its lifetime: settings, store, MCP toolbox, chat graph, and background runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from agents.chat_llm import ChatLLM
from agents.runner import new_run_id
from agents.toolbox import Toolbox
from voc.config import Settings
from voc.contracts import SUMMARY_FILE, Engine, RunSummary
from voc.periods import Period
from voc.storage import Store


class RunJob(BaseModel):
    run_id: str
    period: Period
    engine: Engine
    status: Literal["queued", "running", "done", "failed"] = "queued"
    progress: dict[str, dict[str, int | None]] = {}
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    out_dir: str | None = None
    summary: RunSummary | None = None


@dataclass
class Services:
    settings: Settings
    store: Store
    toolbox: Toolbox
    chat: CompiledStateGraph[Any, Any, Any, Any]
    chat_llm: ChatLLM | None = None
    runs: dict[str, RunJob] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start_run(self, period: Period, engine: Engine) -> RunJob:
        run_id = new_run_id(period, engine)
        job = RunJob(run_id=run_id, period=period, engine=engine, started_at=datetime.now(UTC))
        self.runs[run_id] = job
        task = asyncio.create_task(self._execute(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return job

    async def _execute(self, job: RunJob) -> None:
        from agents.runner import run_and_write

        def progress(agent: str, advance: int, total: int | None) -> None:
            step = job.progress.setdefault(agent, {"done": 0, "total": None})
            step["done"] = int(step["done"] or 0) + advance
            if total is not None:
                step["total"] = total

        job.status = "running"
        try:
            # Its own thread and event loop: a run is CPU-bound and must not stall chat requests.
            out, summary = await asyncio.to_thread(asyncio.run, run_and_write(
                self.settings, period=job.period, engine=job.engine, run_id=job.run_id, progress=progress))
            job.out_dir, job.summary, job.status = str(out), summary, "done"
        except Exception as exc:  # the job reports it; the app keeps serving
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = datetime.now(UTC)

    def run_dir(self, run_id: str) -> Path | None:
        job = self.runs.get(run_id)
        if job and job.out_dir:
            return Path(job.out_dir)
        runs = self.settings.runs_dir.resolve()
        candidate = (runs / run_id).resolve()
        if candidate.parent != runs:  # `..`, a separator or a symlink out: not a run of this data directory
            return None
        return candidate if (candidate / SUMMARY_FILE).exists() else None
