"""The review queue: voices flagged needs_review (or opened by an analyst), and their corrections."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from voc.api.deps import ServicesDep
from voc.api.params import IsoWeek
from voc.api.services import Services
from voc.contracts import latest_run_dir, read_voices
from voc.errors import Conflict
from voc.knowledge import load_service_matrix, load_taxonomy
from voc.periods import parse_week
from voc.reviews import Corrected, Correction, QueuePage, ReviewDesk

router = APIRouter(prefix="/api/reviews", tags=["reviews"])


class CorrectionRequest(Correction):
    actor: str = Field(min_length=1, max_length=64, description="Who corrects.")
    note: str = Field(default="", max_length=1000)


class Queue(QueuePage):
    week: str
    run_id: str


def _desk(services: Services) -> ReviewDesk:
    settings = services.settings
    return ReviewDesk(services.store, load_service_matrix(settings.service_matrix_path),
                      load_taxonomy(settings.taxonomy_path))


@router.get("")
def queue(week: IsoWeek, services: ServicesDep, include: Annotated[list[str] | None, Query()] = None,
          limit: Annotated[int, Query(ge=1, le=200)] = 50,
          after: Annotated[str | None, Query(max_length=400)] = None) -> Queue:
    """A page of the week's voices that need review: uncorrected first, the least certain owner first.
    Pass a page's `next_cursor` as `after` for the next one; `include` adds any voice ids."""
    label = parse_week(week).label
    run_dir = latest_run_dir(services.settings.runs_dir, label, None)
    if run_dir is None:
        raise Conflict(f"{label} has no finished run yet")
    page = _desk(services).page(read_voices(run_dir), include or (), limit, after)
    return Queue(week=label, run_id=run_dir.name, **dict(page))


@router.post("/{voice_id}", status_code=201)
def correct(voice_id: str, body: CorrectionRequest, services: ServicesDep) -> Corrected:
    """Correct a voice's owner, dimension, tag or sentiment. Later runs and reports use it, and the
    offline engine learns from it as a labelled example."""
    return _desk(services).correct(voice_id, Correction.model_validate(body.model_dump()), body.actor, body.note)
