"""Runs: start a weekly run for a period, follow its progress, read its outputs."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from voc.api.deps import ServicesDep
from voc.api.params import IsoWeek, RunId
from voc.api.services import RunJob
from voc.periods import period_of

router = APIRouter(prefix="/api/runs", tags=["runs"])
OUTPUTS = {"voices": "voices.jsonl", "clusters": "clusters.json", "proposals": "proposals.json", "run": "run.json"}


class RunRequest(BaseModel):
    week: IsoWeek | None = Field(default=None, description="ISO week, e.g. 2026-W47.")
    date_from: date | None = None
    date_to: date | None = None
    engine: Literal["offline", "llm"] = "offline"


@router.post("", status_code=202)
async def start_run(body: RunRequest, services: ServicesDep) -> RunJob:
    """Start the weekly run in the background; poll GET /api/runs/{run_id} for progress."""
    try:
        period = period_of(body.week, body.date_from, body.date_to)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return services.start_run(period, body.engine)


@router.get("")
def list_runs(services: ServicesDep) -> list[dict[str, Any]]:
    """Runs started by this app (with progress) and the finished runs in the data directory."""
    finished = {p.parent.name: json.loads(p.read_text(encoding="utf-8"))
                for p in services.settings.runs_dir.glob("*/run.json")}
    listed = [job.model_dump(mode="json") for job in services.runs.values()]
    listed += [{"run_id": i, "status": "done", "period": r["period"], "engine": r["engine"], "summary": r}
               for i, r in sorted(finished.items()) if i not in services.runs]
    return listed


@router.get("/{run_id}")
def get_run(run_id: RunId, services: ServicesDep) -> dict[str, Any]:
    if run_id in services.runs:
        return services.runs[run_id].model_dump(mode="json")
    run_dir = services.run_dir(run_id)
    if run_dir is None:
        raise HTTPException(404, f"no run {run_id!r}")
    summary = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return {"run_id": run_id, "status": "done", "period": summary["period"], "engine": summary["engine"],
            "summary": summary}


@router.get("/{run_id}/{output}")
def get_output(run_id: RunId, output: Literal["voices", "clusters", "proposals", "run"], services: ServicesDep) -> Any:
    """One output file of a finished run (voices as a list of objects)."""
    run_dir = services.run_dir(run_id)
    if run_dir is None or not (run_dir / OUTPUTS[output]).exists():
        raise HTTPException(404, f"run {run_id!r} has no {output} output (yet)")
    text = (run_dir / OUTPUTS[output]).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line] if output == "voices" else json.loads(text)
