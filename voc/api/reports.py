"""Reports: generate a week's report, list them, fetch a file; the page's dashboard data and charts."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from voc.api.deps import ServicesDep
from voc.api.params import IsoWeek
from voc.api.services import Services
from voc.contracts import latest_run_dir
from voc.errors import Conflict, NotFound
from voc.report import charts
from voc.report.data import ReportData, build_report
from voc.report.render import write_report

router = APIRouter(prefix="/api", tags=["reports"])
# Markdown goes out as plain text: a browser shows it and never renders it as HTML.
MEDIA = {"html": "text/html; charset=utf-8", "md": "text/plain; charset=utf-8", "pdf": "application/pdf"}
# The report HTML is self-contained: inline <style>, charts and font as data: URIs, no script, no link.
REPORT_CSP = ("default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")


class ReportRequest(BaseModel):
    week: IsoWeek = Field(description="ISO week with a finished run, e.g. 2026-W47.")
    formats: list[Literal["html", "md", "pdf"]] = Field(default=["html", "md", "pdf"])


def _data(services: Services, week: str) -> ReportData:
    run_dir = latest_run_dir(services.settings.runs_dir, week, None)
    if run_dir is None:
        raise Conflict(f"{week} has no finished run yet: start one with POST /api/runs")
    return build_report(services.store, run_dir, knowledge_dir=services.settings.knowledge_dir)


@router.post("/reports", status_code=201)
async def create_report(body: ReportRequest, services: ServicesDep) -> dict[str, Any]:
    """Write the week's report from its latest finished run."""
    data = _data(services, body.week)
    target = services.settings.resolved_data_dir / "reports" / data.week
    written = await asyncio.to_thread(write_report, data, target, tuple(body.formats))
    return {"week": data.week, "run_id": data.run_id, "files": {k: f"/api/reports/{data.week}/{p.name}"
                                                                 for k, p in written.items()}}


@router.get("/reports")
def list_reports(services: ServicesDep) -> list[dict[str, Any]]:
    folder = services.settings.resolved_data_dir / "reports"
    return [{"week": d.name, "files": sorted(f.name for f in d.iterdir() if f.suffix.lstrip(".") in MEDIA)}
            for d in sorted(folder.glob("*")) if d.is_dir()] if folder.exists() else []


@router.get("/reports/{week}/{filename}")
def get_report_file(week: IsoWeek, filename: Literal["report.html", "report.md", "report.pdf"],
                    services: ServicesDep) -> FileResponse:
    path = services.settings.resolved_data_dir / "reports" / week / filename
    if not path.exists():
        raise NotFound(f"no {filename} for {week}: POST /api/reports first")
    kind = path.suffix.lstrip(".")
    headers = {"X-Content-Type-Options": "nosniff"}
    if kind != "pdf":  # Chrome's PDF viewer does not open under a deny-all policy
        headers["Content-Security-Policy"] = REPORT_CSP
    return FileResponse(path, media_type=MEDIA[kind], headers=headers, content_disposition_type="inline",
                        filename=f"voc-{week}-{filename}")


@router.get("/dashboard/{week}")
def dashboard(week: IsoWeek, services: ServicesDep) -> dict[str, Any]:
    """The week's figures as the report has them (funnel, 人机物法环, problems, spikes, owners)."""
    data = _data(services, week)
    return data.model_dump(mode="json") | {"spikes": [p.model_dump(mode="json") for p in data.spikes],
                                           "earlier_status": data.earlier_status}


@router.get("/dashboard/{week}/charts/{name}.png")
def chart(week: IsoWeek, name: Literal["funnel", "dimensions", "matrix"], services: ServicesDep) -> Response:
    data = _data(services, week)
    png = {"funnel": lambda: charts.funnel_chart(data.funnel), "dimensions": lambda: charts.dimension_chart(
        data.dimensions), "matrix": lambda: charts.matrix_chart(data.problems)}[name]()
    return Response(png, media_type="image/png")
