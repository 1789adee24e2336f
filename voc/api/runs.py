"""Runs: start a weekly run for a period, follow its progress, read its outputs."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from voc.api.deps import ServicesDep
from voc.api.params import IsoWeek, RunId
from voc.api.services import RunJob
from voc.contracts import (
    SUMMARY_FILE,
    Cluster,
    Engine,
    Proposal,
    RunEngine,
    RunOutputs,
    RunSummary,
    VoiceResult,
    read_clusters,
    read_proposals,
    read_summary,
    read_voices,
)
from voc.errors import Invalid, NotFound
from voc.periods import period_of

router = APIRouter(prefix="/api/runs", tags=["runs"])


class RunRequest(BaseModel):
    week: IsoWeek | None = Field(default=None, description="ISO week, e.g. 2026-W47.")
    date_from: date | None = None
    date_to: date | None = None
    engine: RunEngine = Engine.OFFLINE


class FinishedRun(BaseModel):
    run_id: str
    status: Literal["done"] = "done"
    period: dict[str, Any]
    engine: Engine
    summary: RunSummary


@router.post("", status_code=202)
async def start_run(body: RunRequest, services: ServicesDep) -> RunJob:
    """Start the weekly run in the background; poll GET /api/runs/{run_id} for progress."""
    try:
        period = period_of(body.week, body.date_from, body.date_to)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return services.start_run(period, body.engine)


def _finished(run_id: str, summary: RunSummary) -> FinishedRun:
    return FinishedRun(run_id=run_id, period=summary.period.model_dump(mode="json"), engine=summary.engine,
                       summary=summary)


@router.get("")
def list_runs(services: ServicesDep) -> list[RunJob | FinishedRun]:
    """Runs started by this app (with progress) and the finished runs in the data directory."""
    finished = {p.parent.name: read_summary(p.parent) for p in services.settings.runs_dir.glob(f"*/{SUMMARY_FILE}")}
    listed: list[RunJob | FinishedRun] = list(services.runs.values())
    listed += [_finished(i, s) for i, s in sorted(finished.items()) if i not in services.runs]
    return listed


@router.get("/{run_id}")
def get_run(run_id: RunId, services: ServicesDep) -> RunJob | FinishedRun:
    if run_id in services.runs:
        return services.runs[run_id]
    run_dir = services.run_dir(run_id)
    if run_dir is None:
        raise NotFound(f"no run {run_id!r}")
    return _finished(run_id, read_summary(run_dir))


@router.get("/{run_id}/{output}")
def get_output(run_id: RunId, output: Literal["voices", "clusters", "proposals", "run"],
               services: ServicesDep) -> list[VoiceResult] | list[Cluster] | list[Proposal] | RunSummary:
    """One output file of a finished run (voices as a list of objects)."""
    run_dir = services.run_dir(run_id)
    if run_dir is None or not RunOutputs.is_complete(run_dir):
        raise NotFound(f"run {run_id!r} has no {output} output (yet)")
    if output == "voices":
        return read_voices(run_dir)
    if output == "clusters":
        return read_clusters(run_dir)
    return read_proposals(run_dir) if output == "proposals" else read_summary(run_dir)
